"""A recording ConnectionSink: keeps every event; can play a client that leaves.

sink = RecordingSink(gone_after=3)   # the 4th send raises ConnectionGone
await sink.wait_for("done")          # until a done event arrived
"""

from __future__ import annotations

import asyncio

from shared.errors import ConnectionGone
from shared.ports import ServerEvent


class RecordingSink:
    def __init__(self, gone_after: int | None = None) -> None:
        self.events: list[ServerEvent] = []
        self.gone_after = gone_after
        self._changed = asyncio.Condition()

    async def send(self, event: ServerEvent) -> None:
        if self.gone_after is not None and len(self.events) >= self.gone_after:
            raise ConnectionGone("client left")
        async with self._changed:
            self.events.append(event)
            self._changed.notify_all()

    def kinds(self) -> list[str]:
        return [event.event for event in self.events]

    def of(self, kind: str) -> list[ServerEvent]:
        return [event for event in self.events if event.event == kind]

    async def wait_for(self, kind: str, count: int = 1) -> list[ServerEvent]:
        async with self._changed:
            await self._changed.wait_for(lambda: len(self.of(kind)) >= count)
        return self.of(kind)
