"""The query Lambda on real API Gateway WebSocket event shapes.

Real aiobotocore clients post frames to a stand-in Management API and invoke
a stand-in Lambda API over HTTP; the shared state table is a real DynamoDB
API (moto server). Each "container" is its own LambdaRuntime (own event
loop, own clients), run in a thread as Lambda would run it.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from services.query.answer.parts import build_query_deps
from services.query.answer.refusals import refusal
from services.query.state.dynamodb import DynamoDbState
from services.query.state.registry import InMemoryRegistry
from services.query.transports.apigw import ManagementApi
from services.query.transports.lambda_handler import WORKER_KEY, LambdaApp
from services.query.transports.lambda_invoker import LambdaInvoker
from shared.adapters.sqlite.store import SqliteVectorIndex
from shared.lambda_runtime import LambdaRuntime
from shared.protocol import ErrorCode, StopReason
from shared.settings import AwsSettings, QuerySettings, Settings
from tests.aws_doubles import AwsStandIn, serve_app
from tests.fakes.chat_model import FakeChatModel, Script
from tests.fakes.embedder import FakeEmbedder
from tests.query.events import (
    LambdaContext,
    authorizer_context,
    connect_event,
    disconnect_event,
    invocation_failure_record,
    message_event,
    new_connection_id,
    sqs_event,
)

Frames = list[dict[str, Any]]
OK_200 = {"statusCode": 200}


def kinds(frames: Frames) -> list[str]:
    return [str(frame["event"]) for frame in frames]


def has_done(frames: Frames) -> bool:
    return any(frame["event"] == "done" for frame in frames)


@pytest.fixture(autouse=True)
def aws_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")


@pytest.fixture
def stand_in() -> AwsStandIn:
    return AwsStandIn()


@pytest.fixture
async def lambda_settings(settings: Settings, stand_in: AwsStandIn) -> AsyncIterator[Settings]:
    async for url in serve_app(stand_in.app()):
        yield settings.model_copy(
            update={
                "aws": AwsSettings(region="us-east-1", endpoint_url=url),
                "query": QuerySettings(coalesce_ms=50.0, max_concurrent_per_connection=1),
            }
        )


Container = Callable[[], LambdaRuntime[LambdaApp]]


@pytest.fixture
def containers(
    lambda_settings: Settings,
    model: FakeChatModel,
    index: SqliteVectorIndex,
    tmp_path: Path,
    moto_url: str,
    state_table: str,
) -> Iterator[Container]:
    """Each call is a new Lambda container sharing the DynamoDB state table."""
    started: list[LambdaRuntime[LambdaApp]] = []
    dynamo = lambda_settings.model_copy(
        update={
            "aws": AwsSettings(region="us-east-1", endpoint_url=moto_url),
            "query": lambda_settings.query.model_copy(update={"state_table": state_table}),
        }
    )

    def build() -> LambdaApp:
        state = DynamoDbState(dynamo)
        deps = build_query_deps(
            lambda_settings,
            embedder=FakeEmbedder(),
            index=SqliteVectorIndex(index.path),
            model=model,
            conversations=state,
        )
        return LambdaApp(
            lambda_settings,
            deps,
            state,
            ManagementApi(lambda_settings),
            LambdaInvoker(lambda_settings),
            poll_s=0.02,
        )

    def new() -> LambdaRuntime[LambdaApp]:
        runtime = LambdaRuntime(build)
        started.append(runtime)
        return runtime

    yield new
    for runtime in started:
        runtime.close()


async def invoke(
    runtime: LambdaRuntime[LambdaApp], event: dict[str, Any], context: LambdaContext | None = None
) -> dict[str, Any]:
    return await asyncio.to_thread(runtime, event, context or LambdaContext())


async def ask_and_run_worker(
    front: LambdaRuntime[LambdaApp],
    worker: LambdaRuntime[LambdaApp],
    stand_in: AwsStandIn,
    connection: str,
    **ask: Any,
) -> Frames:
    before = len(stand_in.invocations)
    await invoke(front, message_event(connection, {"action": "ask", **ask}))
    name, kind, payload = stand_in.invocations[before]
    assert name == LambdaContext().invoked_function_arn and kind == "Event"
    await invoke(worker, payload)
    return stand_in.frames[connection]


async def test_connect_and_disconnect_are_acknowledged(containers: Container) -> None:
    runtime = containers()
    connection = new_connection_id()
    assert await invoke(runtime, connect_event(connection)) == {"statusCode": 200}
    assert await invoke(runtime, disconnect_event(connection)) == {"statusCode": 200}


async def test_ask_is_accepted_then_answered_by_an_async_worker(
    containers: Container, stand_in: AwsStandIn, model: FakeChatModel
) -> None:
    model.scripts = [Script(tokens=["Twenty", " five", " days", " [1]."])]
    front, worker = containers(), containers()
    connection = new_connection_id()
    await invoke(
        front,
        message_event(
            connection, {"action": "ask", "question": "vacation days?", "request_id": "r1"}
        ),
    )
    assert kinds(stand_in.frames[connection]) == ["accepted"]  # $default returned at once
    (_, _, payload) = stand_in.invocations[0]
    assert payload[WORKER_KEY]["request_id"] == "r1"
    await invoke(worker, payload)
    frames = stand_in.frames[connection]
    assert kinds(frames)[-2:] == ["sources", "done"]
    text = "".join(f["text"] for f in frames if f["event"] == "token")
    assert text == "Twenty five days [1]."
    assert frames[-2]["citations"][0]["cited"] is True
    # The worker attributes the answer like the local server does.
    (sentence,) = frames[-2]["sentences"]
    assert (sentence["start"], sentence["end"]) == (0, len(text))
    assert sentence["support"] == "supported" and sentence["sources"] == [1]
    assert frames[-1]["stop_reason"] == StopReason.END


async def test_the_worker_counts_its_timings_from_the_frames_arrival(
    containers: Container, stand_in: AwsStandIn, model: FakeChatModel
) -> None:
    """GIVEN a worker event that reached the worker 30 s after its frame arrived
    (a slow hand-over), THEN ``done`` counts from the arrival, as the local
    server does, not from the worker's start (the old meaning)."""
    model.scripts = [Script(tokens=["Twenty", " five", " days."])]
    front, worker = containers(), containers()
    connection = new_connection_id()
    before = time.time()
    await invoke(front, message_event(connection, {"action": "ask", "question": "days?"}))
    (_, _, payload) = stand_in.invocations[0]
    arrived = payload[WORKER_KEY]["received_at"]
    assert before <= arrived <= time.time()  # the $default invocation stamped the arrival
    payload[WORKER_KEY]["received_at"] = arrived - 30.0
    await invoke(worker, payload)
    done = stand_in.frames[connection][-1]
    assert done["event"] == "done" and done["stop_reason"] == StopReason.END
    assert done["time_to_first_token_ms"] >= 30_000
    assert done["total_ms"] >= done["time_to_first_token_ms"]


