"""The local aiohttp server: ``GET /health`` and the WebSocket at ``/ws``.

Speaks exactly the deployed protocol (frames routed on ``action``). Local mode
extends the app returned by :func:`create_app` with its own routes (chat
page, uploads) before running it.

Who is asking: with a :class:`TokenAuthenticator` (``rag serve --tokens
FILE``) the WebSocket upgrade must carry a token from that file, in the same
places the deployed ``$connect`` authorizer looks (``?token=``, ``Authorization:
Bearer``, ``Sec-WebSocket-Protocol: bearer, <token>``); a refusal is HTTP 401
or 403 with the reason as its body. Without one the server is single-user:
the one local user reads every document.
"""

from __future__ import annotations

import asyncio
import logging
import re
import weakref

from aiohttp import WSMsgType, web
from aiohttp.http_exceptions import HttpProcessingError

from services.query.answer.parts import QueryDeps
from services.query.answer.service import AnswerService
from services.query.transports.identity import TokenAuthenticator
from services.query.transports.session import ConnectionSession
from services.query.transports.tokens import Unauthorized
from shared.access import Principal
from shared.errors import ConnectionGone
from shared.ports import ServerEvent
from shared.protocol import encode_event
from shared.settings import ModelSettings, Settings

log = logging.getLogger(__name__)

SETTINGS = web.AppKey("settings", Settings)
DEPS = web.AppKey("deps", QueryDeps)
SERVICE = web.AppKey("service", AnswerService)
SOCKETS: web.AppKey[weakref.WeakSet[web.WebSocketResponse]] = web.AppKey("sockets")
AUTHENTICATOR: web.AppKey[TokenAuthenticator | None] = web.AppKey("authenticator")

# Larger than any valid frame, so an oversize question gets an error event
# (question_too_long) rather than a protocol-level close.
MAX_CLIENT_FRAME_BYTES = 1024 * 1024


# Tokens travel in ?token=, "Authorization: Bearer …" and "bearer, <token>".
_TOKEN_IN_TEXT = re.compile(r"(?i)([?&]token=|bearer[\s,]+)[^\s&\"',]+")
# aiohttp's own loggers: refusals of unparseable requests, and access lines.
AIOHTTP_LOGGERS = ("aiohttp.server", "aiohttp.access")


class RedactTokens(logging.Filter):
    """Keeps every part of a token out of aiohttp's logs.

    aiohttp logs a request its parser refuses with the traceback, whose message
    quotes the offending header or request line (the first ~100 characters of
    an oversize ``Authorization`` header: the token). The refusal is kept, its
    quote dropped. Access lines carry the request line, so ``?token=`` values
    are masked there (and in the record's extra fields).
    """

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if isinstance(exc, HttpProcessingError):
            said = record.getMessage()
            record.msg = "%s: %s %s (the parser's text is withheld: it quotes the request)"
            record.args = (said, type(exc).__name__, exc.code)
            record.exc_info, record.exc_text = None, None
        for key, value in vars(record).items():
            if isinstance(value, str) and key != "msg":
                setattr(record, key, _TOKEN_IN_TEXT.sub(r"\1[redacted]", value))
        if isinstance(record.msg, str):
            record.msg = _TOKEN_IN_TEXT.sub(r"\1[redacted]", record.msg)
        if record.args:
            record.args = tuple(
                _TOKEN_IN_TEXT.sub(r"\1[redacted]", a) if isinstance(a, str) else a
                for a in (record.args if isinstance(record.args, tuple) else (record.args,))
            )
        return True


def redact_tokens_in_aiohttp_logs() -> None:
    """Install :class:`RedactTokens` on aiohttp's loggers once (a logger filter runs
    before any handler, whoever configured logging)."""
    for name in AIOHTTP_LOGGERS:
        logger = logging.getLogger(name)
        if not any(isinstance(f, RedactTokens) for f in logger.filters):
            logger.addFilter(RedactTokens())


# What a request the HTTP parser refused gets back instead of the parser's text.
PARSER_REFUSAL = (
    "400 Bad Request: a malformed or oversized request line or header "
    "(not quoted back: it may hold a token)\n"
)


def withhold_parser_text_in_replies() -> None:
    """aiohttp answers a request its parser refuses with the parser's message
    as the body, and that message quotes the offending header or request line:
    the start of a token sent in ``Authorization``, ``Sec-WebSocket-Protocol``
    or ``?token=``, echoed to whoever sent it (and to any proxy or browser tool
    that keeps responses). aiohttp has no setting for that reply, so its error
    handler is wrapped, once per process, to say what happened without the
    quote; every other error reply is aiohttp's own."""
    original = web.RequestHandler.handle_error
    if getattr(original, "withholds_parser_text", False):
        return

    def handle_error(
        self: web.RequestHandler,
        request: web.BaseRequest,
        status: int = 500,
        exc: BaseException | None = None,
        message: str | None = None,
    ) -> web.StreamResponse:
        if isinstance(exc, HttpProcessingError):
            message = PARSER_REFUSAL
        return original(self, request, status, exc, message)

    setattr(handle_error, "withholds_parser_text", True)  # noqa: B010 (a function attribute)
    setattr(web.RequestHandler, "handle_error", handle_error)  # noqa: B010 (see the docstring)


