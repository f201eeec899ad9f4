"""An OpenSearch node that behaves like an AOSS vector collection (tests only).

A thin HTTP proxy in front of the real test node. It lags as AOSS lags and
refuses what AWS documents AOSS vector collections refuse:

- **Lag**: every index is created with the refresh interval of the collection
  kind being imitated, scaled down for test time (the client's own
  ``refresh_interval`` is overridden, as the collection decides it). The
  indexer's settle time is scaled by the same factor, never below it.
- **Refusals** (a 400 naming the rule, and a line in :attr:`AossLikeNode.refused`):
  any route outside the operations AWS lists for vector collections
  ("Supported operations and plugins in Amazon OpenSearch Serverless");
  ``_refresh`` and the ``refresh`` parameter; a client-chosen ``_id`` on
  index/create (bulk or single); partial updates (``_update/<id>`` is listed
  "for search collection types only", and bulk ``update`` with it);
  ``number_of_shards``/``number_of_replicas``; a k-NN ``filter`` on an nmslib
  field (efficient filtering is lucene/faiss only).

Only what the product uses is routed; anything else is refused, so a new
adapter call must be added here knowingly, after checking AWS's table.
"""

from __future__ import annotations

import asyncio
import json
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from aiohttp import ClientSession, web

# (method, path pattern) → what AWS's operations table calls it. Index names
# never start with "_" (so "/_bulk" is not an index).
_INDEX = r"/(?P<index>[^_/][^/]*)"
ALLOWED: list[tuple[str, re.Pattern[str], str]] = [
    (m, re.compile(p + r"/?$"), what)
    for m, p, what in [
        ("PUT", _INDEX, "aoss:CreateIndex PUT <index>"),
        ("HEAD", _INDEX, "aoss:DescribeIndex HEAD <index>"),
        ("GET", _INDEX, "aoss:DescribeIndex GET <index>"),
        ("GET", _INDEX + r"/_mappings?", "aoss:DescribeIndex GET <index>/_mapping"),
        ("GET", _INDEX + r"/_settings?(/[^/]+)?", "aoss:DescribeIndex GET <index>/_settings"),
        ("PUT", _INDEX + r"/_mappings?", "aoss:UpdateIndex PUT <index>/_mapping"),
        ("DELETE", _INDEX, "aoss:DeleteIndex DELETE <index>"),
        ("POST", r"/_bulk", "aoss:WriteDocument POST _bulk"),
        ("POST", _INDEX + r"/_bulk", "aoss:WriteDocument POST <index>/_bulk"),
        ("POST", _INDEX + r"/_doc", "aoss:WriteDocument POST <index>/_doc"),
        ("DELETE", _INDEX + r"/_doc/[^/]+", "aoss:WriteDocument DELETE <index>/_doc/<id>"),
        ("GET", _INDEX + r"/_search", "aoss:ReadDocument GET <index>/_search"),
        ("POST", _INDEX + r"/_search", "aoss:ReadDocument POST <index>/_search"),
        ("GET", _INDEX + r"/_count", "aoss:ReadDocument GET <index>/_count"),
        ("POST", _INDEX + r"/_count", "aoss:ReadDocument POST <index>/_count"),
    ]
]


def route(method: str, path: str) -> tuple[str, str | None] | None:
    """(operation, index) for an allowed request, else None."""
    for allowed_method, pattern, what in ALLOWED:
        match = pattern.match(path)
        if match and method == allowed_method:
            return what, match.groupdict().get("index")
    return None


def _bulk_refusal(body: bytes) -> str | None:
    lines = [line for line in body.decode().splitlines() if line.strip()]
    i = 0
    while i < len(lines):
        action = json.loads(lines[i])
        (op, meta), *_ = action.items()
        if op in ("index", "create") and "_id" in meta:
            return "Document ID is not supported in create/index operation request"
        if op == "update":
            return "bulk update (partial update by _id) is not supported in vector collections"
        i += 1 if op == "delete" else 2
    return None


def _knn_filter_fields(query: Any) -> Iterator[str]:
    """Vector fields searched with an efficient filter inside their knn clause."""
    if isinstance(query, dict):
        for key, value in query.items():
            if key == "knn" and isinstance(value, dict):
                yield from (f for f, spec in value.items() if "filter" in spec)
            else:
                yield from _knn_filter_fields(value)
    elif isinstance(query, list):
        for item in query:
            yield from _knn_filter_fields(item)


