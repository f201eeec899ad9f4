"""The answer pipeline and per-connection dispatch, driven through ConnectionSession.

GIVEN a tiny corpus in the embedded index and a scripted fake model,
WHEN frames arrive, THEN events follow the protocol order and every fault ends
as error events on a connection that keeps working.
"""

from __future__ import annotations

import asyncio
import json

import pytest

from services.query.answer.refusals import refusal
from services.query.answer.service import AnswerService
from services.query.transports.session import ConnectionSession
from shared.access import Principal
from shared.errors import ModelError
from shared.protocol import DoneEvent, ErrorCode, StopReason
from tests.fakes.chat_model import FakeChatModel, Script
from tests.fakes.embedder import FakeEmbedder
from tests.fakes.sink import RecordingSink


def ask(question: str = "How many vacation days do employees get?", **extra: object) -> str:
    return json.dumps({"action": "ask", "question": question, **extra})


async def run(session: ConnectionSession, *frames: str) -> None:
    for frame in frames:
        await session.handle_frame(frame)
    await session.wait_idle()


@pytest.fixture
def sink() -> RecordingSink:
    return RecordingSink()


@pytest.fixture
def session(service: AnswerService, sink: RecordingSink) -> ConnectionSession:
    return ConnectionSession(service, sink, 2, Principal.single_user())


async def test_answer_order_sequence_and_cited_sources(
    session: ConnectionSession, sink: RecordingSink, model: FakeChatModel
) -> None:
    model.scripts = [Script(tokens=["Twenty", " five", " days", " [1]", "."])]
    await run(session, ask(request_id="r1"))
    assert sink.kinds()[0] == "accepted"
    assert sink.kinds()[-2:] == ["sources", "done"]
    assert set(sink.kinds()[1:-2]) == {"token"}
    tokens = sink.of("token")
    assert [t.seq for t in tokens] == list(range(len(tokens)))  # type: ignore[union-attr]
    assert "".join(t.text for t in tokens) == "Twenty five days [1]."  # type: ignore[union-attr]
    (sources,) = sink.of("sources")
    citations = sources.citations  # type: ignore[union-attr]
    assert citations[0].cited and citations[0].n == 1
    assert citations[0].doc_id in {"vacation", "vacation-copy"}
    assert all(not c.cited and c.n is None for c in citations[1:])
    (done,) = sink.of("done")
    assert done.stop_reason == StopReason.END  # type: ignore[union-attr]
    assert done.completion_tokens == 5  # type: ignore[union-attr]
    assert done.prompt_tokens > 0  # type: ignore[union-attr]
    assert done.time_to_first_token_ms is not None  # type: ignore[union-attr]
    assert all(e.request_id == "r1" for e in sink.events if e.event != "pong")


async def test_prompt_is_llama2_with_numbered_sources_and_the_system_preset(
    session: ConnectionSession, model: FakeChatModel, service: AnswerService
) -> None:
    await run(session, ask(preset="terse"))
    prompt = model.streams[0].prompt
    assert prompt.startswith("<s>[INST] <<SYS>>\nAnswer in at most two sentences")
    assert "[1] Vacation policy" in prompt
    assert prompt.endswith("Question: How many vacation days do employees get? [/INST]")
    # the exact duplicate from "vacation-copy" was dropped
    assert prompt.count("Employees get twenty five vacation days per year.") == 1


async def test_filters_restrict_the_sources(
    session: ConnectionSession, model: FakeChatModel
) -> None:
    await run(session, ask("What do llamas eat?", filters={"team": "it"}))
    assert "Llama care" not in model.streams[0].prompt
    assert "[1] Server room" in model.streams[0].prompt


async def test_a_filter_on_a_field_no_document_has_is_a_bad_filter(
    session: ConnectionSession, sink: RecordingSink, model: FakeChatModel
) -> None:
    # GIVEN a filter on doc_id (a chunk field, not metadata): it can match nothing
    await run(session, ask("What do llamas eat?", request_id="f1", filters={"doc_id": "x"}))
    # THEN the request ends with bad_filter naming the field, and no model call
    (error,) = sink.of("error")
    assert error.code == ErrorCode.BAD_FILTER  # type: ignore[union-attr]
    assert error.request_id == "f1"  # type: ignore[union-attr]
    assert "'doc_id'" in error.message  # type: ignore[union-attr]
    assert sink.kinds()[-1] == "done"
    assert model.streams == []


