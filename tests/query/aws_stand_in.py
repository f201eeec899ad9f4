"""A 127.0.0.1 HTTP server standing in for two AWS APIs the query Lambda calls:
the API Gateway Management API (``POST /{stage}/@connections/{id}``) and
Lambda ``Invoke``. Real aiobotocore clients talk to it over HTTP."""

from __future__ import annotations

import asyncio
import json
from collections import defaultdict
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestServer


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
