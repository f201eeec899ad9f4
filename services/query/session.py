"""One WebSocket connection in a long-lived process (the local server).

Routes frames on ``action`` exactly as API Gateway's ``$default`` route does:
``ask`` starts an answer task, ``cancel`` stops one, ``ping`` answers ``pong``.
Every bad frame gets an ``error`` event and the connection carries on.

A rejected ask gets ``error`` + ``done(stop_reason=error)`` so the client can
close out that request id, except a duplicate request id, which gets only
``error`` (a ``done`` would end the answer still running under that id).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

from services.query.core import AnswerService, AskRejected, Job, send_rejection, unknown_request
from shared.errors import ConnectionGone, InvalidAction
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

log = logging.getLogger(__name__)


class ConnectionSession:
    def __init__(self, service: AnswerService, sink: ConnectionSink, max_concurrent: int) -> None:
        self._service = service
        self._sink = sink
        self._max = max_concurrent
        self._running: dict[str, tuple[asyncio.Task[None], asyncio.Event]] = {}

    @property
    def in_flight(self) -> int:
        return len(self._running)

    async def handle_frame(self, frame: str | bytes) -> None:
        """Handle one client frame; raises only ConnectionGone."""
        try:
            action = parse_client_action(frame)
        except InvalidAction as exc:
            await self._sink.send(ErrorEvent(code=ErrorCode(exc.code), message=str(exc)))
            return
        if isinstance(action, AskAction):
            await self._ask(action)
        elif isinstance(action, CancelAction):
            await self._cancel(action.request_id)
        else:
            await self._sink.send(PongEvent())

    async def _ask(self, ask: AskAction) -> None:
        started = time.perf_counter()
        try:
            job = self._accept(ask)
        except AskRejected as exc:
            await send_rejection(self._sink, ask.request_id, exc.code, str(exc))
            return
        cancel = asyncio.Event()
        await self._sink.send(
            AcceptedEvent(request_id=job.request_id, conversation_id=job.conversation_id)
        )
        task = asyncio.create_task(self._run(job, cancel, started))
        self._running[job.request_id] = (task, cancel)

    def _accept(self, ask: AskAction) -> Job:
        if ask.request_id is not None and ask.request_id in self._running:
            raise AskRejected(
                ErrorCode.DUPLICATE_REQUEST, f"request {ask.request_id!r} is already running"
            )
        if len(self._running) >= self._max:
            raise AskRejected(
                ErrorCode.TOO_MANY_REQUESTS,
                f"at most {self._max} answers may run at once on one connection",
            )
        return self._service.accept(ask)

    async def _run(self, job: Job, cancel: asyncio.Event, started: float) -> None:
        try:
            await self._service.answer(job, self._sink, cancel, started)
        except ConnectionGone:
            log.info("client left during %s; generation stopped", job.request_id)
        except Exception:  # a bug must not kill the connection silently
            log.exception("answer %s failed", job.request_id)
            with contextlib.suppress(ConnectionGone):
                await send_rejection(
                    self._sink, job.request_id, ErrorCode.INTERNAL_ERROR, "internal error"
                )
        finally:
            self._running.pop(job.request_id, None)

    async def _cancel(self, request_id: str) -> None:
        running = self._running.get(request_id)
        if running is None:
            await self._sink.send(unknown_request(request_id))
            return
        running[1].set()

    async def wait_idle(self) -> None:
        """Wait until every running answer has finished (tests, graceful shutdown)."""
        while self._running:
            await asyncio.gather(*(task for task, _ in self._running.values()))

    async def close(self) -> None:
        """The connection is gone: stop every answer now."""
        tasks = [task for task, _ in self._running.values()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
