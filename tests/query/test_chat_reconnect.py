"""``rag chat --url`` against real servers that drop idle connections: the chat
socket answers heartbeats while idle, reconnects when the connection was
dropped anyway, and a network failure is one line, never a traceback."""

from __future__ import annotations

import asyncio
import io
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
from aiohttp import WSMsgType, web
from aiohttp.test_utils import TestServer
from rich.console import Console

from cli.ask.asking import TerminalSink, WebSocketAsker
from cli.chat_socket import ChatSocket, ConnectionLost
from services.query.answer.parts import QueryDeps
from services.query.transports.server import SERVICE, WebSocketSink, create_app
from services.query.transports.session import ConnectionSession
from shared.access import Principal
from shared.settings import Settings
from tests.fakes.chat_model import FakeChatModel, Script
from tests.waiting import wait_until

IDLE_DROP_S = 0.5
DROPPED: web.AppKey[list[str]] = web.AppKey("dropped", list)  # one entry per dropped connection


async def _serve(request: web.Request, ws: web.WebSocketResponse, idle_s: float | None) -> None:
    session = ConnectionSession(request.app[SERVICE], WebSocketSink(ws), 2, Principal.single_user())
    try:
        while True:
            try:
                message = await ws.receive(timeout=idle_s)
            except TimeoutError:
                # A proxy/NAT dropping an idle connection: no close frame at all.
                assert request.transport is not None
                request.transport.abort()
                request.app[DROPPED].append(request.path)
                return
            if message.type != WSMsgType.TEXT:
                return
            await session.handle_frame(message.data)
            await session.wait_idle()
    finally:
        await session.close()


async def drops_idle(request: web.Request) -> web.WebSocketResponse:
    ws = web.WebSocketResponse()
    await ws.prepare(request)
    await _serve(request, ws, IDLE_DROP_S)
    return ws


async def pings_often(request: web.Request) -> web.WebSocketResponse:
    # aiohttp closes the socket when a ping goes unanswered for heartbeat/2.
    ws = web.WebSocketResponse(heartbeat=0.2)
    await ws.prepare(request)
    await _serve(request, ws, None)
    return ws


@pytest.fixture
async def server(settings: Settings, deps: QueryDeps) -> AsyncIterator[TestServer]:
    app = create_app(settings, deps)
    app.router.add_get("/drops-idle", drops_idle)
    app.router.add_get("/pings-often", pings_often)
    app[DROPPED] = []
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    yield server
    await server.close()


def dropped(server: TestServer) -> Callable[[], Awaitable[bool]]:
    async def probe() -> bool:
        return bool(server.app[DROPPED])

    return probe


def quiet_sink() -> TerminalSink:
    return TerminalSink(Console(file=io.StringIO()))


async def ask(asker: WebSocketAsker) -> TerminalSink:
    sink = quiet_sink()
    await asyncio.wait_for(asker.ask("What do llamas eat?", sink), 10)
    assert sink.finished.is_set() and not sink.failed
    return sink


async def test_a_question_after_the_server_dropped_the_idle_connection_reconnects(
    server: TestServer, model: FakeChatModel
) -> None:
    model.scripts = [Script(tokens=["Grass", "."]), Script(tokens=["Hay", "."])]
    url = str(server.make_url("/drops-idle"))
    async with ChatSocket(url, keepalive_s=3600) as socket:
        asker = WebSocketAsker(socket, None, None)
        await ask(asker)
        # GIVEN the user idles until the server drops the idle connection
        await wait_until(dropped(server), "the server to drop the idle connection")
        # WHEN they ask again THEN the answer comes, over a new connection
        await ask(asker)
        assert socket.connections == 2
    # the conversation carried over: the second prompt holds the first answer
    assert "Grass" in model.streams[1].prompt


