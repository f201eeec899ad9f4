"""The local server's document endpoints and the chat page's static files.

    GET    /                      the chat page
    GET    /api/documents         statuses (with failure reasons) + queue counts
    POST   /api/documents         multipart upload (field ``file``, repeatable) → queued
    DELETE /api/documents/{id}    queue a delete
    POST   /api/samples           queue the repo's sample documents

Mutating calls must come from the page itself: a foreign Origin is refused,
and the custom ``X-Requested-With`` header forces a CORS preflight (which this
server never grants), so another website can't upload through a browser.

With ``rag serve --tokens`` these endpoints list and change every document
whatever its access list, so they need an admin's token (``Authorization:
Bearer``; the page sends the ``?token=`` of its own URL).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from aiohttp import BodyPartReader, web

from cli.destination import Destination, send_delete
from cli.documents.submit import send_files
from cli.files import (
    SAMPLES_DIR,
    SUPPORTED,
    build_index_message,
    content_type_for,
    discover,
)
from services.query.transports.server import AUTHENTICATOR
from services.query.transports.tokens import Unauthorized
from shared.documents import DocState, DocumentStatus
from shared.errors import RagError

STATIC_DIR = Path(__file__).parent / "static"
DESTINATION = web.AppKey("destination", Destination)

CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self' ws: wss:; object-src 'none'; base-uri 'none'; "
    "form-action 'self'; frame-ancestors 'none'"
)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _same_origin(request: web.Request) -> bool:
    origin = request.headers.get("Origin")
    if origin is None:  # non-browser clients (curl, tests) send none
        return True
    return origin.split("://", 1)[-1] == request.host


@web.middleware
async def guard(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Same-origin checks for the API and the WebSocket; security headers on everything."""
    path = request.path
    if path == "/ws" and not _same_origin(request):
        raise web.HTTPForbidden(text="cross-origin WebSocket refused")
    from_page = _same_origin(request) and request.headers.get("X-Requested-With") == "rag-page"
    if path.startswith("/api/") and request.method != "GET" and not from_page:
        return web.json_response({"error": "refused: not from the chat page"}, status=403)
    if path.startswith("/api/") and (refused := _not_an_admin(request)) is not None:
        return web.json_response({"error": refused}, status=403)
    response = await handler(request)
    response.headers.setdefault("Content-Security-Policy", CSP)
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("Referrer-Policy", "no-referrer")
    return response


def _not_an_admin(request: web.Request) -> str | None:
    """Why a document call is refused in multi-user mode (None: allowed)."""
    authenticator = request.app.get(AUTHENTICATOR)
    if authenticator is None:
        return None  # single-user mode
    try:
        caller = authenticator.authenticate(request.headers, request.query)
    except Unauthorized as exc:
        return f"the document endpoints need an admin's token ({exc})"
    return None if caller.admin else "the document endpoints are for admins only"


def status_json(status: DocumentStatus) -> dict[str, Any]:
    return status.model_dump(mode="json")


async def list_documents(request: web.Request) -> web.Response:
    destination = request.app[DESTINATION]
    statuses = [s for s in await destination.parts.status.list() if s.state != DocState.DELETED]
    body: dict[str, Any] = {"documents": [status_json(s) for s in statuses]}
    backlog = await destination.backlog(letters=50)
    if backlog is not None:
        body["queue"] = {"visible": backlog.visible, "in_flight": backlog.in_flight}
        body["dead_letters"] = [
            {"message_id": message_id, "reason": reason}
            for message_id, reason in backlog.dead_letters
        ]
    return web.json_response(body)


async def _read_part(part: BodyPartReader, limit: int) -> bytes | None:
    """The part's bytes, or None once it exceeds ``limit``."""
    chunks: list[bytes] = []
    size = 0
    while chunk := await part.read_chunk(64 * 1024):
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


async def upload_documents(request: web.Request) -> web.Response:
    destination = request.app[DESTINATION]
    limit = destination.parts.settings.ingest.max_document_bytes
    accepted: list[dict[str, str]] = []
    rejected: list[dict[str, str]] = []
    reader = await request.multipart()
    while (part := await reader.next()) is not None:
        if not isinstance(part, BodyPartReader) or part.name != "file":
            continue
        name = Path(part.filename or "").name
        content_type = content_type_for(name)
        if not name or content_type is None:
            rejected.append({"name": name, "reason": f"unsupported file type ({SUPPORTED})"})
            continue
        data = await _read_part(part, limit)
        if data is None:
            rejected.append({"name": name, "reason": f"larger than {limit} bytes"})
            continue
        if not data.strip():
            rejected.append({"name": name, "reason": "the file is empty"})
            continue
        message = build_index_message(name, data, content_type)
        message_id = await destination.send(message)
        accepted.append({"doc_id": name, "message_id": message_id})
    if not accepted and not rejected:
        return web.json_response({"error": "no file in the upload (field 'file')"}, status=400)
    return web.json_response({"accepted": accepted, "rejected": rejected}, status=202)


async def delete_document(request: web.Request) -> web.Response:
    destination = request.app[DESTINATION]
    doc_id = request.match_info["doc_id"]
    if await destination.parts.status.get(doc_id) is None:
        return web.json_response({"error": f"no document {doc_id!r}"}, status=404)
    message_id = await send_delete(destination, doc_id)
    return web.json_response({"doc_id": doc_id, "message_id": message_id}, status=202)


async def load_samples(request: web.Request) -> web.Response:
    destination = request.app[DESTINATION]
    files, _ = discover([SAMPLES_DIR])
    if not files:
        return web.json_response({"error": f"no sample documents in {SAMPLES_DIR}"}, status=404)
    sent, unchanged = await send_files(destination, files)
    return web.json_response(
        {"accepted": [{"doc_id": s.doc_id} for s in sent], "unchanged": len(unchanged)},
        status=202,
    )


async def index_page(_: web.Request) -> web.FileResponse:
    return web.FileResponse(STATIC_DIR / "index.html")


@web.middleware
async def rag_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except RagError as exc:
        return web.json_response({"error": str(exc), "code": exc.code}, status=503)


def add_local_routes(app: web.Application, destination: Destination) -> None:
    app[DESTINATION] = destination
    app.middlewares.append(guard)
    app.middlewares.append(rag_errors)
    app.router.add_get("/", index_page)
    app.router.add_static("/static/", STATIC_DIR, show_index=False)
    app.router.add_get("/api/documents", list_documents)
    app.router.add_post("/api/documents", upload_documents)
    app.router.add_delete("/api/documents/{doc_id:.+}", delete_document)
    app.router.add_post("/api/samples", load_samples)
