"""The local aiohttp server, driven by a real WebSocket client over TCP."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from aiohttp import ClientSession, ClientWebSocketResponse
from aiohttp.test_utils import TestServer

from services.query.transports.server import model_info
from shared.protocol import ErrorCode, StopReason, parse_server_event
from shared.settings import ModelSettings
from tests.fakes.chat_model import FakeChatModel, Script

TIMEOUT = 10.0


async def until_done(ws: ClientWebSocketResponse) -> list[dict[str, object]]:
    """Events up to and including the next ``done``."""
    events = []
    while True:
        frame = await ws.receive_str(timeout=TIMEOUT)
        parse_server_event(frame)  # every frame is a valid protocol event
        event = json.loads(frame)
        events.append(event)
        if event["event"] == "done":
            return events


async def test_health(server: TestServer) -> None:
    async with ClientSession() as http, http.get(server.make_url("/health")) as response:
        assert response.status == 200
        body = await response.json()
    assert body["status"] == "ok"
    # What the page shows: the default search mode (its mode picker starts
    # there) and the chat model, "packaged" only for the tiny shipped one.
    assert body["search_mode"] == "hybrid"
    assert body["model"] == {"backend": "local", "name": "SmolLM2-135M-Instruct", "packaged": True}


@pytest.mark.parametrize(
    ("model", "expected"),
    [
        (
            ModelSettings(local_model_path=Path("/m/llama-3-8b.Q4.gguf")),
            ("llama-3-8b.Q4.gguf", False),
        ),
        (
            ModelSettings(
                backend="openai", openai_base_url="http://u:pw@h/v1", openai_model="qwen"
            ),
            ("qwen", False),
        ),
        (ModelSettings(backend="sagemaker", endpoint_name="llama-ep"), ("llama-ep", False)),
    ],
)
def test_only_the_packaged_model_counts_as_packaged(
    model: ModelSettings, expected: tuple[str, bool]
) -> None:
    info = model_info(model)
    assert (info["name"], info["packaged"]) == expected
    assert "url" not in info  # /health answers anyone: no URL (it may carry credentials)


BACKING = "Llamas eat grass and hay and need fresh water every day."


async def test_ask_streams_tokens_then_sources_then_done(
    ws: ClientWebSocketResponse, model: FakeChatModel
) -> None:
    model.scripts = [Script(tokens=["Grass", " and", " hay", " [1]", "."])]
    await ws.send_json({"action": "ask", "question": "What do llamas eat?", "request_id": "q1"})
    events = await until_done(ws)
    kinds = [e["event"] for e in events]
    assert kinds[0] == "accepted" and kinds[-2:] == ["sources", "done"]
    tokens = [e for e in events if e["event"] == "token"]
    assert "".join(str(t["text"]) for t in tokens) == "Grass and hay [1]."
    assert [t["seq"] for t in tokens] == list(range(len(tokens)))
    citations = events[-2]["citations"]
    assert isinstance(citations, list) and citations[0]["doc_id"] == "llamas"
    assert citations[0]["cited"] is True
    assert events[-2]["sentences"] == [
        {
            "start": 0,
            "end": len("Grass and hay [1]."),
            "support": "supported",
            "sources": [1],
            "markers": [1],
            "unsupported_markers": [],
            # the passage of source 1 that backs it, as offsets into its excerpt
            "passages": [{"source": 1, "start": 0, "end": len(BACKING)}],
        }
    ]
    assert citations[0]["excerpt"][: len(BACKING)] == BACKING


async def test_cancel_over_the_socket(ws: ClientWebSocketResponse, model: FakeChatModel) -> None:
    model.scripts = [Script(tokens=list("abcdef"), hold_after=2)]
    await ws.send_json({"action": "ask", "question": "llamas?", "request_id": "c"})
    await model.holding.wait()
    await ws.send_json({"action": "cancel", "request_id": "c"})
    events = await until_done(ws)
    assert events[-1]["stop_reason"] == StopReason.CANCELLED
    assert model.streams[0].cancelled


@pytest.mark.parametrize(
    ("frame", "code"),
    [
        ("{oops", ErrorCode.INVALID_JSON),
        ('{"action": "dance"}', ErrorCode.UNKNOWN_ACTION),
        ('{"action": "ask"}', ErrorCode.INVALID_REQUEST),
        (json.dumps({"action": "ask", "question": "q" * 5000}), ErrorCode.QUESTION_TOO_LONG),
        (json.dumps({"action": "ask", "question": "q", "filters": [1]}), ErrorCode.BAD_FILTER),
        ('{"action": "cancel", "request_id": "ghost"}', ErrorCode.UNKNOWN_REQUEST),
    ],
)
async def test_bad_frames_get_error_events_and_the_socket_stays_open(
    ws: ClientWebSocketResponse, frame: str, code: ErrorCode
) -> None:
    await ws.send_str(frame)
    error = json.loads(await ws.receive_str(timeout=TIMEOUT))
    assert error["event"] == "error" and error["code"] == code
    await ws.send_json({"action": "ping"})
    assert json.loads(await ws.receive_str(timeout=TIMEOUT)) == {"event": "pong"}
    await ws.send_json({"action": "ask", "question": "What do llamas eat?"})
    events = await until_done(ws)
    assert events[-1]["stop_reason"] == StopReason.END


async def test_disconnect_mid_answer_stops_generation(
    server: TestServer, model: FakeChatModel
) -> None:
    model.scripts = [Script(tokens=list("abcdef"), hold_after=2)]
    async with ClientSession() as http, http.ws_connect(server.make_url("/ws")) as socket:
        await socket.send_json({"action": "ask", "question": "llamas?"})
        await model.holding.wait()
    # the client closed; the server notices and cancels the held stream
    async with asyncio.timeout(TIMEOUT):
        while not model.streams[0].cancelled:  # noqa: ASYNC110 (the fake exposes a flag)
            await asyncio.sleep(0.01)
    assert model.streams[0].tokens_sent == 2