async def test_idle_chat_answers_the_servers_heartbeats(
    server: TestServer, model: FakeChatModel
) -> None:
    url = str(server.make_url("/pings-often"))
    async with ChatSocket(url, keepalive_s=3600) as socket:
        asker = WebSocketAsker(socket, None, None)
        await ask(asker)
        await asyncio.sleep(1.5)  # many heartbeat periods of silence: an absence, timed
        await ask(asker)
        assert socket.connections == 1  # kept alive, no reconnect needed


async def test_protocol_pings_keep_an_idle_connection_busy(
    server: TestServer, model: FakeChatModel
) -> None:
    url = str(server.make_url("/drops-idle"))
    async with ChatSocket(url, keepalive_s=IDLE_DROP_S / 3) as socket:
        asker = WebSocketAsker(socket, None, None)
        await ask(asker)
        await asyncio.sleep(IDLE_DROP_S * 4)  # an absence (no drop): only time can show it
        await ask(asker)
        assert socket.connections == 1
        assert server.app[DROPPED] == []


async def test_a_server_gone_for_good_is_a_clean_error(
    settings: Settings, deps: QueryDeps, model: FakeChatModel
) -> None:
    server = TestServer(create_app(settings, deps), host="127.0.0.1")
    await server.start_server()
    url = str(server.make_url("/ws"))
    async with ChatSocket(url) as socket:
        asker = WebSocketAsker(socket, None, None)
        await ask(asker)
        await server.close()
        with pytest.raises(ConnectionLost, match="can't connect"):
            await asyncio.wait_for(asker.ask("again?", quiet_sink()), 10)


async def test_connecting_to_nothing_is_a_clean_error() -> None:
    with pytest.raises(ConnectionLost, match="is `rag serve` running"):
        async with ChatSocket("ws://127.0.0.1:9/ws"):
            pass


async def _read_until(stream: asyncio.StreamReader, marker: bytes, seen: bytearray) -> None:
    while marker not in seen:
        chunk = await asyncio.wait_for(stream.read(4096), 60)
        if not chunk:
            raise AssertionError(f"output ended before {marker!r}: {bytes(seen)!r}")
        seen.extend(chunk)


async def test_rag_chat_survives_the_server_dropping_it_while_idle(
    server: TestServer, model: FakeChatModel
) -> None:
    """The issue's scenario, as a user runs it: `rag chat --url`, a question,
    a pause longer than the server keeps idle connections, another question."""
    import os
    import sys
    from pathlib import Path

    model.scripts = [Script(tokens=["Grass", "."]), Script(tokens=["Hay", "."])]
    chat = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "cli.main",
        "chat",
        "--url",
        str(server.make_url("/drops-idle")),
        cwd=Path(__file__).resolve().parents[2],
        env={**os.environ, "COLUMNS": "200"},
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    assert chat.stdin is not None and chat.stdout is not None and chat.stderr is not None
    out = bytearray()
    chat.stdin.write(b"What do llamas eat?\n")
    await _read_until(chat.stdout, b"tokens,", out)
    await wait_until(dropped(server), "the server to drop the idle connection")
    chat.stdin.write(b"And in winter?\n")
    await _read_until(chat.stdout, b"Hay.", out)
    await _read_until(chat.stdout, b"tokens,", out[out.index(b"Hay.") :])
    chat.stdin.close()
    await asyncio.wait_for(chat.wait(), 30)
    errors = (await chat.stderr.read()).decode()
    assert chat.returncode == 0, errors
    assert "Traceback" not in errors and "rag:" not in errors
    assert b"Grass." in out and b"Hay." in out


@pytest.mark.parametrize("question", ["", "x" * 4001], ids=["blank", "too-long"])
async def test_a_refused_question_is_ended_by_the_real_server(
    server: TestServer, model: FakeChatModel, question: str
) -> None:
    """Issue #24 item 1: the server's error carries the request id and a done follows."""
    async with ChatSocket(str(server.make_url("/ws"))) as socket:
        sink = quiet_sink()
        await asyncio.wait_for(WebSocketAsker(socket, None, None).ask(question, sink), 10)
    assert sink.failed and sink.finished.is_set()