class WebSocketSink:
    """ConnectionSink over an aiohttp WebSocket; a closed socket is ConnectionGone."""

    def __init__(self, ws: web.WebSocketResponse) -> None:
        self._ws = ws
        self._lock = asyncio.Lock()

    async def send(self, event: ServerEvent) -> None:
        if self._ws.closed:
            raise ConnectionGone("websocket closed")
        try:
            async with self._lock:
                await self._ws.send_str(encode_event(event))
        except (ConnectionError, RuntimeError) as exc:  # aiohttp: closing transport
            raise ConnectionGone(str(exc)) from exc


# The packaged local model (shared/adapters/local_models/llamacpp.py): small enough to ship,
# too small for good answers, so clients point the user at a real model.
PACKAGED_MODEL_NAME = "SmolLM2-135M-Instruct"


def model_info(model: ModelSettings) -> dict[str, str | bool | None]:
    """Which chat model answers, for /health and the start-up banner:
    ``packaged`` is true only for the tiny model shipped with the product."""
    names: dict[str, str | None] = {
        "local": model.local_model_path.name if model.local_model_path else PACKAGED_MODEL_NAME,
        "openai": model.openai_model,
        "sagemaker": model.endpoint_name,
        "bedrock": model.bedrock_model_id,
    }
    # No URL: /health answers anyone who reaches the port, and a base URL may
    # carry credentials or name an internal host.
    return {
        "backend": model.backend,
        "name": names[model.backend],
        "packaged": model.backend == "local" and model.local_model_path is None,
    }


async def health(request: web.Request) -> web.Response:
    """``status``, the chat model in use and the default search mode (the page
    shows both: docs/local.md)."""
    deps, settings = request.app[DEPS], request.app[SETTINGS]
    return web.json_response(
        {
            "status": "ok",
            "model_family": deps.model.family,
            "model": model_info(settings.model),
            "search_mode": settings.query.search_mode,
        }
    )


def _caller(request: web.Request) -> Principal:
    """Raise Unauthorized (with the reason) unless the upgrade request is allowed."""
    authenticator = request.app[AUTHENTICATOR]
    if authenticator is None:
        return Principal.single_user()
    return authenticator.authenticate(request.headers, request.query)


async def websocket(request: web.Request) -> web.StreamResponse:
    try:
        caller = _caller(request)
    except Unauthorized as exc:
        reason = str(exc)
        log.warning("connection refused: %s", reason)
        status = 401 if reason == "no token" else 403
        return web.Response(status=status, text=f"connection refused: {reason}\n")
    # A browser that offered "bearer, <token>" needs "bearer" echoed back.
    ws = web.WebSocketResponse(
        heartbeat=30.0, max_msg_size=MAX_CLIENT_FRAME_BYTES, protocols=("bearer",)
    )
    await ws.prepare(request)
    request.app[SOCKETS].add(ws)
    settings = request.app[SETTINGS]
    session = ConnectionSession(
        request.app[SERVICE],
        WebSocketSink(ws),
        settings.query.max_concurrent_per_connection,
        caller,
    )
    try:
        async for message in ws:
            if message.type not in (WSMsgType.TEXT, WSMsgType.BINARY):
                continue
            try:
                await session.handle_frame(message.data)
            except ConnectionGone:
                break
    finally:
        await session.close()  # a client that left stops its answers
    return ws


async def _close_sockets(app: web.Application) -> None:
    sockets: list[web.WebSocketResponse] = [*app[SOCKETS]]
    for ws in sockets:
        await ws.close(code=1001, message=b"server shutting down")


def create_app(
    settings: Settings, deps: QueryDeps, authenticator: TokenAuthenticator | None = None
) -> web.Application:
    redact_tokens_in_aiohttp_logs()
    withhold_parser_text_in_replies()
    app = web.Application()
    app[AUTHENTICATOR] = authenticator
    app[SETTINGS] = settings
    app[DEPS] = deps
    app[SERVICE] = AnswerService(settings, deps)
    sockets: weakref.WeakSet[web.WebSocketResponse] = weakref.WeakSet()
    app[SOCKETS] = sockets
    app.router.add_get("/health", health)
    app.router.add_get("/ws", websocket)
    app.on_shutdown.append(_close_sockets)
    return app
