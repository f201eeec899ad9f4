"""Wait for a condition, not for a time: poll until it holds, within a bound.

A test that sleeps a fixed time either waits longer than it must or fails on
a slow machine; this returns as soon as the condition holds and fails with
what it waited for when the bound passes.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

T = TypeVar("T")


async def wait_until(
    probe: Callable[[], Awaitable[T]],
    what: str,
    timeout_s: float = 20.0,
    interval_s: float = 0.05,
) -> T:
    """Call ``probe`` until it returns something truthy; return that value.
    Raises AssertionError naming ``what`` after ``timeout_s``."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while True:
        value = await probe()
        if value:
            return value
        if loop.time() > deadline:
            raise AssertionError(f"waited {timeout_s} s for {what}")
        await asyncio.sleep(interval_s)
