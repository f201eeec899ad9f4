"""No part of a token reaches a log (issue #26 item 9), nor the reply to a
request the server could not parse, on a real aiohttp server.

aiohttp logs a request it cannot parse with its own traceback, and its parser's
message quotes the offending header or request line: an oversize
``Authorization: Bearer …`` header (or ``?token=`` URL) used to put the token's
first ~100 characters into the server log. Access lines carry the request line,
``?token=`` included.
"""

from __future__ import annotations

import asyncio
import logging
import secrets

import pytest
from aiohttp import ClientSession
from aiohttp.test_utils import TestServer

OVERSIZE = 9000  # past aiohttp's 8190-byte limit for a header field or request line


def token_fragments(token: str, width: int = 10) -> list[str]:
    """Every window of the token's first 200 characters (what a leak would quote)."""
    head = token[:200]
    return [head[i : i + width] for i in range(len(head) - width + 1)]


def assert_no_token(caplog: pytest.LogCaptureFixture, token: str) -> None:
    text = caplog.text + "".join(str(vars(r)) for r in caplog.records)
    leaked = [fragment for fragment in token_fragments(token) if fragment in text]
    assert not leaked, f"token fragments in the log: {leaked[:3]}"


async def raw_request(server: TestServer, request: bytes) -> bytes:
    assert server.port is not None
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    try:
        writer.write(request)
        await writer.drain()
        return await asyncio.wait_for(reader.read(), timeout=10)  # the server closes
    finally:
        writer.close()
        await writer.wait_closed()


async def until_logged(caplog: pytest.LogCaptureFixture, logger: str) -> None:
    """The server logs after it answered: wait (bounded) for the record."""
    for _ in range(100):
        if any(r.name == logger for r in caplog.records):
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"nothing logged by {logger}")


def request_with(where: str, token: str) -> bytes:
    if where == "query":
        return f"GET /ws?token={token} HTTP/1.1\r\nHost: x\r\n\r\n".encode()
    header = {
        "authorization": f"Authorization: Bearer {token}",
        "subprotocol": f"Sec-WebSocket-Protocol: bearer, {token}",
    }[where]
    return f"GET /ws HTTP/1.1\r\nHost: x\r\n{header}\r\n\r\n".encode()


@pytest.mark.parametrize("where", ["authorization", "subprotocol", "query"])
@pytest.mark.parametrize("fault", ["oversize", "control character"])
async def test_a_refused_request_is_not_quoted_back_to_its_sender(
    server: TestServer, where: str, fault: str
) -> None:
    # GIVEN a request the HTTP parser refuses, its token too long or broken by a
    # control character (aiohttp's reply used to quote the token's start)
    if fault == "oversize":
        token = secrets.token_urlsafe(OVERSIZE)[:OVERSIZE]
    else:
        token = secrets.token_urlsafe(32) + "\x01" + secrets.token_urlsafe(32)
    # WHEN it is sent
    answer = await raw_request(server, request_with(where, token))
    # THEN it is refused with a 400 that says why, and no part of the token
    status, _, body = answer.partition(b"\r\n\r\n")
    assert status.startswith(b"HTTP/1.") and b" 400 " in status.split(b"\r\n")[0]
    assert b"malformed or oversized request line or header" in body
    text = answer.decode("latin-1")
    leaked = [f for f in token_fragments(token.replace("\x01", "")) if f in text]
    assert not leaked, f"token fragments in the reply: {leaked[:3]}"


@pytest.mark.parametrize("where", ["authorization", "query"])
async def test_oversize_token_is_refused_without_reaching_the_log(
    server: TestServer, caplog: pytest.LogCaptureFixture, where: str
) -> None:
    # GIVEN a token too long for the HTTP parser, in a header or in the URL
    token = secrets.token_urlsafe(OVERSIZE)[:OVERSIZE]
    if where == "authorization":
        head = f"GET /ws HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\n\r\n"
    else:
        head = f"GET /ws?token={token} HTTP/1.1\r\nHost: x\r\n\r\n"
    caplog.set_level(logging.DEBUG)
    # WHEN it is sent
    answer = await raw_request(server, head.encode())
    # THEN the request is refused and the refusal logged, with no part of the token
    assert answer.startswith(b"HTTP/1.") and b" 400 " in answer.split(b"\r\n")[0]
    await until_logged(caplog, "aiohttp.server")
    assert_no_token(caplog, token)
    # … and still says what happened
    refusal = next(r for r in caplog.records if r.name == "aiohttp.server")
    assert "LineTooLong" in refusal.getMessage()


async def test_access_lines_redact_the_query_token(
    server: TestServer, caplog: pytest.LogCaptureFixture
) -> None:
    token = secrets.token_urlsafe(32)
    caplog.set_level(logging.DEBUG)
    url = server.make_url(f"/health?token={token}&x=1")
    async with ClientSession() as http, http.get(url) as response:
        assert response.status == 200
    await until_logged(caplog, "aiohttp.access")
    line = next(r for r in caplog.records if r.name == "aiohttp.access").getMessage()
    assert "/health?token=" in line and "x=1" in line
    assert_no_token(caplog, token)
