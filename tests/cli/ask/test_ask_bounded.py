"""Every wait of `rag ask` is bounded (issue #24, item 1).

GIVEN servers that misbehave as a real one did (an error with no request id
and no ``done``; an accepted answer that then goes quiet; no answer at all),
WHEN the CLI's WebSocket asker asks, THEN it returns or fails with a clear
message within its bounds; and without a server, a question the protocol
refuses is a protocol error, never ``unexpected error: ValidationError``.
"""

from __future__ import annotations

import asyncio
import io
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest
from aiohttp import WSMsgType, web
from aiohttp.test_utils import TestServer
from rich.console import Console

from cli.ask.asking import AnswerTimeout, TerminalSink, WebSocketAsker
from cli.chat_socket import ChatSocket
from tests.local.conftest import rag
from tests.waiting import wait_until

Behaviour = Callable[[web.WebSocketResponse, dict[str, object]], Awaitable[None]]
Serve = Callable[[Behaviour], Awaitable[tuple[str, list[dict[str, object]]]]]


async def old_server_refusal(ws: web.WebSocketResponse, frame: dict[str, object]) -> None:
    """What the server did before the fix: an error it could not tie to the id."""
    await ws.send_json(
        {"event": "error", "request_id": None, "code": "invalid_request", "message": "blank"}
    )


async def accepts_then_goes_quiet(ws: web.WebSocketResponse, frame: dict[str, object]) -> None:
    if frame["action"] == "ask":
        await ws.send_json({"event": "accepted", "request_id": frame["request_id"]})


async def never_answers(ws: web.WebSocketResponse, frame: dict[str, object]) -> None:
    return None


@pytest.fixture
async def serve() -> AsyncIterator[Serve]:
    servers: list[TestServer] = []

    async def start(behaviour: Behaviour) -> tuple[str, list[dict[str, object]]]:
        received: list[dict[str, object]] = []

        async def handler(request: web.Request) -> web.WebSocketResponse:
            ws = web.WebSocketResponse()
            await ws.prepare(request)
            async for message in ws:
                if message.type == WSMsgType.TEXT:
                    frame = json.loads(message.data)
                    received.append(frame)
                    await behaviour(ws, frame)
            return ws

        app = web.Application()
        app.router.add_get("/ws", handler)
        server = TestServer(app, host="127.0.0.1")
        await server.start_server()
        servers.append(server)
        return str(server.make_url("/ws")), received

    yield start
    for server in servers:
        await server.close()


def sink() -> TerminalSink:
    return TerminalSink(Console(file=io.StringIO()))


async def test_an_error_the_server_could_not_tie_to_the_id_ends_the_question(serve: Serve) -> None:
    url, _ = await serve(old_server_refusal)
    async with ChatSocket(url) as socket:
        out = sink()
        await asyncio.wait_for(WebSocketAsker(socket, None, None).ask("", out), 10)
    assert out.failed


async def test_an_answer_that_goes_quiet_times_out_and_is_cancelled(serve: Serve) -> None:
    url, received = await serve(accepts_then_goes_quiet)
    async with ChatSocket(url) as socket:
        asker = WebSocketAsker(socket, None, None, answer_timeout_s=0.3)
        with pytest.raises(AnswerTimeout, match=r"waited 0\.3 s for the rest of the answer"):
            await asyncio.wait_for(asker.ask("llamas?", sink()), 10)

        async def cancel_arrived() -> bool:
            return len(received) == 2

        await wait_until(cancel_arrived, "the cancel to reach the server")
    ask, cancel = received
    assert cancel == {"action": "cancel", "request_id": ask["request_id"]}


async def test_a_server_that_never_accepts_times_out(serve: Serve) -> None:
    url, _ = await serve(never_answers)
    async with ChatSocket(url) as socket:
        asker = WebSocketAsker(socket, None, None, accept_timeout_s=0.3)
        with pytest.raises(AnswerTimeout, match="to accept the question"):
            await asyncio.wait_for(asker.ask("llamas?", sink()), 10)


@pytest.fixture(scope="module")
def indexed(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """A data folder with one indexed document, no server running on it."""
    root = tmp_path_factory.mktemp("asked")
    docs = root / "docs"
    docs.mkdir()
    (docs / "park.txt").write_text("Visitors park in the north lot beside the llama barn.\n")
    env = {"RAG_DATA_DIR": str(root / "data")}
    ingested = rag("ingest", str(docs), env=env, timeout=300)
    assert ingested.returncode == 0, ingested.stderr
    return env


@pytest.mark.parametrize("question", ["", "x" * 4001], ids=["blank", "too-long"])
def test_without_a_server_a_refused_question_is_a_protocol_error(
    indexed: dict[str, str], question: str
) -> None:
    result = rag("ask", question, env=indexed, timeout=120)
    assert result.returncode == 1
    assert "unexpected error" not in result.stderr
    code = "invalid_request" if not question else "question_too_long"
    assert f"error ({code})" in result.stdout + result.stderr


def test_an_in_process_answer_keeps_the_audit_line_out_of_stdout(
    indexed: dict[str, str],
) -> None:
    """Issue #24 item 2: `rag ask … > answer.txt` captured the audit JSON."""
    result = rag("ask", "Where do visitors park?", env=indexed, timeout=300)
    assert result.returncode == 0, result.stderr
    assert '"audit"' not in result.stdout and '"audit"' not in result.stderr
    trail = Path(indexed["RAG_DATA_DIR"]) / "audit.jsonl"
    (entry,) = [json.loads(line) for line in trail.read_text().splitlines()]
    assert entry["audit"] == "answer" and entry["retrieved"] == ["park.txt"]
