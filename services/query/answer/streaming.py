"""Token coalescing: send buffered model text as ``token`` events.

A sender task runs beside generation. It sends whatever text has
accumulated as soon as it is idle, then waits ``interval_s`` before the next
send, so the first token goes out at once and later ones at most every
interval (one ``post_to_connection`` per ~50 ms instead of per token). With
an interval of 0 it still batches whatever arrived while a send was in flight,
so a slow sink never slows the model down. Frames are split to stay under
``max_frame_bytes``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time

from shared.ports import ConnectionSink
from shared.protocol import TokenEvent, encode_event


def split_text(text: str, budget_bytes: int) -> list[str]:
    """Split ``text`` into pieces whose JSON-string encoding fits ``budget_bytes``."""
    # Worst case a character costs 12 bytes (an escaped surrogate pair); skip the
    # per-character walk when even that fits.
    if len(text) * 12 <= budget_bytes:
        return [text]
    pieces: list[str] = []
    start, used = 0, 0
    for index, char in enumerate(text):
        cost = len(json.dumps(char, ensure_ascii=False).encode()) - 2
        if used + cost > budget_bytes and index > start:
            pieces.append(text[start:index])
            start, used = index, 0
        used += cost
    pieces.append(text[start:])
    return pieces


class TokenStreamer:
    def __init__(
        self, sink: ConnectionSink, request_id: str, interval_s: float, max_frame_bytes: int
    ) -> None:
        self._sink = sink
        self._request_id = request_id
        self._interval = interval_s
        overhead = len(encode_event(TokenEvent(request_id=request_id, seq=10**9, text="")))
        self._budget = max_frame_bytes - overhead
        self._buffer: list[str] = []
        self._wake = asyncio.Event()
        self._closed = asyncio.Event()
        self.seq = 0
        self.first_sent_at: float | None = None  # perf_counter of the first token frame

    def push(self, text: str) -> None:
        if text:
            self._buffer.append(text)
            self._wake.set()

    def close(self) -> None:
        """No more text: the sender flushes what is left and returns."""
        self._closed.set()
        self._wake.set()

    async def run(self) -> None:
        """The sender loop; raises whatever the sink raises (e.g. ConnectionGone)."""
        while True:
            await self._wake.wait()
            self._wake.clear()
            if self._buffer:
                text = "".join(self._buffer)
                self._buffer.clear()
                await self._send(text)
                if self._interval and not self._closed.is_set():
                    # Pause between sends, but flush at once when the answer ends.
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._closed.wait(), self._interval)
            if self._closed.is_set() and not self._buffer:
                return
            if self._buffer:
                self._wake.set()

    async def _send(self, text: str) -> None:
        for piece in split_text(text, self._budget):
            event = TokenEvent(request_id=self._request_id, seq=self.seq, text=piece)
            self.seq += 1
            await self._sink.send(event)
            if self.first_sent_at is None:
                self.first_sent_at = time.perf_counter()