async def test_a_known_field_that_matches_nothing_is_not_an_error(
    session: ConnectionSession, sink: RecordingSink
) -> None:
    await run(session, ask("What do llamas eat?", filters={"team": "nobody"}))
    assert sink.of("error") == []
    assert sink.kinds()[-1] == "done"


async def test_hybrid_mode_finds_keyword_matches(
    session: ConnectionSession, sink: RecordingSink
) -> None:
    await run(session, ask("server room temperature", mode="hybrid", k=2))
    (sources,) = sink.of("sources")
    assert sources.citations[0].doc_id == "servers"  # type: ignore[union-attr]


async def test_follow_up_sees_the_previous_turn(
    session: ConnectionSession, sink: RecordingSink, model: FakeChatModel
) -> None:
    model.scripts = [Script(tokens=["Hay", " [1]."]), Script(tokens=["Yes."])]
    await run(session, ask("What do llamas eat?", request_id="a"))
    conversation = sink.of("accepted")[0].conversation_id  # type: ignore[union-attr]
    await run(session, ask("And do they need water?", conversation_id=conversation))
    second = model.streams[1].prompt
    assert "What do llamas eat? [/INST] Hay [1]. </s><s>[INST] Sources:" in second


async def test_cancel_stops_the_model_within_one_token(
    session: ConnectionSession, sink: RecordingSink, model: FakeChatModel
) -> None:
    model.scripts = [Script(tokens=list("abcdefgh"), hold_after=3)]
    await session.handle_frame(ask(request_id="c1"))
    await model.holding.wait()
    await session.handle_frame(json.dumps({"action": "cancel", "request_id": "c1"}))
    await session.wait_idle()
    assert model.streams[0].cancelled
    assert model.streams[0].tokens_sent == 3
    assert sink.kinds()[-2:] == ["sources", "done"]
    assert sink.of("done")[0].stop_reason == StopReason.CANCELLED  # type: ignore[union-attr]


async def test_model_failure_mid_stream_is_an_error_and_the_session_carries_on(
    session: ConnectionSession, sink: RecordingSink, model: FakeChatModel
) -> None:
    model.scripts = [
        Script(tokens=["a", "b", "c"], error=ModelError("endpoint fell over"), error_after=2),
        Script(tokens=["fine"]),
    ]
    await run(session, ask(request_id="bad"))
    kinds = [k for k in sink.kinds() if k != "token"]
    assert kinds == ["accepted", "error", "done"]
    assert sink.kinds()[-2:] == ["error", "done"]
    assert "".join(t.text for t in sink.of("token")) == "ab"  # type: ignore[union-attr]
    assert sink.of("error")[0].code == ErrorCode.MODEL_FAILED  # type: ignore[union-attr]
    assert sink.of("done")[0].stop_reason == StopReason.ERROR  # type: ignore[union-attr]
    await run(session, ask(request_id="good"))
    assert sink.kinds()[-2:] == ["sources", "done"]


async def test_retrieval_failure_is_an_error_event(
    session: ConnectionSession, sink: RecordingSink, embedder: FakeEmbedder, model: FakeChatModel
) -> None:
    embedder.fail_with = RuntimeError("embedding endpoint down")
    await run(session, ask(request_id="r"))
    assert sink.kinds() == ["accepted", "error", "done"]
    assert sink.of("error")[0].code == ErrorCode.RETRIEVAL_FAILED  # type: ignore[union-attr]
    assert model.streams == []


async def test_a_client_that_leaves_stops_generation(
    service: AnswerService, model: FakeChatModel
) -> None:
    model.scripts = [Script(tokens=list("abcdefghij"), delay_s=0.001)]
    sink = RecordingSink(gone_after=3)  # accepted + 2 token frames, then gone
    session = ConnectionSession(service, sink, 2, Principal.single_user())
    await run(session, ask())
    assert model.streams[0].cancelled
    assert model.streams[0].tokens_sent < 10


