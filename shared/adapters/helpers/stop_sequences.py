"""Stop sequences over a token stream, for backends that don't report which
stop ended an answer (llama.cpp's OpenAI-style stream says only "stop").

Text that might be the start of a stop sequence is held back until the next
token settles it, so the consumer never sees a partial stop string.
"""

from __future__ import annotations

from collections.abc import Sequence


class StopMatcher:
    def __init__(self, stops: Sequence[str]) -> None:
        self._stops = tuple(s for s in stops if s)
        self._held = ""
        self.matched = False

    def feed(self, text: str) -> str:
        """Add decoded text; return what may be shown now. After a match,
        ``matched`` is True and the text up to the stop is returned."""
        if self.matched:
            return ""
        buffer = self._held + text
        cut = self._first_stop(buffer)
        if cut is not None:
            self.matched, self._held = True, ""
            return buffer[:cut]
        keep = self._partial_suffix(buffer)
        self._held = buffer[len(buffer) - keep :] if keep else ""
        return buffer[: len(buffer) - keep]

    def flush(self) -> str:
        """The held-back text, once the stream has ended without a match."""
        held, self._held = self._held, ""
        return held

    def _first_stop(self, buffer: str) -> int | None:
        hits = [i for i in (buffer.find(s) for s in self._stops) if i >= 0]
        return min(hits) if hits else None

    def _partial_suffix(self, buffer: str) -> int:
        """Length of the longest end of ``buffer`` that begins some stop."""
        best = 0
        for stop in self._stops:
            for size in range(min(len(stop) - 1, len(buffer)), best, -1):
                if buffer.endswith(stop[:size]):
                    best = size
                    break
        return best
