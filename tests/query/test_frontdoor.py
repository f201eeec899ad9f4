"""The query service's front door, on its own: the rules both transports share.

GIVEN a front door over the real answer service and a recording Runs (the
part each transport supplies), WHEN asks are refused or the client leaves,
THEN the claimed slot is given back and the events follow the one rule:
``error`` + ``done`` for a refused ask, only ``error`` for a duplicate id.
"""

from __future__ import annotations

import json

import pytest

from services.query.answer.parts import QueryDeps
from services.query.answer.refusals import refusal
from services.query.answer.service import AnswerService, Job
from services.query.frontdoor import FrontDoor
from services.query.transports.inprocess import InProcessConnection
from shared.access import Principal
from shared.ports import ConnectionSink
from shared.protocol import ErrorCode
from shared.settings import Settings
from tests.fakes.chat_model import FakeChatModel, Script
from tests.fakes.sink import RecordingSink

ME = Principal.single_user()


class RecordingRuns:
    """Runs that keep claims in a set and record what the front door asked for."""

    def __init__(self, running: set[str] | None = None) -> None:
        self.running = set(running or ())
        self.launched: list[Job] = []
        self.released: list[str] = []

    async def claim(self, request_id: str, max_running: int) -> ErrorCode | None:
        if request_id in self.running:
            return ErrorCode.DUPLICATE_REQUEST
        if len(self.running) >= max_running:
            return ErrorCode.TOO_MANY_REQUESTS
        self.running.add(request_id)
        return None

    async def release(self, request_id: str) -> None:
        self.released.append(request_id)
        self.running.discard(request_id)

    async def launch(self, job: Job, sink: ConnectionSink) -> None:
        self.launched.append(job)

    async def cancel(self, request_id: str) -> bool:
        return request_id in self.running


def frame(**fields: object) -> str:
    return json.dumps({"action": "ask", "question": "llamas?", **fields})


async def test_an_accepted_ask_is_claimed_acknowledged_and_launched(
    service: AnswerService,
) -> None:
    sink, runs = RecordingSink(), RecordingRuns()
    await FrontDoor(service, 2).handle_frame(frame(request_id="r1"), sink, runs, ME)
    assert sink.kinds() == ["accepted"]
    assert [job.request_id for job in runs.launched] == ["r1"]
    assert runs.running == {"r1"}


async def test_a_duplicate_id_is_refused_as_a_duplicate_even_when_the_ask_is_invalid(
    service: AnswerService,
) -> None:
    """A done under that id would end the answer still running under it."""
    sink, runs = RecordingSink(), RecordingRuns(running={"r1"})
    await FrontDoor(service, 2).handle_frame(frame(request_id="r1", question=" "), sink, runs, ME)
    assert sink.kinds() == ["error"]
    assert sink.of("error")[0].code == ErrorCode.DUPLICATE_REQUEST  # type: ignore[union-attr]
    assert runs.running == {"r1"} and runs.released == []


async def test_an_invalid_ask_gives_back_its_slot(service: AnswerService) -> None:
    sink, runs = RecordingSink(), RecordingRuns()
    await FrontDoor(service, 1).handle_frame(
        frame(request_id="r1", preset="pirate"), sink, runs, ME
    )
    assert sink.kinds() == ["error", "done"]
    assert runs.released == ["r1"] and runs.running == set()
    await FrontDoor(service, 1).handle_frame(frame(request_id="r2"), sink, runs, ME)
    assert sink.kinds()[-1] == "accepted"  # the limit of one was not used up


async def test_a_client_gone_before_accepted_gives_back_its_slot(
    service: AnswerService,
) -> None:
    from shared.errors import ConnectionGone

    sink, runs = RecordingSink(gone_after=0), RecordingRuns()
    with pytest.raises(ConnectionGone):
        await FrontDoor(service, 2).handle_frame(frame(request_id="r1"), sink, runs, ME)
    assert runs.released == ["r1"] and runs.launched == []


async def test_an_ask_without_request_id_is_claimed_under_the_id_it_is_given(
    service: AnswerService,
) -> None:
    sink, runs = RecordingSink(), RecordingRuns()
    await FrontDoor(service, 2).handle_frame(frame(), sink, runs, ME)
    (accepted,) = sink.of("accepted")
    assert runs.running == {accepted.request_id}  # type: ignore[union-attr]


def test_the_refusals_name_the_request_and_the_limit() -> None:
    duplicate = refusal(ErrorCode.DUPLICATE_REQUEST, "r1", 2)
    too_many = refusal(ErrorCode.TOO_MANY_REQUESTS, "r1", 2)
    assert (duplicate.code, str(duplicate)) == (
        ErrorCode.DUPLICATE_REQUEST,
        "request 'r1' is already running",
    )
    assert str(too_many) == "at most 2 answers may run at once on one connection"