@pytest.mark.parametrize(
    ("frame", "code"),
    [
        ("{not json", ErrorCode.INVALID_JSON),
        ("[1, 2]", ErrorCode.INVALID_JSON),
        ('{"action": "shout"}', ErrorCode.UNKNOWN_ACTION),
        ('{"question": "no action"}', ErrorCode.UNKNOWN_ACTION),
        ('{"action": "ask"}', ErrorCode.INVALID_REQUEST),
        ('{"action": "ask", "question": ""}', ErrorCode.INVALID_REQUEST),
        (ask("x" * 4001), ErrorCode.QUESTION_TOO_LONG),
        (ask(filters={"bad key!": 1}), ErrorCode.BAD_FILTER),
        (ask(filters={"team": {"nested": 1}}), ErrorCode.BAD_FILTER),
        (ask(preset="pirate"), ErrorCode.UNKNOWN_PRESET),
        ('{"action": "cancel", "request_id": "nope"}', ErrorCode.UNKNOWN_REQUEST),
    ],
)
async def test_malformed_frames_get_an_error_and_the_connection_stays_usable(
    session: ConnectionSession, sink: RecordingSink, frame: str, code: ErrorCode
) -> None:
    await run(session, frame)
    errors = sink.of("error")
    assert [e.code for e in errors] == [code]  # type: ignore[union-attr]
    await run(session, '{"action": "ping"}', ask())
    assert "pong" in sink.kinds()
    assert sink.kinds()[-1] == "done"
    assert sink.of("done")[-1].stop_reason == StopReason.END  # type: ignore[union-attr]


async def test_question_limit_from_settings_is_enforced(
    settings: object, deps: object, sink: RecordingSink
) -> None:
    from services.query.answer.parts import QueryDeps
    from shared.settings import QuerySettings, Settings

    assert isinstance(settings, Settings) and isinstance(deps, QueryDeps)
    strict = settings.model_copy(update={"query": QuerySettings(max_question_chars=10)})
    session = ConnectionSession(AnswerService(strict, deps), sink, 1, Principal.single_user())
    await run(session, ask("this question is too long", request_id="long"))
    assert sink.kinds() == ["error", "done"]
    assert sink.of("error")[0].code == ErrorCode.QUESTION_TOO_LONG  # type: ignore[union-attr]


async def test_too_many_concurrent_answers_and_duplicate_ids_are_refused(
    session: ConnectionSession, sink: RecordingSink, model: FakeChatModel
) -> None:
    model.scripts = [Script(tokens=list("abc"), hold_after=1)]
    await session.handle_frame(ask(request_id="one"))
    await session.handle_frame(ask(request_id="one"))
    await session.handle_frame(ask(request_id="two"))
    await session.handle_frame(ask(request_id="three"))
    codes = [e.code for e in sink.of("error")]  # type: ignore[union-attr]
    assert codes == [ErrorCode.DUPLICATE_REQUEST, ErrorCode.TOO_MANY_REQUESTS]
    # the deployed API's words too: both go through the front door
    assert [e.message for e in sink.of("error")] == [  # type: ignore[union-attr]
        str(refusal(ErrorCode.DUPLICATE_REQUEST, "one", 2)),
        str(refusal(ErrorCode.TOO_MANY_REQUESTS, "three", 2)),
    ]
    model.release()
    await session.wait_idle()
    done_ids = [e.request_id for e in sink.of("done") if isinstance(e, DoneEvent)]
    assert sorted(done_ids) == ["one", "three", "two"]  # "three" got error + done(error)


async def test_close_cancels_running_answers(
    session: ConnectionSession, model: FakeChatModel
) -> None:
    model.scripts = [Script(tokens=list("abc"), hold_after=1)]
    await session.handle_frame(ask())
    await model.holding.wait()
    await session.close()
    await asyncio.sleep(0)
    assert model.streams[0].cancelled
    assert session.in_flight == 0
