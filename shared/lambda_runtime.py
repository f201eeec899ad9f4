"""How both Lambda functions run their async code.

One event loop lives as long as the execution environment: aiohttp and
aiobotocore clients (and their connection pools) are bound to the loop that
created them, so warm invocations reuse them only if the loop survives. The
app (adapters, clients) is built on the first invocation, the cold start,
and reused by warm ones.

    handler = LambdaRuntime(build_app)      # module level: what Lambda calls
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, Generic, Protocol, TypeVar

T = TypeVar("T")


class AsyncApp(Protocol):
    async def handle(self, event: dict[str, Any], context: Any) -> dict[str, Any]: ...

    async def close(self) -> None: ...


App = TypeVar("App", bound=AsyncApp)


class LambdaRuntime(Generic[App]):
    def __init__(self, build: Callable[[], App]) -> None:
        self._build = build
        self._app: App | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    @property
    def app(self) -> App | None:
        """The app once a first invocation built it (tests inspect it)."""
        return self._app

    def __call__(self, event: dict[str, Any], context: Any) -> dict[str, Any]:
        if self._app is None:
            self._app = self._build()
        return self.run(self._app.handle(event, context))

    def run(self, work: Awaitable[T]) -> T:
        """Run a coroutine on the runtime's loop (invocations; tests and tools)."""
        if self._loop is None or self._loop.is_closed():
            self._loop = asyncio.new_event_loop()
        return self._loop.run_until_complete(work)

    def close(self) -> None:
        """Close the app and the loop; the next invocation starts cold again.
        For tests and tools: a Lambda environment just ends."""
        app, self._app = self._app, None
        if app is not None:
            self.run(app.close())
        if self._loop is not None and not self._loop.is_closed():
            self._loop.close()
        self._loop = None
