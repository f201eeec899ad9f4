"""The query service's one front door, transport-free: a client frame in, events out.

    frame -> parse -> ask    -> a Job (ids) -> claim a slot (duplicate id? too many?)
                                -> check the ask (limits, preset) -> ``accepted``
                                -> launch the answer (``AnswerService.answer``)
                      cancel -> flag the running answer, or ``unknown_request``
                      ping   -> ``pong``
                      bad    -> ``error`` (the connection stays open)

Both transports call it: the local aiohttp server (``session.py``) and the
Lambda behind API Gateway (``lambda_handler.py``). Each supplies only how its
answers run (:class:`Runs`): as tasks in this process, or as a worker
invocation with the running requests in DynamoDB. So the local server and the
deployed API route, refuse and word their errors the same way.

A rejected ask gets ``error`` + ``done(stop_reason=error)`` so the client can
close out that request id (an ask frame that fails the schema too, when it
carried a well-formed request id: the error goes back under it), except a
duplicate request id, which gets only ``error`` (a ``done`` would end the
answer still running under that id). The slot is claimed before the ask is
validated for that reason: a duplicate id is refused as a duplicate whatever
else is wrong with the ask.
"""

from __future__ import annotations

import logging
import time
import uuid
from typing import Protocol

from services.query.answer.refusals import (
    AskRejected,
    refusal,
    send_rejection,
    unknown_request,
)
from services.query.answer.service import AnswerService, Job
from shared.access import Principal
from shared.errors import InvalidAction
from shared.ports import ConnectionSink
from shared.protocol import (
    AcceptedEvent,
    AskAction,
    CancelAction,
    ErrorCode,
    ErrorEvent,
    PongEvent,
    parse_client_action,
)
from shared.settings import QuerySettings

log = logging.getLogger(__name__)


class Runs(Protocol):
    """Where a transport keeps the answers running on one connection."""

    async def claim(self, request_id: str, max_running: int) -> ErrorCode | None:
        """Reserve a slot for ``request_id``; the refusal code when the id is
        already running or the connection is at its limit."""
        ...

    async def release(self, request_id: str) -> None:
        """Give back a claimed slot whose answer will not run."""
        ...

    async def launch(self, job: Job, sink: ConnectionSink) -> None:
        """Start streaming an accepted answer (claimed before); return at once."""
        ...

    async def cancel(self, request_id: str) -> bool:
        """Ask a running answer to stop; False if no such request runs."""
        ...


def new_job(ask: AskAction, principal: Principal, received_at: float | None = None) -> Job:
    """The ask with its request and conversation ids (new ones where the client
    sent none), for ``principal`` (the caller as the transport authenticated
    it), arrived at ``received_at`` (now, if not given)."""
    return Job(
        ask=ask,
        request_id=ask.request_id or uuid.uuid4().hex,
        conversation_id=ask.conversation_id or uuid.uuid4().hex,
        principal=principal,
        received_at=received_at if received_at is not None else time.time(),
    )


def check_ask(ask: AskAction, query: QuerySettings) -> None:
    """Raise AskRejected unless the question and preset are acceptable."""
    limit = query.max_question_chars
    if len(ask.question) > limit:
        raise AskRejected(ErrorCode.QUESTION_TOO_LONG, f"question exceeds {limit} characters")
    if not ask.question.strip():
        raise AskRejected(ErrorCode.INVALID_REQUEST, "question is blank")
    preset = ask.preset or "default"
    if preset not in query.presets:
        known = ", ".join(sorted(query.presets))
        raise AskRejected(ErrorCode.UNKNOWN_PRESET, f"unknown preset {preset!r}; known: {known}")


class FrontDoor:
    def __init__(self, service: AnswerService, max_running: int) -> None:
        self._query = service.query
        self._max = max_running

    async def handle_frame(
        self, frame: str | bytes, sink: ConnectionSink, runs: Runs, principal: Principal
    ) -> None:
        """Handle one client frame from ``principal`` (the caller the transport
        authenticated, never anything in the frame); raises only ConnectionGone."""
        try:
            action = parse_client_action(frame)
        except InvalidAction as exc:
            await self._bad_frame(exc, sink, runs)
            return
        if isinstance(action, AskAction):
            await self._ask(action, sink, runs, principal)
        elif isinstance(action, CancelAction):
            if not await runs.cancel(action.request_id):
                await sink.send(unknown_request(action.request_id))
        else:
            await sink.send(PongEvent())

    async def _bad_frame(self, exc: InvalidAction, sink: ConnectionSink, runs: Runs) -> None:
        """``error`` under the frame's request id (when it had a usable one); an
        ask is ended with ``done`` too, by the same rules as any refused ask."""
        code, request_id = ErrorCode(exc.code), exc.request_id
        if exc.action != "ask" or request_id is None:
            await sink.send(ErrorEvent(request_id=request_id, code=code, message=str(exc)))
            return
        refused = await runs.claim(request_id, self._max)
        if refused == ErrorCode.DUPLICATE_REQUEST:
            duplicate = refusal(refused, request_id, self._max)
            await send_rejection(sink, request_id, duplicate.code, str(duplicate))
            return
        if refused is None:
            await runs.release(request_id)
        await send_rejection(sink, request_id, code, str(exc))

    async def _ask(
        self, ask: AskAction, sink: ConnectionSink, runs: Runs, principal: Principal
    ) -> None:
        job = new_job(ask, principal, received_at=time.time())
        refused = await runs.claim(job.request_id, self._max)
        if refused is not None:
            exc = refusal(refused, job.request_id, self._max)
            await send_rejection(sink, ask.request_id, exc.code, str(exc))
            return
        try:
            check_ask(ask, self._query)
        except AskRejected as exc:
            await runs.release(job.request_id)
            await send_rejection(sink, ask.request_id, exc.code, str(exc))
            return
        try:
            await sink.send(
                AcceptedEvent(request_id=job.request_id, conversation_id=job.conversation_id)
            )
        except BaseException:  # the client left before its answer started
            await runs.release(job.request_id)
            raise
        await runs.launch(job, sink)
