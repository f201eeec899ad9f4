"""Issue #22 item 3: the first question after idle, on a stack scaled to zero.

Stand-ins fail as AWS documents while waking:

- the model (SageMaker inference component with 0 copies): every
  InvokeEndpointWithResponseStream is refused before the stream starts with HTTP 400,
  ``x-amzn-ErrorType: ValidationError``, "Inference Component has no capacity to process
  this request. ApplicationAutoScaling may be in-progress ..." (AWS's scale-to-zero
  post); the first refusal starts the scale-out (the NoCapacityInvocationFailures
  alarm), and requests succeed once a copy is in service (minutes on AWS, a fraction
  of a second here). Requests without the component's name are refused, as AWS does
  for an endpoint that hosts components.
- the search collection (NextGen, 0 OCU): no error, the first request just lags
  (AWS: 10-30 s).

The real aiobotocore client talks HTTP to the model stand-in; the client is a real
WebSocket client of the local server, which runs the same answer pipeline as Lambda.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiohttp import ClientSession, ClientWebSocketResponse, web
from aiohttp.test_utils import TestServer

from services.query.answer.parts import QueryDeps, build_query_deps
from services.query.answer.service import AnswerService
from services.query.answer.waking import ModelWake, WakeClock, try_again_message
from services.query.transports.server import create_app
from services.query.transports.session import ConnectionSession
from shared.access import Principal
from shared.adapters.aws.sagemaker_chat import WAKE_TYPICAL_S, SageMakerChatModel
from shared.adapters.sqlite.store import SqliteVectorIndex
from shared.errors import ModelError, ModelUnavailable, ModelWaking
from shared.ports import ModelEvent, ModelFinish, ModelToken, VectorIndex
from shared.protocol import ErrorCode, StatusEvent, StopReason
from shared.settings import AwsSettings, ModelSettings, QuerySettings, Settings
from tests.aws_doubles import payload_part, serve_app
from tests.fakes.chat_model import FakeChatModel, Script
from tests.fakes.embedder import FakeEmbedder
from tests.fakes.sink import RecordingSink
from tests.query.test_chat_adapters import PARAMS, tgi_line

COMPONENT = "rag-dev-llm-ic"
NO_CAPACITY = (
    "Inference Component has no capacity to process this request. ApplicationAutoScaling may "
    "be in-progress (if configured) or try to increase the capacity by invoking "
    "UpdateInferenceComponentRuntimeConfig API."
)


def refusal(message: str) -> web.Response:
    """SageMaker Runtime's error shape (rest-json): the type in x-amzn-ErrorType."""
    return web.json_response(
        {"message": message},
        status=400,
        headers={"x-amzn-ErrorType": "ValidationError:http://internal.amazon.com/coral/sagemaker/"},
    )


@dataclass
class ScaledToZeroEndpoint:
    """An endpoint hosting one inference component that starts with 0 copies (cold)
    or 1 (warm); ``wake_s`` after the first refused request a copy is in service."""

    wake_s: float
    warm: bool = False
    tokens: tuple[str, ...] = ("Grass", " and", " hay", " [1]", ".")
    woken_at: float | None = None
    refused: int = 0
    served: int = 0
    component_headers: list[str | None] = field(default_factory=list)

    async def _invoke(self, request: web.Request) -> web.StreamResponse:
        component = request.headers.get("X-Amzn-SageMaker-Inference-Component")
        self.component_headers.append(component)
        if component != COMPONENT:
            return refusal(
                "Inference Component Name header is required for endpoints to which you "
                "plan to deploy inference components."
            )
        now = time.monotonic()
        if not self.warm:
            self.woken_at = self.woken_at or now  # the refusal raises the alarm
            if now - self.woken_at < self.wake_s:
                self.refused += 1
                return refusal(NO_CAPACITY)
            self.warm = True
        self.served += 1
        response = web.StreamResponse(
            headers={"Content-Type": "application/vnd.amazon.eventstream"}
        )
        await response.prepare(request)
        for i, text in enumerate(self.tokens):
            details = {
                "finish_reason": "eos_token",
                "generated_tokens": len(self.tokens),
                "input_length": 40,
            }
            last = i == len(self.tokens) - 1
            await response.write(payload_part(tgi_line(text, details=details if last else None)))
        await response.write_eof()
        return response

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/endpoints/{name}/invocations-response-stream", self._invoke)
        return app


