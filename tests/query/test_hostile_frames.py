"""Hostile frames over a real WebSocket: each gets an error event (or the
standard close code) and never a 1006 abort."""

from __future__ import annotations

import json

import pytest
from aiohttp import ClientSession, ClientWebSocketResponse, WSMsgType
from aiohttp.test_utils import TestServer

from services.query.transports.server import MAX_CLIENT_FRAME_BYTES
from shared.protocol import ErrorCode

TIMEOUT = 10.0


def deeply_nested(levels: int) -> str:
    return '{"action":"ask","question":"q","filters":' + "[" * levels + "]" * levels + "}"


async def assert_still_open(ws: ClientWebSocketResponse) -> None:
    await ws.send_json({"action": "ping"})
    assert json.loads(await ws.receive_str(timeout=TIMEOUT)) == {"event": "pong"}


@pytest.mark.parametrize(
    ("frame", "codes"),
    [
        # GIVEN a 200 KB frame nested 100,000 levels deep (the decoder's recursion limit)
        (deeply_nested(100_000), {ErrorCode.INVALID_JSON}),
        # and one that decodes but nests far deeper than any valid frame
        (deeply_nested(500), {ErrorCode.INVALID_REQUEST}),
        # strict types: the schema says integer, so a string or a boolean is no k
        ('{"action":"ask","question":"q","k":"5"}', {ErrorCode.INVALID_REQUEST}),
        ('{"action":"ask","question":"q","k":true}', {ErrorCode.INVALID_REQUEST}),
        ('{"action":"ask","question":5}', {ErrorCode.INVALID_REQUEST}),
    ],
    ids=["nested-100k", "nested-500", "k-string", "k-bool", "question-int"],
)
async def test_hostile_frame_gets_an_error_event_and_the_socket_stays_open(
    ws: ClientWebSocketResponse, frame: str, codes: set[ErrorCode]
) -> None:
    await ws.send_str(frame)
    error = json.loads(await ws.receive_str(timeout=TIMEOUT))
    assert error["event"] == "error" and error["code"] in codes
    await assert_still_open(ws)


async def test_a_frame_over_the_limit_closes_with_1009(ws: ClientWebSocketResponse) -> None:
    await ws.send_str('{"action":"ask","question":"' + "q" * MAX_CLIENT_FRAME_BYTES + '"}')
    message = await ws.receive(timeout=TIMEOUT)
    assert message.type in (WSMsgType.CLOSE, WSMsgType.CLOSED, WSMsgType.CLOSING)
    assert ws.close_code == 1009


async def test_invalid_utf8_text_closes_with_1007(server: TestServer) -> None:
    # aiohttp's client refuses to send invalid UTF-8 as text, so write the frame raw.
    async with ClientSession() as http, http.ws_connect(server.make_url("/ws")) as ws:
        await ws._writer.send_frame(b'{"action":"\xff"}', WSMsgType.TEXT)
        message = await ws.receive(timeout=TIMEOUT)
        assert message.type in (WSMsgType.CLOSE, WSMsgType.CLOSED, WSMsgType.CLOSING)
        assert ws.close_code == 1007
