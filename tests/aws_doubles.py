"""The AWS doubles of the test suite, in one module: local HTTP servers that
answer as AWS APIs do on the wire, so the product's real aiobotocore clients
(signing, retries, error parsing, event streams) are what the tests run.
Each binds 127.0.0.1 only; none needs the network.

- :class:`AwsStandIn`: the API Gateway Management API (``POST
  /{stage}/@connections/{id}``, ``GoneException`` on demand) and Lambda
  ``Invoke`` — the calls the query Lambda makes.
- :class:`AwsDouble`: SageMaker Runtime and Bedrock Runtime ``invoke`` in their
  REST-JSON format, answering through a responder (``json_response``,
  ``aws_error``).
- :class:`RecordedEndpoint` and the event-stream encoders: SageMaker's and
  Bedrock's response streams (``application/vnd.amazon.eventstream``) played
  back from recorded frames.
- ``moto_url`` / ``state_table`` (pytest fixtures, registered suite-wide in
  tests/conftest.py): moto's DynamoDB, in-process, with a table shaped like
  the query state table.
- ``serve_app`` / ``serve``: run any of them on a free port.

Event-stream message layout: total length (4) | headers length (4) | prelude
CRC32 (4) | headers | payload | message CRC32 (4); string headers are
name-length (1) | name | type 7 (1) | value-length (2) | value.
"""

from __future__ import annotations

import asyncio
import json
import socket
import zlib
from collections import defaultdict
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiobotocore.session import get_session
from aiohttp import web
from aiohttp.test_utils import TestServer
from moto.server import ThreadedMotoServer

from tests.servers import unique_name

# ---- Management API + Lambda Invoke ------------------------------------------------


@dataclass
class AwsStandIn:
    frames: dict[str, list[dict[str, Any]]] = field(default_factory=lambda: defaultdict(list))
    frame_sizes: list[int] = field(default_factory=list)
    invocations: list[tuple[str, str, dict[str, Any]]] = field(default_factory=list)
    gone_after: dict[str, int] = field(default_factory=dict)  # connection -> posts accepted
    changed: asyncio.Condition = field(default_factory=asyncio.Condition)

    async def _post(self, request: web.Request) -> web.Response:
        connection = request.match_info["connection"]
        limit = self.gone_after.get(connection)
        if limit is not None and len(self.frames[connection]) >= limit:
            return web.json_response(
                {"message": None}, status=410, headers={"x-amzn-ErrorType": "GoneException"}
            )
        data = await request.read()
        async with self.changed:
            self.frame_sizes.append(len(data))
            self.frames[connection].append(json.loads(data))
            self.changed.notify_all()
        return web.Response(status=200)

    async def _invoke(self, request: web.Request) -> web.Response:
        kind = request.headers.get("X-Amz-Invocation-Type", "RequestResponse")
        async with self.changed:
            self.invocations.append((request.match_info["name"], kind, await request.json()))
            self.changed.notify_all()
        return web.Response(status=202)

    async def wait_for(self, connection: str, predicate: Any) -> list[dict[str, Any]]:
        async with self.changed:
            await asyncio.wait_for(
                self.changed.wait_for(lambda: predicate(self.frames[connection])), timeout=20
            )
        return self.frames[connection]

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/{stage}/@connections/{connection}", self._post)
        app.router.add_post("/2015-03-31/functions/{name}/invocations", self._invoke)
        return app


async def serve_app(app: web.Application) -> AsyncIterator[str]:
    """Serve a stand-in app on 127.0.0.1; yields its base URL (an endpoint_url)."""
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    try:
        yield str(server.make_url("")).rstrip("/")
    finally:
        await server.close()


# ---- SageMaker / Bedrock runtime, REST-JSON ------------------------------------------

Responder = Callable[[str, dict[str, Any]], web.Response]


def json_response(payload: Any, status: int = 200) -> web.Response:
    return web.Response(
        status=status,
        body=json.dumps(payload).encode(),
        headers={"Content-Type": "application/json", "x-amzn-RequestId": "req-1"},
    )


def aws_error(code: str, message: str, status: int) -> web.Response:
    # REST-JSON services name the error in this header (":" + namespace suffix).
    return web.Response(
        status=status,
        body=json.dumps({"message": message}).encode(),
        headers={
            "Content-Type": "application/json",
            "x-amzn-ErrorType": f"{code}:http://internal.amazon.com/coral/com.amazonaws/",
            "x-amzn-RequestId": "req-err",
        },
    )