class WakingIndex:
    """A vector index whose first search after idle lags, as a NextGen collection does."""

    def __init__(self, inner: VectorIndex, lag_s: float) -> None:
        self._inner, self._lag_s = inner, lag_s
        self.lagged = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    async def _wake(self) -> None:
        if self._lag_s:
            self.lagged += 1
            lag, self._lag_s = self._lag_s, 0.0  # awake for whoever comes next
            await asyncio.sleep(lag)

    async def knn_search(self, *args: Any, **kwargs: Any) -> Any:
        await self._wake()
        return await self._inner.knn_search(*args, **kwargs)

    async def keyword_search(self, *args: Any, **kwargs: Any) -> Any:
        await self._wake()
        return await self._inner.keyword_search(*args, **kwargs)


@pytest.fixture
def aws_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")


def stack_settings(url: str, tmp: Any, **query: Any) -> Settings:
    return Settings(
        data_dir=tmp,
        aws=AwsSettings(region="us-east-1", endpoint_url=url),
        model=ModelSettings(
            backend="sagemaker", endpoint_name="rag-dev-llm", inference_component_name=COMPONENT
        ),
        query=QuerySettings(coalesce_ms=0.0, wake_poll_s=0.05, search_notice_s=0.2, **query),
    )


async def local_server(
    settings: Settings, deps: QueryDeps
) -> AsyncIterator[ClientWebSocketResponse]:
    server = TestServer(create_app(settings, deps), host="127.0.0.1")
    await server.start_server()
    try:
        async with ClientSession() as http, http.ws_connect(server.make_url("/ws")) as socket:
            yield socket
    finally:
        await server.close()


async def ask(socket: ClientWebSocketResponse) -> list[dict[str, Any]]:
    await socket.send_json({"action": "ask", "question": "What do llamas eat?", "request_id": "q1"})
    events: list[dict[str, Any]] = []
    while not events or events[-1]["event"] != "done":
        events.append(json.loads(await asyncio.wait_for(socket.receive_str(), timeout=30)))
    return events


async def run_stack(
    endpoint: ScaledToZeroEndpoint, index: VectorIndex, tmp: Any, **query: Any
) -> list[dict[str, Any]]:
    async for url in serve_app(endpoint.app()):
        settings = stack_settings(url, tmp, **query)
        model = SageMakerChatModel(settings)
        deps = build_query_deps(settings, embedder=FakeEmbedder(), index=index, model=model)
        try:
            async for socket in local_server(settings, deps):
                return await ask(socket)
        finally:
            await model.close()
    raise AssertionError("unreachable")


# ---- end to end: warm and cold ------------------------------------------------------


async def test_warm_stack_answers_without_status(
    aws_credentials: None, tmp_path: Any, index: SqliteVectorIndex
) -> None:
    endpoint = ScaledToZeroEndpoint(wake_s=60, warm=True)
    events = await run_stack(endpoint, index, tmp_path)
    kinds = [e["event"] for e in events]
    assert "status" not in kinds
    assert kinds[0] == "accepted" and kinds[-2:] == ["sources", "done"]
    assert endpoint.component_headers == [COMPONENT]  # the request names the component
    done = events[-1]
    assert done["stop_reason"] == "end"
    assert 0 < done["model_ms"] <= done["total_ms"]


