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

from aiohttp import web

from cli.announce import announce, withdraw
from cli.local_parts import LocalParts
from cli.submit import run_local_indexer
from cli.warming_model import WarmingChatModel
from cli.webapi import add_local_routes
from services.query.core import build_query_deps
from services.query.server import create_app
from shared.factory import build_chat_model
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


def build_local_app(settings: Settings) -> web.Application:
    parts = LocalParts(settings)
    model = WarmingChatModel(build_chat_model(settings))
    deps = build_query_deps(settings, embedder=parts.embedder, index=parts.index, model=model)
    app = create_app(settings, deps)
    add_local_routes(app, parts)
    tasks: list[asyncio.Task[None]] = []
    stop = asyncio.Event()

    async def warm_up() -> None:
        # Let the socket bind and /health answer first: on two cores, loading
        # the chat model and the indexer's start-up would otherwise delay it.
        await asyncio.sleep(WARM_UP_DELAY_S)
        started = time.perf_counter()
        loading = model.start_loading()
        loading.add_done_callback(lambda task: _log_model_load(task, started))
        if parts.embedded_queue:
            consumer = f"serve-{os.getpid()}"
            indexer = asyncio.create_task(run_local_indexer(parts, stop, consumer))
            indexer.add_done_callback(_log_indexer_end)
            tasks.append(indexer)

    async def start_background(_: web.Application) -> None:
        tasks.append(asyncio.create_task(warm_up()))

    async def stop_background(_: web.Application) -> None:
        stop.set()  # the poller finishes or releases its in-flight messages
        for task in tasks:
            with contextlib.suppress(Exception):
                await task
        await model.close()
        await parts.close()
        withdraw(settings.data_dir)

    app.on_startup.append(start_background)
    app.on_cleanup.append(stop_background)
    return app


def serve(settings: Settings, host: str, port: int) -> None:
    logging.basicConfig(
        level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    app = build_local_app(settings)
    ready = f"rag: serving http://{host}:{port}/  (data folder: {settings.data_dir.resolve()})"

    def bound(_: object) -> None:
        # run_app calls ``print`` once the socket is bound, so neither the line
        # nor the note in the data folder (for ask/chat/ingest) ever lies.
        announce(settings.data_dir, host, port)
        print(ready, flush=True)

    web.run_app(app, host=host, port=port, print=bound, access_log=None)
