"""Answering while a part of the stack wakes from zero, and telling the client.

A ``dev`` stack scales both halves to zero when idle (docs/cost.md):

- the **model** (a SageMaker inference component with 0 copies) refuses every
  request until a copy is in service; the refusal itself starts the scale-out,
  which takes minutes. ``ModelWake.stream`` asks again every ``poll_s``
  until the model answers or the answer's wake budget runs out (then
  ``ModelUnavailable`` saying when to try again), sending a ``status`` event
  first and every ``STATUS_EVERY_S`` while it waits (which also keeps API
  Gateway's 10-minute idle timeout away from the socket). See :class:`ModelWake`.
- the **search collection** (NextGen, minimum 0 OCU) does not refuse: the first
  request just takes 10-30 s while workers return. :func:`notice_if_slow` sends
  a ``status`` event when a search is still running after ``SEARCH_NOTICE_S``.

Transport-free: events go through the ``notify`` callback the answer pipeline gives.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Literal, TypeVar

from shared.errors import ModelUnavailable, ModelWaking
from shared.ports import ModelEvent
from shared.protocol import StatusEvent

T = TypeVar("T")
Notify = Callable[[StatusEvent], Awaitable[None]]

# API Gateway closes a WebSocket after 10 idle minutes: well inside that.
STATUS_EVERY_S = 30.0
# How often to ask a waking model again: each refusal is one data point of the
# NoCapacityInvocationFailures alarm (60 s period), so a few per period suffice.
MODEL_POLL_S = 15.0
# A search still running after this long is reported (a warm one takes well under 1 s).
SEARCH_NOTICE_S = 3.0
# AWS: "expect 10-30 seconds of latency for the first request to each component".
SEARCH_TYPICAL_S = 30


@dataclass(frozen=True)
class WakeClock:
    """Time and sleep, given so tests can run a 10-minute wake in milliseconds."""

    now: Callable[[], float] = time.monotonic
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep


def status(
    request_id: str, component: Literal["model", "search"], typical_s: int, elapsed_s: float
) -> StatusEvent:
    what = {
        "model": "the model scaled to zero while idle and is starting",
        "search": "the search collection scaled to zero while idle and is waking",
    }[component]
    usual = f"{math.ceil(typical_s / 60)} minutes" if typical_s >= 120 else f"{typical_s} s"
    return StatusEvent(
        request_id=request_id,
        component=component,
        message=f"{what} (usually up to {usual}); the answer follows when it is ready",
        typical_s=typical_s,
        elapsed_s=round(elapsed_s, 1),
    )


def try_again_message(typical_s: int, waited_s: float) -> str:
    """What the client is told when the wake outlasts this answer's budget."""
    left = typical_s - waited_s
    minutes = max(1, math.ceil(left / 60)) if left > 0 else 2
    waited = f"{waited_s / 60:.0f} minutes" if waited_s >= 90 else f"{waited_s:.0f} s"
    return (
        f"the model is still starting after {waited} (it scaled to zero "
        f"while idle; waking usually takes up to {math.ceil(typical_s / 60)} minutes): try "
        f"again in {minutes} minute{'s' if minutes != 1 else ''}"
    )


@dataclass
class ModelWake:
    """How one answer waits for its model: where status goes, for how long at most.

    ``opened_at`` is when the request the model finally took was sent (the
    ``done`` event's model time starts there, the waiting excluded).
    """

    notify: Notify
    request_id: str
    budget_s: float
    clock: WakeClock = field(default_factory=WakeClock)
    poll_s: float = MODEL_POLL_S
    opened_at: float | None = None

    async def stream(
        self, open_stream: Callable[[], AsyncIterator[ModelEvent]]
    ) -> AsyncGenerator[ModelEvent, None]:
        """The model's events, once it takes the request.

        Only a ``ModelWaking`` before the first event is waited out (a stream that
        fails later is not retried: the client has seen tokens). Past ``budget_s``
        the wait ends with ``ModelUnavailable`` carrying "try again in N minutes".
        """
        clock = self.clock
        started = clock.now()
        first_refusal: float | None = None
        last_status: float | None = None
        while True:
            self.opened_at = clock.now()
            stream = open_stream()
            try:
                first = await anext(stream)
            except StopAsyncIteration:
                return
            except ModelWaking as exc:
                await _close(stream)
                now = clock.now()
                first_refusal = now if first_refusal is None else first_refusal
                if last_status is None or now - last_status >= STATUS_EVERY_S:
                    notice = status(self.request_id, "model", exc.typical_s, now - started)
                    await self.notify(notice)
                    last_status = now
                if now - started + self.poll_s > self.budget_s:
                    message = try_again_message(exc.typical_s, now - first_refusal)
                    raise ModelUnavailable(message) from exc
                await clock.sleep(self.poll_s)
                continue
            try:
                yield first
                async for event in stream:
                    yield event
            finally:
                await _close(stream)
            return


async def _close(stream: AsyncIterator[ModelEvent]) -> None:
    aclose = getattr(stream, "aclose", None)
    if aclose is not None:
        await aclose()  # stops the backend's generation (HTTP stream, llama.cpp)


async def notice_if_slow(
    work: Awaitable[T],
    notify: Callable[[float], Awaitable[None]],
    after_s: float = SEARCH_NOTICE_S,
    clock: WakeClock | None = None,
) -> T:
    """``await work``; if it is still running after ``after_s``, call ``notify(elapsed)``
    once (and go on waiting: a waking collection answers, only late)."""
    clock = clock or WakeClock()
    task = asyncio.ensure_future(work)
    started = clock.now()
    try:
        done, _ = await asyncio.wait({task}, timeout=after_s)
        if not done:
            await notify(clock.now() - started)
        return await task
    finally:
        task.cancel()