async def test_a_worker_event_from_before_the_arrival_stamp_still_answers(
    containers: Container, stand_in: AwsStandIn, model: FakeChatModel
) -> None:
    """An event queued by the previous deployment has no ``received_at``: it is
    answered (timed from the worker's start)."""
    model.scripts = [Script(tokens=["Yes."])]
    front, worker = containers(), containers()
    connection = new_connection_id()
    await invoke(front, message_event(connection, {"action": "ask", "question": "days?"}))
    (_, _, payload) = stand_in.invocations[0]
    del payload[WORKER_KEY]["received_at"]
    await invoke(worker, payload)
    done = stand_in.frames[connection][-1]
    assert done["stop_reason"] == StopReason.END


async def test_tokens_are_coalesced_and_frames_stay_under_32_kb(
    containers: Container, stand_in: AwsStandIn, model: FakeChatModel
) -> None:
    model.scripts = [Script(tokens=["tok "] * 200 + ["x" * 70_000])]
    front, worker = containers(), containers()
    connection = new_connection_id()
    frames = await ask_and_run_worker(front, worker, stand_in, connection, question="llamas?")
    tokens = [f for f in frames if f["event"] == "token"]
    assert "".join(t["text"] for t in tokens) == "tok " * 200 + "x" * 70_000
    assert len(tokens) < 100  # far fewer posts than model tokens
    assert [t["seq"] for t in tokens] == list(range(len(tokens)))
    assert max(stand_in.frame_sizes) < 32 * 1024