async def test_cold_stack_says_what_wakes_then_answers(
    aws_credentials: None, tmp_path: Any, index: SqliteVectorIndex
) -> None:
    # GIVEN a night of idling: no model copy, and a collection at 0 OCU
    endpoint = ScaledToZeroEndpoint(wake_s=0.6)
    waking_index = WakingIndex(index, lag_s=0.5)
    # WHEN the first question arrives
    events = await run_stack(endpoint, waking_index, tmp_path)  # type: ignore[arg-type]
    kinds = [e["event"] for e in events]
    # THEN the client hears what is waking before any token, and then gets its answer
    statuses = [e for e in events if e["event"] == "status"]
    assert [s["component"] for s in statuses] == ["search", "model"]
    first_token = kinds.index("token")
    assert all(kinds.index("status") < first_token for _ in statuses)
    search, model = statuses
    assert search["typical_s"] == 30 and "search collection" in search["message"]
    assert model["typical_s"] == WAKE_TYPICAL_S and "model" in model["message"]
    assert "minutes" in model["message"]
    assert kinds[-2:] == ["sources", "done"]
    assert "".join(e["text"] for e in events if e["event"] == "token") == "Grass and hay [1]."
    assert endpoint.refused >= 2 and endpoint.served == 1  # asked again until it answered
    done = events[-1]
    assert done["stop_reason"] == "end"
    # the model's time excludes the wait: the answer took far longer than the model did
    assert done["model_ms"] < done["total_ms"] - 500
    for event in events:  # every event is valid protocol
        if event["event"] == "status":
            StatusEvent.model_validate(event)


async def test_a_wake_longer_than_the_budget_ends_with_try_again(
    aws_credentials: None, tmp_path: Any, index: SqliteVectorIndex
) -> None:
    # GIVEN a model that needs longer to wake than this answer may wait (the
    # worker's 15 minutes on Lambda, a fraction of a second here)
    endpoint = ScaledToZeroEndpoint(wake_s=60)
    events = await run_stack(endpoint, index, tmp_path, wake_wait_s=0.4)
    kinds = [e["event"] for e in events]
    assert kinds == ["accepted", "status", "error", "done"]
    error = events[2]
    assert error["code"] == ErrorCode.MODEL_UNAVAILABLE
    assert "try again in 10 minutes" in error["message"]
    assert events[-1]["stop_reason"] == StopReason.ERROR
    assert endpoint.served == 0


# ---- the adapter reads AWS's refusal ------------------------------------------------


async def test_no_capacity_refusal_is_model_waking(aws_credentials: None, tmp_path: Any) -> None:
    endpoint = ScaledToZeroEndpoint(wake_s=60)
    async for url in serve_app(endpoint.app()):
        model = SageMakerChatModel(stack_settings(url, tmp_path))
        try:
            with pytest.raises(ModelWaking) as raised:
                async for _ in model.stream("p", PARAMS):
                    pass
        finally:
            await model.close()
    assert raised.value.typical_s == WAKE_TYPICAL_S
    assert isinstance(raised.value, ModelUnavailable)  # callers that don't wait still see it


# ---- the waiting itself, on a clock of its own ------------------------------------------


@dataclass
class FakeClock:
    t: float = 0.0

    def now(self) -> float:
        return self.t

    async def sleep(self, seconds: float) -> None:
        self.t += seconds


class WakesAfter:
    """A model refusing with ModelWaking until the clock passes ``ready_at``."""

    def __init__(self, clock: FakeClock, ready_at: float, fail_mid_stream: bool = False) -> None:
        self.clock, self.ready_at, self.fail_mid_stream = clock, ready_at, fail_mid_stream
        self.opened = 0

    async def stream(self) -> AsyncIterator[ModelEvent]:
        self.opened += 1
        if self.clock.now() < self.ready_at:
            raise ModelWaking("starting", WAKE_TYPICAL_S)
        yield ModelToken("Hi")
        if self.fail_mid_stream:
            raise ModelWaking("lost the copy", WAKE_TYPICAL_S)
        self.clock.t += 2.0  # decoding takes 2 s
        yield ModelFinish(StopReason.END, prompt_tokens=3, completion_tokens=1)


async def drain(wake: ModelWake, model: WakesAfter) -> list[ModelEvent]:
    return [event async for event in wake.stream(model.stream)]


async def test_status_every_30_seconds_while_a_model_wakes() -> None:
    clock, sink = FakeClock(), RecordingSink()
    wake = ModelWake(sink.send, "q1", budget_s=840, clock=WakeClock(clock.now, clock.sleep))
    model = WakesAfter(clock, ready_at=400)  # a 6 min 40 s wake
    events = await drain(wake, model)
    assert [type(e) for e in events] == [ModelToken, ModelFinish]
    statuses = sink.of("status")
    # one at once, then one per 30 s: 400 s of waiting is 14 of them
    assert len(statuses) == 14
    assert [s.elapsed_s for s in statuses[:3]] == [0.0, 30.0, 60.0]  # type: ignore[union-attr]
    assert model.opened == 28  # refused at 0, 15, ... 390 s; taken at 405 s
    assert wake.opened_at == 405.0  # the model's time starts at the request it took


