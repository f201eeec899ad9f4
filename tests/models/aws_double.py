"""A local HTTP server that answers like SageMaker Runtime and Bedrock Runtime
(their REST-JSON wire format), so the embedders run through real aiobotocore
HTTP, signing and error parsing. Binds 127.0.0.1 only."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

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