async def test_cancel_from_another_invocation_stops_the_worker(
    containers: Container, stand_in: AwsStandIn, model: FakeChatModel
) -> None:
    model.scripts = [Script(tokens=["word "] * 400, delay_s=0.01)]
    front, worker, other = containers(), containers(), containers()
    connection = new_connection_id()
    await invoke(
        front,
        message_event(connection, {"action": "ask", "question": "llamas?", "request_id": "long"}),
    )
    running = asyncio.create_task(invoke(worker, stand_in.invocations[0][2]))
    await stand_in.wait_for(connection, lambda frames: "token" in kinds(frames))
    await invoke(other, message_event(connection, {"action": "cancel", "request_id": "long"}))
    await running
    frames = stand_in.frames[connection]
    assert frames[-1]["event"] == "done" and frames[-1]["stop_reason"] == StopReason.CANCELLED
    assert model.streams[0].cancelled
    assert model.streams[0].tokens_sent < 400


async def test_gone_client_stops_generation_at_once(
    containers: Container, stand_in: AwsStandIn, model: FakeChatModel
) -> None:
    model.scripts = [Script(tokens=["word "] * 400, delay_s=0.005)]
    front, worker = containers(), containers()
    connection = new_connection_id()
    stand_in.gone_after[connection] = 3  # accepted + two token frames, then 410 Gone
    await ask_and_run_worker(front, worker, stand_in, connection, question="llamas?")
    assert model.streams[0].cancelled
    assert model.streams[0].tokens_sent < 400
    assert not has_done(stand_in.frames[connection])


async def test_a_worker_near_the_function_timeout_ends_the_answer_properly(
    containers: Container, stand_in: AwsStandIn, model: FakeChatModel
) -> None:
    # The answer would take ~13 s (the fake stops at max_new_tokens=256, 0.05 s
    # each); the function has 5 s left after its margin, so the model is
    # streaming when time runs out (5 s, not less, so that a busy machine still
    # reaches the model before the deadline).
    model.scripts = [Script(tokens=["word "] * 2000, delay_s=0.05)]
    front, worker = containers(), containers()
    connection = new_connection_id()
    await invoke(front, message_event(connection, {"action": "ask", "question": "llamas?"}))
    almost_out = LambdaContext(remaining_ms=8_000)
    await invoke(worker, stand_in.invocations[0][2], almost_out)
    frames = stand_in.frames[connection]
    assert kinds(frames)[-2:] == ["error", "done"]
    assert frames[-2]["code"] == ErrorCode.MODEL_FAILED
    assert frames[-1]["stop_reason"] == StopReason.ERROR
    assert model.streams[0].cancelled


async def test_disconnect_stops_a_running_worker(
    containers: Container, stand_in: AwsStandIn, model: FakeChatModel
) -> None:
    model.scripts = [Script(tokens=["word "] * 400, delay_s=0.01)]
    front, worker, other = containers(), containers(), containers()
    connection = new_connection_id()
    await invoke(front, message_event(connection, {"action": "ask", "question": "llamas?"}))
    running = asyncio.create_task(invoke(worker, stand_in.invocations[0][2]))
    await stand_in.wait_for(connection, lambda frames: "token" in kinds(frames))
    await invoke(other, disconnect_event(connection))
    await running
    assert model.streams[0].cancelled


