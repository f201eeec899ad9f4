"""The query Lambda behind the API Gateway WebSocket API.

Routes: ``$connect`` (the authorizer has already run: the caller it vouched
for, ``requestContext.authorizer``, is kept per connection), ``$disconnect``
(flags the connection's running answers to stop) and ``$default`` (the query
service's front door, ``frontdoor.py``, shared with the local server). An
``ask`` is validated and acknowledged (``accepted``) in the
``$default`` invocation, which then invokes this same function
asynchronously with a worker payload and returns at once; the worker streams
the answer through ``post_to_connection``. So an answer is bound by the
function timeout, not by API Gateway's 29-second integration timeout.

Each worker job carries a fresh ``job_id`` that the worker claims (a
conditional write) before it streams: Lambda may deliver an asynchronous
event twice, and a replay must never send a second answer. The stack also
turns off Lambda's retries of these events (infra/components/chat_api.py).

A ``cancel`` or ``$disconnect`` arrives in yet another invocation: it sets a
flag in the shared registry (DynamoDB), which the worker polls every
``poll_s`` while it streams. A ``GoneException`` stops the worker at once.

A worker event Lambda drops (kept past its 60-second maximum age while the
function was throttled, or a worker that failed) is recorded by Lambda to the
stack's on-failure destination, an SQS queue this function reads back
(``Records`` events): the record's ``requestPayload`` is the worker event. If
the job was never claimed, this claims it (so a late worker stays silent) and
tells the client the answer could not start; if a worker claimed it and then
failed, the client is told the answer stopped. Either way the client gets an
``error`` and ``done`` within about a minute, not silence.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
import time
import uuid
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from services.query.answer.parts import QueryDeps, build_query_deps
from services.query.answer.refusals import send_rejection
from services.query.answer.service import AnswerService, Job
from services.query.frontdoor import FrontDoor
from services.query.state.ports import ConversationStore, RequestRegistry
from services.query.transports.identity import ANONYMOUS, principal_from_authorizer
from services.query.transports.ports import ConnectionSinks, Invoker
from shared.access import Principal
from shared.errors import ConnectionGone
from shared.lambda_runtime import LambdaRuntime
from shared.logs import configure_logging
from shared.ports import ConnectionSink
from shared.protocol import AskAction, ErrorCode
from shared.settings import Settings

log = logging.getLogger(__name__)

WORKER_KEY = "rag_query_worker"
OK = {"statusCode": 200}


def connect_response(event: dict[str, Any]) -> dict[str, Any]:
    """Accept the connection. A browser that sent its token as the subprotocol
    (``Sec-WebSocket-Protocol: bearer, <token>``) drops the socket unless one
    of the offered subprotocols is echoed back, so echo ``bearer`` (never the
    token itself)."""
    headers = {k.lower(): v for k, v in (event.get("headers") or {}).items()}
    offered = [p.strip() for p in str(headers.get("sec-websocket-protocol", "")).split(",")]
    if "bearer" in offered:
        return {"statusCode": 200, "headers": {"Sec-WebSocket-Protocol": "bearer"}}
    return dict(OK)


DEADLINE_MARGIN_S = 3.0


class WorkerJob(BaseModel):
    """The payload of the asynchronous worker invocation: the accepted :class:`Job`
    (arrival time included, so the worker's timings count from the frame's
    arrival as the local server's do) and where to send its answer."""

    model_config = ConfigDict(extra="forbid")

    ask: AskAction
    request_id: str
    conversation_id: str
    connection_id: str
    endpoint_url: str
    job_id: str  # unique per accepted ask; a replayed event carries the same one
    # The caller, as resolved from authentication by the $default invocation.
    principal: str
    groups: list[str]
    admin: bool = False
    # Job.received_at; None in an event sent before the field existed (then: now).
    received_at: float | None = None

    @classmethod
    def of(cls, job: Job, connection_id: str, endpoint_url: str) -> WorkerJob:
        return cls(
            ask=job.ask,
            request_id=job.request_id,
            conversation_id=job.conversation_id,
            connection_id=connection_id,
            endpoint_url=endpoint_url,
            principal=job.principal.id,
            groups=sorted(job.principal.groups),
            admin=job.principal.admin,
            received_at=job.received_at,
            job_id=uuid.uuid4().hex,
        )

    def job(self) -> Job:
        return Job(
            ask=self.ask,
            request_id=self.request_id,
            conversation_id=self.conversation_id,
            principal=Principal(id=self.principal, groups=frozenset(self.groups), admin=self.admin),
            received_at=self.received_at if self.received_at is not None else time.time(),
        )


class FailureContext(BaseModel):
    model_config = ConfigDict(extra="ignore", populate_by_name=True)

    request_id: str = Field(alias="requestId")
    # "EventAgeExceeded" (never ran in time) or "RetriesExhausted" (ran and failed).
    condition: str
    approximate_invoke_count: int = Field(default=0, alias="approximateInvokeCount")


class InvocationRecord(BaseModel):
    """Lambda's record of an asynchronous invocation that failed, as sent to an
    on-failure destination (AWS: "Capturing records of Lambda asynchronous
    invocations"); only the fields the product reads."""

    model_config = ConfigDict(extra="ignore", populate_by_name=True)

    version: str
    request_context: FailureContext = Field(alias="requestContext")
    request_payload: dict[str, Any] = Field(alias="requestPayload")
    response_context: dict[str, Any] | None = Field(default=None, alias="responseContext")


NEVER_STARTED = "the answer could not start in time (the service is busy); please ask again"
STOPPED = "the answer stopped unexpectedly; please ask again"


def _sqs_records(event: dict[str, Any]) -> list[dict[str, Any]] | None:
    records = event.get("Records")
    if not isinstance(records, list) or not records:
        return None
    if not all(isinstance(r, dict) and r.get("eventSource") == "aws:sqs" for r in records):
        return None
    return records


class LambdaApp:
    def __init__(
        self,
        settings: Settings,
        deps: QueryDeps,
        registry: RequestRegistry,
        management: ConnectionSinks,
        invoker: Invoker,
        poll_s: float = 0.25,
    ) -> None:
        self._settings = settings
        self._deps = deps
        self._service = AnswerService(settings, deps)
        self._door = FrontDoor(self._service, settings.query.max_concurrent_per_connection)
        self._registry = registry
        self._management = management
        self._invoker = invoker
        self._poll_s = poll_s

    async def handle(self, event: dict[str, Any], context: Any) -> dict[str, Any]:
        if WORKER_KEY in event:
            await self._work(WorkerJob.model_validate(event[WORKER_KEY]), context)
            return OK
        records = _sqs_records(event)
        if records is not None:
            return await self._worker_failures(records)
        request = event["requestContext"]
        route, connection_id = request["routeKey"], request["connectionId"]
        if route == "$connect":
            caller = self._authorized(request) or ANONYMOUS
            log.info("connect %s as %s", connection_id, caller.id)
            await self._registry.remember(connection_id, caller)
            return connect_response(event)
        if route == "$disconnect":
            log.info("disconnect %s", connection_id)
            await self._registry.disconnect(connection_id)
            return OK
        endpoint = self._management.endpoint(request["domainName"], request["stage"])
        sink = self._management.sink(endpoint, connection_id)
        runs = _WorkerRuns(
            self._registry, self._invoker, connection_id, endpoint, context.invoked_function_arn
        )
        with contextlib.suppress(ConnectionGone):
            caller = await self._caller(request)
            await self._door.handle_frame(_body(event), sink, runs, caller)
        return OK

    def _authorized(self, request: dict[str, Any]) -> Principal | None:
        return principal_from_authorizer(
            request.get("authorizer"), self._settings.query.admin_group
        )

    async def _caller(self, request: dict[str, Any]) -> Principal:
        """Who sent this frame: the authorizer's context on the event, else the one
        kept at $connect, else nobody vouched for (least privilege)."""
        found = self._authorized(request)
        if found is None:
            found = await self._registry.identity(request["connectionId"])
        return found or ANONYMOUS

    async def _work(self, worker: WorkerJob, context: Any) -> None:
        job = worker.job()
        sink = self._management.sink(worker.endpoint_url, worker.connection_id)
        if not await self._claim(worker, sink):
            return
        cancel = asyncio.Event()
        poller = asyncio.create_task(self._poll(worker, cancel))
        try:
            await self._service.answer(job, sink, cancel, time_limit_s=_time_left_s(context))
        finally:
            poller.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await poller
            await self._registry.finish(worker.connection_id, worker.request_id)

    async def _claim(self, worker: WorkerJob, sink: ConnectionSink) -> bool:
        try:
            if await self._registry.claim_job(worker.job_id):
                return True
        except Exception:
            # Without the claim a replay could not be told apart: answer nothing.
            log.exception("could not claim worker job %s", worker.job_id)
            with contextlib.suppress(Exception):
                await send_rejection(
                    sink, worker.request_id, ErrorCode.INTERNAL_ERROR, "internal error"
                )
            with contextlib.suppress(Exception):
                await self._registry.finish(worker.connection_id, worker.request_id)
            return False
        # A replay of an event whose answer was (or is being) streamed: stay silent,
        # and leave the running entry to the worker that owns it.
        log.warning("replayed worker event for %s ignored", worker.request_id)
        return False

    async def _worker_failures(self, records: list[dict[str, Any]]) -> dict[str, Any]:
        """Records of dropped worker events (the on-failure destination's queue)."""
        failed: list[dict[str, str]] = []
        for record in records:
            try:
                await self._worker_failed(str(record.get("body") or ""))
            except Exception:  # transient (registry, Management API): SQS redelivers
                log.exception("could not report a failed worker (%s)", record.get("messageId"))
                failed.append({"itemIdentifier": str(record.get("messageId"))})
        return {"batchItemFailures": failed}

    async def _worker_failed(self, body: str) -> None:
        try:
            failure = InvocationRecord.model_validate_json(body)
            worker = WorkerJob.model_validate(failure.request_payload[WORKER_KEY])
        except (ValidationError, KeyError) as exc:
            # Not ours, or not readable: redelivering it would not help.
            log.error("unreadable worker failure record dropped: %s", type(exc).__name__)
            return
        # Claiming the job first makes the outcome exact: a worker that starts
        # after this (a late delivery) finds the job taken and stays silent.
        never_started = await self._registry.claim_job(worker.job_id)
        log.warning(
            "worker for %s dropped by Lambda (%s, started: %s)",
            worker.request_id,
            failure.request_context.condition,
            not never_started,
        )
        sink = self._management.sink(worker.endpoint_url, worker.connection_id)
        message = NEVER_STARTED if never_started else STOPPED
        with contextlib.suppress(ConnectionGone):  # the client left: nobody to tell
            await send_rejection(sink, worker.request_id, ErrorCode.INTERNAL_ERROR, message)
        await self._registry.finish(worker.connection_id, worker.request_id)

    async def close(self) -> None:
        await self._management.close()
        for resource in (self._invoker, self._registry):
            closer = getattr(resource, "close", None)
            if closer is not None:
                await closer()
        await self._deps.close()

    async def _poll(self, worker: WorkerJob, cancel: asyncio.Event) -> None:
        while not cancel.is_set():
            await asyncio.sleep(self._poll_s)
            try:
                if await self._registry.should_stop(worker.connection_id, worker.request_id):
                    cancel.set()
            except Exception:  # a flaky registry must not kill the answer
                log.warning("cancel poll failed for %s", worker.request_id, exc_info=True)


@dataclass(frozen=True)
class _WorkerRuns:
    """The front door's Runs for one ``$default`` invocation: the connection's
    running requests live in the shared registry, and an accepted answer runs
    in an asynchronous invocation of this same function (the worker)."""

    registry: RequestRegistry
    invoker: Invoker
    connection_id: str
    endpoint: str
    function_arn: str

    async def claim(self, request_id: str, max_running: int) -> ErrorCode | None:
        return await self.registry.start(self.connection_id, request_id, max_running)

    async def release(self, request_id: str) -> None:
        await self.registry.finish(self.connection_id, request_id)

    async def cancel(self, request_id: str) -> bool:
        return await self.registry.cancel(self.connection_id, request_id)

    async def launch(self, job: Job, sink: ConnectionSink) -> None:
        worker = WorkerJob.of(job, self.connection_id, self.endpoint)
        try:
            await self.invoker.invoke_async(
                self.function_arn, {WORKER_KEY: worker.model_dump(mode="json")}
            )
        except Exception:
            log.exception("could not start the worker for %s", job.request_id)
            await self.release(job.request_id)
            await send_rejection(sink, job.request_id, ErrorCode.INTERNAL_ERROR, "internal error")


def _time_left_s(context: Any) -> float | None:
    """Seconds the worker may stream, keeping a margin to send the closing events."""
    remaining = getattr(context, "get_remaining_time_in_millis", None)
    if remaining is None:
        return None
    return max(0.0, float(remaining()) / 1000 - DEADLINE_MARGIN_S)


def _body(event: dict[str, Any]) -> str:
    body = event.get("body") or ""
    if event.get("isBase64Encoded"):
        return base64.b64decode(body).decode("utf-8", errors="replace")
    return str(body)


def build_app_from_environment() -> LambdaApp:
    from services.query.state.conversation import InMemoryConversationStore
    from services.query.state.registry import InMemoryRegistry
    from services.query.transports.apigw import ManagementApi
    from services.query.transports.lambda_invoker import LambdaInvoker
    from shared.settings import load_settings

    settings = load_settings()
    configure_logging(settings.log_level)
    registry: RequestRegistry
    conversations: ConversationStore
    if settings.query.state_table:
        from services.query.state.dynamodb import DynamoDbState

        state = DynamoDbState(settings)
        registry, conversations = state, state
    else:  # one container only: cancel across invocations will not reach the worker
        registry, conversations = InMemoryRegistry(), InMemoryConversationStore()
    deps = build_query_deps(settings, conversations=conversations)
    return LambdaApp(settings, deps, registry, ManagementApi(settings), LambdaInvoker(settings))


handler = LambdaRuntime(build_app_from_environment)