@dataclass
class AwsDouble:
    url: str = ""
    requests: list[dict[str, Any]] = field(default_factory=list)
    respond: Responder | None = None


def make_app(double: AwsDouble) -> web.Application:
    async def handle(request: web.Request) -> web.Response:
        body = json.loads(await request.read())
        double.requests.append(
            {"path": request.path, "headers": dict(request.headers), "body": body}
        )
        assert double.respond is not None
        return double.respond(request.path, body)

    app = web.Application()
    app.router.add_post("/endpoints/{name}/invocations", handle)
    app.router.add_post("/model/{model}/invoke", handle)
    return app


async def serve(double: AwsDouble) -> AsyncIterator[AwsDouble]:
    runner = web.AppRunner(make_app(double))
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    double.url = f"http://127.0.0.1:{port}"
    try:
        yield double
    finally:
        await runner.cleanup()


# ---- SageMaker / Bedrock response streams (event stream) --------------------------------


def _header(name: str, value: str) -> bytes:
    raw_name, raw_value = name.encode(), value.encode()
    return (
        bytes([len(raw_name)])
        + raw_name
        + bytes([7])
        + len(raw_value).to_bytes(2, "big")
        + raw_value
    )


def encode_message(headers: dict[str, str], payload: bytes) -> bytes:
    raw_headers = b"".join(_header(name, value) for name, value in headers.items())
    total = 12 + len(raw_headers) + len(payload) + 4
    prelude = total.to_bytes(4, "big") + len(raw_headers).to_bytes(4, "big")
    message = prelude + zlib.crc32(prelude).to_bytes(4, "big") + raw_headers + payload
    return message + zlib.crc32(message).to_bytes(4, "big")


def event(event_type: str, payload: bytes, content_type: str) -> bytes:
    return encode_message(
        {":event-type": event_type, ":content-type": content_type, ":message-type": "event"},
        payload,
    )


def exception(exception_type: str, body: dict[str, object]) -> bytes:
    return encode_message(
        {
            ":exception-type": exception_type,
            ":content-type": "application/json",
            ":message-type": "exception",
        },
        json.dumps(body).encode(),
    )


def payload_part(data: bytes) -> bytes:
    """SageMaker: ``PayloadPart.Bytes`` is the raw event payload."""
    return event("PayloadPart", data, "application/octet-stream")


def bedrock_chunk(obj: dict[str, object]) -> bytes:
    """Bedrock: ``chunk.bytes`` is base64 inside a JSON payload."""
    import base64

    encoded = base64.b64encode(json.dumps(obj).encode()).decode()
    return event("chunk", json.dumps({"bytes": encoded}).encode(), "application/json")


@dataclass
class RecordedEndpoint:
    """Plays ``frames`` back on every streaming invocation; records request bodies."""

    frames: list[bytes] = field(default_factory=list)
    requests: list[tuple[str, dict[str, object]]] = field(default_factory=list)

    async def _stream(self, request: web.Request) -> web.StreamResponse:
        self.requests.append((request.path, await request.json()))
        response = web.StreamResponse(
            headers={"Content-Type": "application/vnd.amazon.eventstream"}
        )
        await response.prepare(request)
        for frame in self.frames:
            await response.write(frame)
        await response.write_eof()
        return response

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/endpoints/{name}/invocations-response-stream", self._stream)
        app.router.add_post("/model/{model}/invoke-with-response-stream", self._stream)
        return app


# ---- DynamoDB (moto, in-process) ------------------------------------------------------


@pytest.fixture(scope="session")
def moto_url() -> Iterator[str]:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    yield f"http://127.0.0.1:{port}"
    server.stop()


@pytest.fixture
async def state_table(moto_url: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """A fresh DynamoDB table shaped like the query state table, on moto's server."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    name = unique_name("rag-query-state")
    session = get_session()
    async with session.create_client(
        "dynamodb", region_name="us-east-1", endpoint_url=moto_url
    ) as dynamodb:
        await dynamodb.create_table(
            TableName=name,
            AttributeDefinitions=[
                {"AttributeName": "pk", "AttributeType": "S"},
                {"AttributeName": "sk", "AttributeType": "S"},
            ],
            KeySchema=[
                {"AttributeName": "pk", "KeyType": "HASH"},
                {"AttributeName": "sk", "KeyType": "RANGE"},
            ],
            BillingMode="PAY_PER_REQUEST",
        )
    return name