async def test_follow_up_in_another_container_sees_the_conversation(
    containers: Container, stand_in: AwsStandIn, model: FakeChatModel
) -> None:
    model.scripts = [Script(tokens=["Hay [1]."]), Script(tokens=["Yes."])]
    connection = new_connection_id()
    frames = await ask_and_run_worker(
        containers(), containers(), stand_in, connection, question="What do llamas eat?"
    )
    conversation = frames[0]["conversation_id"]
    await ask_and_run_worker(
        containers(),
        containers(),
        stand_in,
        connection,
        question="Do they drink?",
        conversation_id=conversation,
    )
    assert "What do llamas eat? [/INST] Hay [1]. </s><s>[INST]" in model.streams[1].prompt


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ("{nope", ErrorCode.INVALID_JSON),
        ('{"action": "sing"}', ErrorCode.UNKNOWN_ACTION),
        ('{"action": "ask", "question": ""}', ErrorCode.INVALID_REQUEST),
        ('{"action": "ask", "question": "' + "q" * 4001 + '"}', ErrorCode.QUESTION_TOO_LONG),
        ('{"action": "ask", "question": "q", "filters": {"a": {}}}', ErrorCode.BAD_FILTER),
        ('{"action": "ask", "question": "q", "preset": "pirate"}', ErrorCode.UNKNOWN_PRESET),
        ('{"action": "cancel", "request_id": "ghost"}', ErrorCode.UNKNOWN_REQUEST),
        # the same guards as the local server (issue #14): deep nesting, strict types
        pytest.param(
            '{"action":"ask","question":"q","filters":' + "[" * 100_000 + "]" * 100_000 + "}",
            ErrorCode.INVALID_JSON,
            id="nested-100k",
        ),
        ('{"action": "ask", "question": "q", "k": "5"}', ErrorCode.INVALID_REQUEST),
        ('{"action": "ask", "question": "q", "k": true}', ErrorCode.INVALID_REQUEST),
    ],
)
async def test_bad_frames_get_error_events_and_the_connection_stays_usable(
    containers: Container, stand_in: AwsStandIn, body: str, code: ErrorCode
) -> None:
    front = containers()
    connection = new_connection_id()
    assert await invoke(front, message_event(connection, body)) == {"statusCode": 200}
    assert [f["code"] for f in stand_in.frames[connection] if f["event"] == "error"] == [code]
    await invoke(front, message_event(connection, {"action": "ping"}))
    assert stand_in.frames[connection][-1] == {"event": "pong"}


async def test_concurrency_limit_and_duplicates_hold_across_invocations(
    containers: Container, stand_in: AwsStandIn
) -> None:
    front, other = containers(), containers()
    connection = new_connection_id()
    ask = {"action": "ask", "question": "llamas?", "request_id": "one"}
    await invoke(front, message_event(connection, ask))
    await invoke(other, message_event(connection, ask))
    await invoke(other, message_event(connection, {**ask, "request_id": "two"}))
    errors = [f for f in stand_in.frames[connection] if f["event"] == "error"]
    assert [f["code"] for f in errors] == [ErrorCode.DUPLICATE_REQUEST, ErrorCode.TOO_MANY_REQUESTS]
    # the local server's words too: both go through the front door
    assert [f["message"] for f in errors] == [
        str(refusal(ErrorCode.DUPLICATE_REQUEST, "one", 1)),
        str(refusal(ErrorCode.TOO_MANY_REQUESTS, "two", 1)),
    ]


async def test_in_memory_state_serves_a_single_container(
    lambda_settings: Settings, index: SqliteVectorIndex, stand_in: AwsStandIn
) -> None:
    """Without a state table everything still works within one container."""

    def build() -> LambdaApp:
        deps = build_query_deps(
            lambda_settings,
            embedder=FakeEmbedder(),
            index=SqliteVectorIndex(index.path),
            model=FakeChatModel(),
        )
        return LambdaApp(
            lambda_settings,
            deps,
            InMemoryRegistry(),
            ManagementApi(lambda_settings),
            LambdaInvoker(lambda_settings),
        )

    runtime = LambdaRuntime(build)
    try:
        connection = new_connection_id()
        frames = await ask_and_run_worker(
            runtime, runtime, stand_in, connection, question="llamas?"
        )
        assert kinds(frames)[0] == "accepted" and kinds(frames)[-1] == "done"
    finally:
        await asyncio.to_thread(runtime.close)