def _engines(body: dict[str, Any]) -> dict[str, str]:
    props = body.get("mappings", {}).get("properties", {})
    return {
        name: spec["method"]["engine"]
        for name, spec in props.items()
        if isinstance(spec, dict) and "engine" in spec.get("method", {})
    }


def refusal(
    method: str,
    path: str,
    params: dict[str, str],
    body: bytes,
    engines: dict[str, dict[str, str]],
) -> str | None:
    """Why an AOSS vector collection refuses this request (None: it accepts it)."""
    if "refresh" in params or "/_refresh" in path:
        return "refresh is not supported (searches see writes after the refresh interval)"
    routed = route(method, path)
    if routed is None:
        return f"{method} {path} is not among the supported operations of vector collections"
    what, index = routed
    if what.endswith("_bulk"):
        return _bulk_refusal(body)
    if what.startswith("aoss:CreateIndex"):
        settings = json.loads(body or b"{}").get("settings", {})
        flat = json.dumps(settings)
        if "number_of_shards" in flat or "number_of_replicas" in flat:
            return "number_of_shards/number_of_replicas are managed by the collection"
    if "_search" in what and body and index is not None:
        nmslib = {f for f, e in engines.get(index, {}).items() if e == "nmslib"}
        filtered = set(_knn_filter_fields(json.loads(body).get("query", {})))
        if nmslib & filtered:
            return "nmslib does not support filters inside the knn clause"
    return None


def with_refresh(body: bytes, refresh_s: float) -> bytes:
    """An index-creation body with the collection's refresh interval in it."""
    parsed = json.loads(body or b"{}")
    index = parsed.setdefault("settings", {}).setdefault("index", {})
    index.pop("refresh_interval", None)
    parsed["settings"].pop("refresh_interval", None)
    index["refresh_interval"] = f"{round(refresh_s * 1000)}ms"
    return json.dumps(parsed).encode()


@dataclass
class AossLikeNode:
    """The proxy; ``url`` is what the product is given, ``upstream`` the real node."""

    upstream: str
    refresh_s: float
    refused: list[str] = field(default_factory=list)
    engines: dict[str, dict[str, str]] = field(default_factory=dict)
    url: str = ""
    _loop: asyncio.AbstractEventLoop | None = None
    _thread: threading.Thread | None = None
    _runner: web.AppRunner | None = None
    _session: ClientSession | None = None

    def start(self) -> None:
        ready = threading.Event()
        self._loop = asyncio.new_event_loop()

        def run() -> None:
            assert self._loop is not None
            asyncio.set_event_loop(self._loop)
            self._loop.run_until_complete(self._serve())
            ready.set()
            self._loop.run_forever()

        self._thread = threading.Thread(target=run, name="aoss-like-node", daemon=True)
        self._thread.start()
        if not ready.wait(10):
            raise RuntimeError("the AOSS-like node did not start")

    async def _serve(self) -> None:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._session = ClientSession()
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = self._runner.addresses[0][1]
        self.url = f"http://127.0.0.1:{port}"

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        params = dict(request.query)
        why = refusal(request.method, request.path, params, body, self.engines)
        if why is not None:
            self.refused.append(f"{request.method} {request.path}: {why}")
            error = {"type": "illegal_argument_exception", "reason": why}
            payload = {"error": {"root_cause": [error], **error}, "status": 400}
            return web.json_response(payload, status=400)
        routed = route(request.method, request.path)
        if routed is not None and routed[0].startswith("aoss:CreateIndex") and routed[1]:
            body = with_refresh(body, self.refresh_s)
            self.engines[routed[1]] = _engines(json.loads(body))
        assert self._session is not None
        headers = {k: v for k, v in request.headers.items() if k.lower() == "content-type"}
        async with self._session.request(
            request.method, self.upstream + request.path, params=params, data=body, headers=headers
        ) as upstream:
            data = await upstream.read()
            return web.Response(
                body=data,
                status=upstream.status,
                content_type=upstream.content_type,
            )

    def stop(self) -> None:
        if self._loop is None:
            return

        async def close() -> None:
            if self._runner is not None:
                await self._runner.cleanup()
            if self._session is not None:
                await self._session.close()

        asyncio.run_coroutine_threadsafe(close(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        if self._thread is not None:
            self._thread.join(10)