async def test_budget_spent_ends_with_try_again_in_minutes() -> None:
    clock, sink = FakeClock(), RecordingSink()
    wake = ModelWake(sink.send, "q1", budget_s=240, clock=WakeClock(clock.now, clock.sleep))
    with pytest.raises(ModelUnavailable) as raised:
        await drain(wake, WakesAfter(clock, ready_at=10_000))
    assert clock.t <= 240  # never waits past its budget
    assert "try again in 6 minutes" in str(raised.value)  # 600 s typical - 4 min waited
    assert not isinstance(raised.value, ModelWaking)


async def test_a_stream_failing_after_its_first_token_is_not_retried() -> None:
    clock, sink = FakeClock(), RecordingSink()
    wake = ModelWake(sink.send, "q1", budget_s=840, clock=WakeClock(clock.now, clock.sleep))
    model = WakesAfter(clock, ready_at=0, fail_mid_stream=True)
    with pytest.raises(ModelWaking):
        await drain(wake, model)
    assert model.opened == 1 and sink.of("status") == []


def test_try_again_message_never_says_zero_minutes() -> None:
    assert "try again in 1 minute" in try_again_message(600, 590)
    assert "try again in 2 minutes" in try_again_message(600, 900)  # slower than usual


async def test_other_model_errors_are_not_waited_for(
    tmp_path: Any, index: SqliteVectorIndex
) -> None:
    settings = Settings(data_dir=tmp_path, query=QuerySettings(coalesce_ms=0.0, wake_poll_s=0.01))
    model = FakeChatModel(Script(tokens=[], error=ModelError("bad input")))
    deps = build_query_deps(settings, embedder=FakeEmbedder(), index=index, model=model)
    sink = RecordingSink()
    session = ConnectionSession(AnswerService(settings, deps), sink, 1, Principal.single_user())
    await session.handle_frame(
        json.dumps({"action": "ask", "question": "llamas?", "request_id": "q"})
    )
    await session.wait_idle()
    assert "status" not in sink.kinds() and len(model.streams) == 1
    assert sink.of("error")[0].code == ErrorCode.MODEL_FAILED  # type: ignore[union-attr]


def test_the_terminal_shows_what_is_waking() -> None:
    from rich.console import Console

    from cli.ask.asking import TerminalSink

    out = Console(record=True, width=200)
    sink = TerminalSink(out)
    event = StatusEvent(
        request_id="q1",
        component="model",
        message="the model is starting",
        typical_s=600,
        elapsed_s=30.0,
    )
    asyncio.run(sink.send(event))
    assert "the model is starting (waited 30 s)" in out.export_text()


async def test_the_worker_time_limit_bounds_the_wait(
    tmp_path: Any, index: SqliteVectorIndex
) -> None:
    # GIVEN a Lambda worker with little time left and a model that stays asleep
    from services.query.answer.service import Job
    from shared.protocol import AskAction

    settings = Settings(data_dir=tmp_path, query=QuerySettings(coalesce_ms=0.0, wake_poll_s=0.05))
    model = FakeChatModel(Script(tokens=[], error=ModelWaking("asleep", WAKE_TYPICAL_S)))
    deps = build_query_deps(settings, embedder=FakeEmbedder(), index=index, model=model)
    service, sink = AnswerService(settings, deps), RecordingSink()
    ask = AskAction(action="ask", question="What do llamas eat?", request_id="q1")
    job = Job(ask=ask, request_id="q1", conversation_id="c1", principal=Principal.single_user())
    # WHEN it answers within 0.6 s
    await service.answer(job, sink, asyncio.Event(), time_limit_s=0.6)
    # THEN it gave up waiting in time to say when to come back (not the time-limit error)
    assert sink.kinds() == ["status", "error", "done"]
    error = sink.of("error")[0]
    assert error.code == ErrorCode.MODEL_UNAVAILABLE  # type: ignore[union-attr]
    assert "try again in 10 minutes" in error.message  # type: ignore[union-attr]
