"""A WebSocket to a query server that survives an idle chat.

A chat session sits idle while its user types. Meanwhile the server pings
(``rag serve``: every 30 s, and it closes a socket that doesn't answer) and API
Gateway closes connections idle for 10 minutes. So the socket is read all the
time by a background task (aiohttp answers pings while reading), a protocol
``ping`` goes out every ``keepalive_s``, and when the connection dropped
anyway the next question reconnects (and re-sends, as nothing was accepted
yet). Network failures become :class:`ConnectionLost` (a ``RagError``): one
line for the user, never a traceback.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from types import TracebackType
from urllib.parse import urlencode, urlsplit, urlunsplit

import aiohttp

from shared.errors import ConfigurationError

# Well under API Gateway's 10-minute idle limit and typical proxies' 60 s.
KEEPALIVE_S = 25.0
HEARTBEAT_S = 30.0
# A cold Lambda authorizer answers $connect in seconds; no answer in 30 s is none.
CONNECT_TIMEOUT_S = 30.0
_CLOSED = object()
NETWORK_ERRORS = (aiohttp.ClientError, ConnectionError, OSError, RuntimeError, TimeoutError)


class ConnectionLost(ConfigurationError):
    """The server can't be reached, or the connection dropped mid-answer."""


def with_token(url: str, token: str | None) -> str:
    if not token:
        return url
    parts = urlsplit(url)
    query = f"{parts.query}&" if parts.query else ""
    return urlunsplit(parts._replace(query=query + urlencode({"token": token})))


class ChatSocket:
    def __init__(
        self,
        url: str,
        token: str | None = None,
        *,
        keepalive_s: float = KEEPALIVE_S,
        heartbeat_s: float = HEARTBEAT_S,
    ) -> None:
        self.url = url
        self._target = with_token(url, token)
        self._keepalive_s = keepalive_s
        self._heartbeat_s = heartbeat_s
        self._session: aiohttp.ClientSession | None = None
        self._ws: aiohttp.ClientWebSocketResponse | None = None
        self._frames: asyncio.Queue[object] = asyncio.Queue()
        self._tasks: list[asyncio.Task[None]] = []
        self.connections = 0  # how many times it (re)connected

    async def __aenter__(self) -> ChatSocket:
        self._session = aiohttp.ClientSession()
        try:
            await self._connect()
        except BaseException:
            await self.close()
            raise
        self._tasks.append(asyncio.create_task(self._keepalive()))
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    @property
    def connected(self) -> bool:
        return self._ws is not None and not self._ws.closed

    async def _connect(self) -> None:
        assert self._session is not None
        try:
            async with asyncio.timeout(CONNECT_TIMEOUT_S):  # aiohttp's own: 5 minutes
                ws = await self._session.ws_connect(self._target, heartbeat=self._heartbeat_s)
        except NETWORK_ERRORS as exc:
            raise ConnectionLost(
                f"can't connect to {self.url}: {exc or type(exc).__name__}; is `rag serve` "
                "running (or the URL right)?"
            ) from exc
        self._ws = ws
        self._frames = asyncio.Queue()
        self.connections += 1
        self._tasks.append(asyncio.create_task(self._read(ws, self._frames)))

    @staticmethod
    async def _read(ws: aiohttp.ClientWebSocketResponse, frames: asyncio.Queue[object]) -> None:
        # Reading all the time is what answers the server's pings while idle.
        try:
            async for message in ws:
                if message.type == aiohttp.WSMsgType.TEXT:
                    frames.put_nowait(message.data)
        except NETWORK_ERRORS:
            pass
        finally:
            frames.put_nowait(_CLOSED)

    async def _keepalive(self) -> None:
        while True:
            await asyncio.sleep(self._keepalive_s)
            if self.connected:
                with contextlib.suppress(*NETWORK_ERRORS):
                    assert self._ws is not None
                    await self._ws.send_json({"action": "ping"})

    async def send(self, frame: dict[str, object]) -> None:
        """Send one frame, reconnecting first if the connection dropped (or
        once more if the send itself finds it dropped)."""
        if not self.connected:
            await self._connect()
        try:
            assert self._ws is not None
            await self._ws.send_json(frame)
        except NETWORK_ERRORS:
            await self._connect()
            try:
                assert self._ws is not None
                await self._ws.send_json(frame)
            except NETWORK_ERRORS as exc:
                raise ConnectionLost(f"lost the connection to {self.url}: {exc}") from exc

    async def frames(self) -> AsyncIterator[str]:
        """Text frames from the server until the connection closes (then
        ConnectionLost)."""
        while True:
            frame = await self._frames.get()
            if frame is _CLOSED:
                raise ConnectionLost(
                    f"the connection to {self.url} dropped before the answer was done; "
                    "ask again (the next question reconnects)"
                )
            assert isinstance(frame, str)
            yield frame

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()
        if self._ws is not None:
            with contextlib.suppress(*NETWORK_ERRORS):
                await self._ws.close()
        if self._session is not None:
            await self._session.close()
