"""``rag serve``: the whole product in one process on one data folder.

The query service's aiohttp app (``/health``, ``/ws``) plus the chat page and
document endpoints, the indexer consuming the embedded queue, the embedded
store, the local embedder and the local chat model (loaded in the
background, so ``/health`` answers within a second or two of start).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from pathlib import Path

from aiohttp import web

from cli.announce import announce, withdraw
from cli.destination import destination_for
from cli.local_parts import LocalParts
from cli.serve.warming_model import WarmingChatModel
from cli.serve.webapi import add_local_routes
from services.query.answer.audit import AUDIT_FILE, audit_to_file
from services.query.answer.parts import build_query_deps
from services.query.transports.identity import TokenAuthenticator
from services.query.transports.server import create_app, model_info
from shared.factory import build_chat_model
from shared.logs import ConsoleFormatter
from shared.settings import Settings

log = logging.getLogger("cli.serve")
WARM_UP_DELAY_S = 0.5


def _log_model_load(task: asyncio.Task[object], started: float) -> None:
    if task.cancelled():
        return
    if task.exception() is not None:
        log.error("chat model failed to load: %r", task.exception())
    else:
        log.info("chat model ready in %.1f s", time.perf_counter() - started)


def _log_indexer_end(task: asyncio.Task[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("the indexer stopped: %r", task.exception())


def build_local_app(
    settings: Settings, authenticator: TokenAuthenticator | None = None
) -> web.Application:
    parts = LocalParts(settings)
    model = WarmingChatModel(build_chat_model(settings))
    deps = build_query_deps(settings, embedder=parts.embedder, index=parts.index, model=model)
    app = create_app(settings, deps, authenticator)
    destination = destination_for(parts)
    add_local_routes(app, destination)
    tasks: list[asyncio.Task[None]] = []
    stop = asyncio.Event()

    async def warm_up() -> None:
        # Let the socket bind and /health answer first: on two cores, loading
        # the chat model and the indexer's start-up would otherwise delay it.
        await asyncio.sleep(WARM_UP_DELAY_S)
        started = time.perf_counter()
        loading = model.start_loading()
        loading.add_done_callback(lambda task: _log_model_load(task, started))
        # Where this process is the indexer (the embedded queue); a stack's
        # indexer consumes its own queue, and this task ends at once.
        consumer = f"serve-{os.getpid()}"
        indexer = asyncio.create_task(destination.index_until(stop, consumer))
        indexer.add_done_callback(_log_indexer_end)
        tasks.append(indexer)

    async def start_background(_: web.Application) -> None:
        tasks.append(asyncio.create_task(warm_up()))

    async def stop_background(_: web.Application) -> None:
        stop.set()  # the poller finishes or releases its in-flight messages
        for task in tasks:
            with contextlib.suppress(Exception):
                await task
        await deps.close()  # the chat model, and the index and embedder parts also holds
        await parts.close()
        withdraw(settings.data_dir)

    app.on_startup.append(start_background)
    app.on_cleanup.append(stop_background)
    return app


def access_line(authenticator: TokenAuthenticator | None, tokens: Path | None) -> str:
    """What the start-up banner says about who may read what."""
    if authenticator is None:
        return (
            "rag: single-user mode: no --tokens file, so every document is readable by "
            "whoever can reach this port"
        )
    return (
        f"rag: {len(authenticator)} token(s) from {tokens}: each caller reads what its groups allow"
    )


# The one step from the first run to good answers (README, "Better answers").
BETTER_ANSWERS = (
    "rag: for good answers, point it at an OpenAI-compatible server you run: "
    "scripts/run --model-url http://127.0.0.1:11434 (Ollama; llama.cpp's server or vLLM: "
    "their URL; --model NAME picks one of several)"
)


def model_lines(settings: Settings) -> list[str]:
    """What the start-up banner says about the chat model."""
    info = model_info(settings.model)
    if info["packaged"]:
        return [
            f"rag: answers come from {info['name']}, the tiny model packaged for trying the "
            "product out: expect weak answers",
            BETTER_ANSWERS,
        ]
    where = f" at {settings.model.openai_base_url}" if settings.model.backend == "openai" else ""
    return [f"rag: answers come from {info['name']} ({info['backend']}{where})"]


def serve(settings: Settings, host: str, port: int, tokens: Path | None = None) -> None:
    console = logging.StreamHandler()
    console.setFormatter(ConsoleFormatter())  # the log's fields too (outcome=relabelled…)
    logging.basicConfig(level=settings.log_level, handlers=[console])
    authenticator = (
        TokenAuthenticator.from_file(tokens, settings.query.admin_group) if tokens else None
    )
    app = build_local_app(settings, authenticator)
    print(access_line(authenticator, tokens), flush=True)
    # The console is for people: audit entries get a file of their own.
    trail = audit_to_file(settings.data_dir / AUDIT_FILE)
    print(f"rag: audit trail: {trail} (one JSON line per answer)", flush=True)
    ready = f"rag: serving http://{host}:{port}/  (data folder: {settings.data_dir.resolve()})"

    def bound(_: object) -> None:
        # run_app calls ``print`` once the socket is bound, so neither the line
        # nor the note in the data folder (for ask/chat/ingest) ever lies.
        announce(settings.data_dir, host, port)
        print(ready, flush=True)
        for line in model_lines(settings):
            print(line, flush=True)

    web.run_app(app, host=host, port=port, print=bound, access_log=None)
