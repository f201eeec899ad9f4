"""One WebSocket connection in a long-lived process (the local server).

Frames go through the query service's front door (``frontdoor.py``), which
routes them exactly as the deployed API does. What is local is only how
answers run: each one is a task in this process, cancelled through an
``asyncio.Event``, and every one stops when the connection closes.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from services.query.answer.service import AnswerService, Job
from services.query.frontdoor import FrontDoor
from shared.access import Principal
from shared.ports import ConnectionSink
from shared.protocol import ErrorCode


@dataclass
class _Running:
    cancel: asyncio.Event = field(default_factory=asyncio.Event)
    task: asyncio.Task[None] | None = None  # None between claim and launch


class ConnectionSession:
    """``principal``: the caller, as the transport authenticated it at connect time."""

    def __init__(
        self,
        service: AnswerService,
        sink: ConnectionSink,
        max_concurrent: int,
        principal: Principal,
    ) -> None:
        self._door = FrontDoor(service, max_concurrent)
        self._service = service
        self._sink = sink
        self._principal = principal
        self._running: dict[str, _Running] = {}

    @property
    def in_flight(self) -> int:
        return len(self._running)

    async def handle_frame(self, frame: str | bytes) -> None:
        """Handle one client frame; raises only ConnectionGone."""
        await self._door.handle_frame(frame, self._sink, self, self._principal)

    # The front door's Runs, kept in this process.

    async def claim(self, request_id: str, max_running: int) -> ErrorCode | None:
        if request_id in self._running:
            return ErrorCode.DUPLICATE_REQUEST
        if len(self._running) >= max_running:
            return ErrorCode.TOO_MANY_REQUESTS
        self._running[request_id] = _Running()
        return None

    async def release(self, request_id: str) -> None:
        self._running.pop(request_id, None)

    async def launch(self, job: Job, sink: ConnectionSink) -> None:
        running = self._running[job.request_id]
        running.task = asyncio.create_task(self._run(job, sink, running.cancel))

    async def cancel(self, request_id: str) -> bool:
        running = self._running.get(request_id)
        if running is None:
            return False
        running.cancel.set()
        return True

    async def _run(self, job: Job, sink: ConnectionSink, cancel: asyncio.Event) -> None:
        try:
            await self._service.answer(job, sink, cancel)
        finally:
            self._running.pop(job.request_id, None)

    def _tasks(self) -> list[asyncio.Task[None]]:
        return [r.task for r in self._running.values() if r.task is not None]

    async def wait_idle(self) -> None:
        """Wait until every running answer has finished (tests, graceful shutdown)."""
        while tasks := self._tasks():
            await asyncio.gather(*tasks)

    async def close(self) -> None:
        """The connection is gone: stop every answer now."""
        tasks = self._tasks()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