# ---- identity: from the $connect authorizer's context, kept per connection -------------


async def label_by_team(index: SqliteVectorIndex) -> None:
    for doc_id, team in (("llamas", "farm"), ("vacation", "hr"), ("vacation-copy", "hr")):
        await index.set_groups(doc_id, [team])
    await index.set_groups("servers", [])  # admins only


def cited(frames: Frames) -> set[str]:
    (sources,) = [f for f in frames if f["event"] == "sources"]
    return {c["doc_id"] for c in sources["citations"]}


ASK_ALL = {"question": "vacation days llamas hay server room", "k": 10}


async def test_the_connect_authorizer_context_scopes_every_answer(
    containers: Container, stand_in: AwsStandIn, index: SqliteVectorIndex
) -> None:
    await label_by_team(index)
    connection = new_connection_id()
    hr = authorizer_context("hannah", ["hr"])
    assert await invoke(containers(), connect_event(connection, authorizer=hr)) == OK_200
    # $default events (another container) carry no authorizer context here: the
    # identity kept at $connect in the state table is used.
    frames = await ask_and_run_worker(containers(), containers(), stand_in, connection, **ASK_ALL)
    assert cited(frames) == {"vacation", "vacation-copy"}
    (_, _, payload) = stand_in.invocations[-1]
    assert payload[WORKER_KEY]["principal"] == "hannah"
    assert payload[WORKER_KEY]["groups"] == ["hr"]


async def test_an_admin_reads_even_documents_with_an_empty_list(
    containers: Container, stand_in: AwsStandIn, index: SqliteVectorIndex
) -> None:
    await label_by_team(index)
    connection = new_connection_id()
    admin = authorizer_context("root", ["rag-admins"])
    await invoke(containers(), connect_event(connection, authorizer=admin))
    frames = await ask_and_run_worker(containers(), containers(), stand_in, connection, **ASK_ALL)
    assert "servers" in cited(frames)


async def test_an_authorizer_context_on_the_message_event_is_used_as_is(
    containers: Container, stand_in: AwsStandIn, index: SqliteVectorIndex
) -> None:
    await label_by_team(index)
    connection = new_connection_id()  # no $connect seen by this service (e.g. state expired)
    farm = authorizer_context("fred", ["farm"])
    front, worker = containers(), containers()
    await invoke(front, message_event(connection, {"action": "ask", **ASK_ALL}, farm))
    await invoke(worker, stand_in.invocations[-1][2])
    assert cited(stand_in.frames[connection]) == {"llamas"}


async def test_without_any_identity_only_open_documents_are_read(
    containers: Container, stand_in: AwsStandIn, index: SqliteVectorIndex
) -> None:
    await label_by_team(index)  # every document is restricted now
    connection = new_connection_id()
    frames = await ask_and_run_worker(containers(), containers(), stand_in, connection, **ASK_ALL)
    assert cited(frames) == set()
    assert kinds(frames)[-1] == "done"


async def test_a_client_cannot_put_groups_in_its_frame(
    containers: Container, stand_in: AwsStandIn, index: SqliteVectorIndex
) -> None:
    await label_by_team(index)
    connection = new_connection_id()
    await invoke(
        containers(), connect_event(connection, authorizer=authorizer_context("fred", ["farm"]))
    )
    body = {"action": "ask", **ASK_ALL, "groups": ["hr"]}
    await invoke(containers(), message_event(connection, body))
    errors = [f for f in stand_in.frames[connection] if f["event"] == "error"]
    assert [e["code"] for e in errors] == [ErrorCode.INVALID_REQUEST]
    assert stand_in.invocations == []  # no worker started


