"""The query service for a caller in this process: the CLI's in-process
``rag ask``/``rag chat``, ``rag eval --answers``, the benchmarks.

It is a transport like the others: every ask goes in as a protocol frame
through the front door (``frontdoor.py``, with ``ConnectionSession``'s Runs:
answers as tasks here). So an in-process caller gets exactly what a
WebSocket client gets: ``accepted``, the answer, and a refused ask ended by
``error`` + ``done`` under its request id, worded as the server words it.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Mapping

from services.query.answer.service import AnswerService
from services.query.transports.session import ConnectionSession
from shared.access import Principal
from shared.ports import ConnectionSink, ServerEvent
from shared.protocol import AskAction, ends_request


class _Inbox:
    """The session's sink: the events wait here for the ask that awaits them."""

    def __init__(self) -> None:
        self.events: asyncio.Queue[ServerEvent] = asyncio.Queue()

    async def send(self, event: ServerEvent) -> None:
        self.events.put_nowait(event)


class InProcessConnection:
    """One caller's connection to the service in this process; asks run one at a time."""

    def __init__(self, service: AnswerService, principal: Principal | None = None) -> None:
        self._inbox = _Inbox()
        # In-process local mode: the laptop's single user reads everything.
        who = principal if principal is not None else Principal.single_user()
        self._session = ConnectionSession(service, self._inbox, 1, who)

    async def ask(self, ask: AskAction | Mapping[str, object], sink: ConnectionSink) -> None:
        """Send one ask (an action, or the fields of a frame) and pass every
        event of it to ``sink``, up to the one that ends it."""
        frame = dict(ask.model_dump(exclude_none=True) if isinstance(ask, AskAction) else ask)
        frame.setdefault("action", "ask")
        request_id = str(frame.setdefault("request_id", uuid.uuid4().hex))
        await self._session.handle_frame(json.dumps(frame))
        while True:
            event = await self._inbox.events.get()
            if getattr(event, "request_id", None) not in (request_id, None):
                continue  # another ask's (none runs alongside: asks are awaited in turn)
            await sink.send(event)
            if ends_request(event):
                return

    async def close(self) -> None:
        """Stop whatever still runs (a caller interrupted mid-answer)."""
        await self._session.close()