@pytest.mark.parametrize(
    ("fields", "code"),
    [
        ({"question": ""}, ErrorCode.INVALID_REQUEST),
        ({"question": "x" * 4001}, ErrorCode.QUESTION_TOO_LONG),
        ({"k": 0}, ErrorCode.INVALID_REQUEST),
        ({"filters": {"team": {"nested": 1}}}, ErrorCode.BAD_FILTER),
    ],
)
async def test_a_schema_invalid_ask_with_a_request_id_gets_it_back_and_is_ended(
    service: AnswerService, fields: dict[str, object], code: ErrorCode
) -> None:
    """The client waits for that id's done: without it, `rag ask ""` hung."""
    sink, runs = RecordingSink(), RecordingRuns()
    await FrontDoor(service, 2).handle_frame(frame(request_id="r1", **fields), sink, runs, ME)
    assert sink.kinds() == ["error", "done"]
    error, done = sink.of("error")[0], sink.of("done")[0]
    assert (error.request_id, error.code) == ("r1", code)  # type: ignore[union-attr]
    assert (done.request_id, done.stop_reason) == ("r1", "error")  # type: ignore[union-attr]
    assert runs.running == set() and runs.launched == []


async def test_a_schema_invalid_ask_reusing_a_running_id_ends_nothing(
    service: AnswerService,
) -> None:
    """Its done would end the answer still running under that id."""
    sink, runs = RecordingSink(), RecordingRuns(running={"r1"})
    await FrontDoor(service, 2).handle_frame(frame(request_id="r1", question=""), sink, runs, ME)
    assert sink.kinds() == ["error"]
    assert sink.of("error")[0].request_id == "r1"  # type: ignore[union-attr]
    assert runs.running == {"r1"}


@pytest.mark.parametrize(
    "raw",
    [
        json.dumps({"action": "cancel", "request_id": "r1", "extra": 1}),
        json.dumps({"action": "shout", "request_id": "r1"}),
    ],
)
async def test_other_bad_frames_with_a_request_id_carry_it_back(
    service: AnswerService, raw: str
) -> None:
    sink, runs = RecordingSink(), RecordingRuns(running={"r1"})
    await FrontDoor(service, 2).handle_frame(raw, sink, runs, ME)
    assert sink.kinds() == ["error"]
    assert sink.of("error")[0].request_id == "r1"  # type: ignore[union-attr]
    assert runs.running == {"r1"}  # a bad cancel stops nothing


async def test_a_bad_frame_with_an_unusable_request_id_gets_an_anonymous_error(
    service: AnswerService,
) -> None:
    sink, runs = RecordingSink(), RecordingRuns()
    await FrontDoor(service, 2).handle_frame(
        frame(request_id="no spaces allowed", question=""), sink, runs, ME
    )
    assert sink.kinds() == ["error"]
    assert sink.of("error")[0].request_id is None  # type: ignore[union-attr]


# ---- in-process callers go through the same front door (#23) ----------------


async def test_an_in_process_ask_is_accepted_answered_and_done(
    service: AnswerService, model: FakeChatModel
) -> None:
    model.scripts = [Script(tokens=["Grass", " and hay [1]."])]
    sink = RecordingSink()
    await InProcessConnection(service).ask({"question": "What do llamas eat?"}, sink)
    kinds = sink.kinds()
    assert kinds[0] == "accepted" and kinds[-2:] == ["sources", "done"]
    assert "token" in kinds


async def test_an_in_process_refusal_ends_with_error_and_done_instead_of_hanging(
    service: AnswerService,
) -> None:
    sink = RecordingSink()
    await InProcessConnection(service).ask({"question": "llamas?", "preset": "pirate"}, sink)
    assert sink.kinds() == ["error", "done"]
    assert sink.of("error")[0].code == ErrorCode.UNKNOWN_PRESET  # type: ignore[union-attr]


async def test_the_clis_in_process_ask_gets_accepted_and_the_servers_words(
    service: AnswerService, model: FakeChatModel
) -> None:
    from cli.ask.asking import InProcessAsker

    model.scripts = [Script(tokens=["Hay."])]
    sink = RecordingSink()
    asker = InProcessAsker(None, None, None, service=service)  # type: ignore[arg-type]
    await asker.ask("What do llamas eat?", sink)  # type: ignore[arg-type]
    await asker.ask("", sink)  # type: ignore[arg-type]
    await asker.close()
    assert sink.kinds()[0] == "accepted"
    assert sink.kinds()[-2:] == ["error", "done"]
    blank = sink.of("error")[-1]
    assert blank.code == ErrorCode.INVALID_REQUEST  # type: ignore[union-attr]


async def test_rag_evals_answers_go_through_the_front_door(
    settings: Settings, deps: QueryDeps
) -> None:
    """A question the service refuses (here: over this deployment's lower
    question limit) is an answer with its error; it crashed the whole run."""
    from cli.eval.answers import run_answers
    from cli.eval.questions import EvalQuestion

    strict = settings.model_copy(
        update={"query": settings.query.model_copy(update={"max_question_chars": 40})}
    )
    service = AnswerService(strict, deps)
    good = EvalQuestion(question="What do llamas eat?", doc_ids=["llamas"])
    long = EvalQuestion(question="What do llamas eat? " * 5, doc_ids=["llamas"])
    summary = await run_answers([good, long], service, "knn", 3)
    first, second = summary.results
    assert first.error is None
    assert second.error is not None and second.error.startswith("question_too_long")
