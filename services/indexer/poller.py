"""The long-running poller: the same pipeline as the Lambda, fed by long polling.

- At most ``max_in_flight`` messages are held at once; the next receive asks
  only for free slots, so memory stays flat however long the backlog is.
- While a message is processed its visibility is extended (a heartbeat), so a
  long document is never handed to a second worker mid-way.
- A message is deleted only after success. A transient failure makes it
  visible again after a growing back-off (not at once: a dependency that is
  down must not burn the receive count towards the DLQ in seconds).
- Poison: to the DLQ with its reason, then deleted; without a DLQ, released at
  once so the queue's redrive moves it after its receive limit.
- Busy (another worker holds the document's lease): visible again after a
  short delay that grows with the receive count (``RAG_INDEXER__BUSY_RETRY_S``).
- On stop (SIGTERM/SIGINT) receiving stops (a long poll under way is let
  finish and what it returns is released at once); in-flight messages get a
  grace period to finish, and those still running are released (visibility 0).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable

from services.indexer.disposition import RETRY_BASE_S, Action, Outcome, Verdict, disposition
from services.indexer.runtime import Runtime
from shared.errors import RagError
from shared.ports import Queue, QueueMessage
from shared.settings import QueueSettings

log = logging.getLogger("services.indexer")


class Poller:
    def __init__(
        self,
        queue: Queue,
        runtime: Runtime,
        *,
        retry_base_s: float = RETRY_BASE_S,
        shutdown_grace_s: float = 25.0,
        idle_pause_s: float = 1.0,
    ) -> None:
        self._queue = queue
        self._runtime = runtime
        self._settings: QueueSettings = runtime.settings.queue
        self._retry_base_s = retry_base_s
        self._grace_s = shutdown_grace_s
        self._idle_pause_s = idle_pause_s
        self._in_flight: set[asyncio.Task[None]] = set()
        # Counters for operators' logs and for tests waiting on progress.
        self.processed = 0
        self.rejected = 0
        self.retried = 0
        self.busy = 0

    async def run(self, stop: asyncio.Event) -> None:
        await self._runtime.start()
        stopping = asyncio.create_task(stop.wait())
        try:
            while not stop.is_set():
                free = self._settings.max_in_flight - len(self._in_flight)
                if free <= 0:
                    await asyncio.wait(
                        {*self._in_flight, stopping}, return_when=asyncio.FIRST_COMPLETED
                    )
                    continue
                messages = await self._receive(free, stopping)
                for message in messages:
                    task = asyncio.create_task(self._handle(message))
                    self._in_flight.add(task)
                    task.add_done_callback(self._in_flight.discard)
        finally:
            stopping.cancel()
            await self._drain()

    async def _receive(self, free: int, stopping: asyncio.Task[bool]) -> list[QueueMessage]:
        receiving = asyncio.create_task(
            self._queue.receive(
                min(free, 10), self._settings.wait_seconds, self._settings.visibility_timeout_s
            )
        )
        await asyncio.wait({receiving, stopping}, return_when=asyncio.FIRST_COMPLETED)
        if not receiving.done():
            # Stopping mid long-poll. Cancelling the request would not cancel it
            # on the server, which could still hand out messages that nobody
            # sees until their visibility runs out; so let the poll end (within
            # wait_seconds; in-flight work goes on meanwhile) and release what it got.
            await asyncio.wait({receiving})
            with contextlib.suppress(RagError):
                for message in receiving.result():
                    await self._settle(self._queue.release(message), message, "release")
            return []
        try:
            return receiving.result()
        except RagError as exc:
            log.warning("receive failed", extra={"fields": {"error": str(exc)}})
            await asyncio.sleep(self._idle_pause_s)
            return []

    async def _handle(self, message: QueueMessage) -> None:
        heartbeat = asyncio.create_task(self._heartbeat(message))
        try:
            outcome = await self._runtime.pipeline.process(message)
        except asyncio.CancelledError:
            heartbeat.cancel()
            await self._settle(self._queue.release(message), message, "release")
            raise
        heartbeat.cancel()
        outcome.log()
        then = disposition(
            outcome, message.receive_count, self._runtime.settings, self._retry_base_s
        )
        if then.action is Action.ACK:
            await self._settle(self._queue.delete(message), message, "delete")
            self.processed += 1
        elif then.action is Action.DEAD_LETTER:
            await self._reject(message, outcome)
            self.rejected += 1
        else:
            # Busy (another worker holds the document) or a transient failure:
            # visible again after the disposition's delay.
            if outcome.verdict is Verdict.BUSY:
                self.busy += 1
            else:
                self.retried += 1
            await self._settle(self._queue.extend(message, then.delay_s), message, "back off")

    async def _reject(self, message: QueueMessage, outcome: Outcome) -> None:
        if await self._runtime.dead_letter(message, outcome):
            await self._settle(self._queue.delete(message), message, "delete")
        else:
            await self._settle(self._queue.release(message), message, "release")

    async def _heartbeat(self, message: QueueMessage) -> None:
        timeout = self._settings.visibility_timeout_s
        while True:
            await asyncio.sleep(max(1.0, timeout / 3))
            try:
                await self._queue.extend(message, timeout)
            except RagError as exc:
                log.warning(
                    "visibility extension failed",
                    extra={"fields": {"message_id": message.message_id, "error": str(exc)}},
                )

    async def _settle(self, call: Awaitable[None], message: QueueMessage, what: str) -> None:
        try:
            await call
        except RagError as exc:
            # Not fatal: an undeleted message is redelivered and is then a no-op.
            log.warning(
                f"could not {what} a message",
                extra={"fields": {"message_id": message.message_id, "error": str(exc)}},
            )

    async def _drain(self) -> None:
        if not self._in_flight:
            return
        log.info(
            "stopping: finishing in-flight messages",
            extra={"fields": {"in_flight": len(self._in_flight), "grace_s": self._grace_s}},
        )
        _done, pending = await asyncio.wait(set(self._in_flight), timeout=self._grace_s)
        for task in pending:
            task.cancel()  # _handle releases its message on cancellation
        if pending:
            await asyncio.gather(*pending, return_exceptions=True)
