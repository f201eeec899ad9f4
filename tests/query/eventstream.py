"""AWS event-stream framing (application/vnd.amazon.eventstream) for recorded
model streams, and an app that plays them back to the real aiobotocore client
(served on 127.0.0.1 by ``aws_stand_in.serve_app``).

Message layout: total length (4) | headers length (4) | prelude CRC32 (4) |
headers | payload | message CRC32 (4); string headers are
name-length (1) | name | type 7 (1) | value-length (2) | value.
"""

from __future__ import annotations

import json
import zlib
from dataclasses import dataclass, field

from aiohttp import web


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