async def test_a_replayed_worker_event_never_sends_a_second_answer(
    containers: Container, stand_in: AwsStandIn, model: FakeChatModel
) -> None:
    # GIVEN an answer streamed by a worker
    model.scripts = [Script(tokens=["Twenty", " five", " days."])]
    front, worker, retry = containers(), containers(), containers()
    connection = new_connection_id()
    frames = await ask_and_run_worker(
        front, worker, stand_in, connection, question="vacation days?", request_id="r1"
    )
    assert kinds(frames)[-1] == "done"
    sent = len(frames)
    # WHEN Lambda delivers the same asynchronous event again (another container)
    (_, _, payload) = stand_in.invocations[0]
    assert await invoke(retry, payload) == {"statusCode": 200}
    # THEN nothing more reaches the client and the model is not asked again
    assert len(stand_in.frames[connection]) == sent
    assert len(model.streams) == 1
    # AND the client may reuse the request id for a new question
    again = await ask_and_run_worker(
        front, worker, stand_in, connection, question="and sick days?", request_id="r1"
    )
    assert kinds(again)[-1] == "done" and len(model.streams) == 2


# ---- issue #26 item 5: a worker event Lambda drops still ends the answer ---------


async def test_a_dropped_worker_event_ends_in_an_error_not_silence(
    containers: Container, stand_in: AwsStandIn
) -> None:
    # GIVEN an accepted ask whose worker event Lambda kept past its maximum age
    front, reader, late = containers(), containers(), containers()
    connection = new_connection_id()
    ask = {"action": "ask", "question": "llamas?", "request_id": "lost"}
    await invoke(front, message_event(connection, ask))
    worker_event = stand_in.invocations[0][2]
    # WHEN Lambda's record of the dropped event arrives from the on-failure queue
    dropped = sqs_event(invocation_failure_record(worker_event, "EventAgeExceeded"))
    assert await invoke(reader, dropped) == {"batchItemFailures": []}
    # THEN the client gets an error and done for that request
    frames = stand_in.frames[connection]
    assert kinds(frames) == ["accepted", "error", "done"]
    assert frames[1]["request_id"] == "lost" and frames[1]["code"] == ErrorCode.INTERNAL_ERROR
    assert "could not start" in frames[1]["message"]
    assert frames[2]["stop_reason"] == StopReason.ERROR
    # … a late delivery of the same event answers nothing
    await invoke(late, worker_event)
    assert kinds(stand_in.frames[connection]) == ["accepted", "error", "done"]
    # … and the connection's slot is free again (max one running answer)
    await invoke(front, message_event(connection, {**ask, "request_id": "again"}))
    assert kinds(stand_in.frames[connection])[-1] == "accepted"


async def test_a_worker_that_failed_after_starting_is_reported_stopped(
    containers: Container, stand_in: AwsStandIn, model: FakeChatModel
) -> None:
    # GIVEN a worker that claimed its job and streamed tokens but sent no done (a
    # stand-in for one that died mid-answer: timeout, out of memory; here its
    # posts stop being taken), and Lambda then records the invocation as failed
    model.scripts = [Script(tokens=["word "] * 400, delay_s=0.01)]
    front, worker, reader = containers(), containers(), containers()
    connection = new_connection_id()
    stand_in.gone_after[connection] = 3  # the stand-in stops taking frames mid-answer
    ask = {"action": "ask", "question": "llamas?", "request_id": "died"}
    await invoke(front, message_event(connection, ask))
    worker_event = stand_in.invocations[0][2]
    await invoke(worker, worker_event)
    assert not has_done(stand_in.frames[connection])
    del stand_in.gone_after[connection]
    # WHEN Lambda records the failed invocation
    failed = sqs_event(invocation_failure_record(worker_event, "RetriesExhausted"))
    assert await invoke(reader, failed) == {"batchItemFailures": []}
    # THEN the client is told the answer stopped
    frames = stand_in.frames[connection]
    assert kinds(frames)[-2:] == ["error", "done"]
    assert frames[-2]["request_id"] == "died" and "stopped" in frames[-2]["message"]


async def test_records_that_are_not_worker_events_are_dropped_quietly(
    containers: Container, stand_in: AwsStandIn
) -> None:
    reader = containers()
    foreign = invocation_failure_record({"something": "else"})
    result = await invoke(reader, sqs_event(foreign, {"not": "a record"}))
    assert result == {"batchItemFailures": []}  # redelivery would not help
    assert not stand_in.frames
