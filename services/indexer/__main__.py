"""``python -m services.indexer``: the long-running poller (containers, local use).

Settings are read once here (``RAG_*`` env vars, ``.env``). SIGTERM/SIGINT
stop receiving and let in-flight messages finish (or release them).
"""

from __future__ import annotations

import asyncio
import logging
import signal

from services.indexer.poller import Poller
from services.indexer.runtime import build_runtime
from shared.factory import build_queue
from shared.logs import configure_logging
from shared.settings import load_settings

log = logging.getLogger("services.indexer")


async def main() -> None:
    settings = load_settings()
    configure_logging(settings.log_level)
    runtime = build_runtime(settings)
    queue = build_queue(settings)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    log.info(
        "indexer poller starting",
        extra={
            "fields": {
                "queue": settings.queue.backend,
                "index": settings.index.backend,
                "max_in_flight": settings.queue.max_in_flight,
            }
        },
    )
    try:
        await Poller(queue, runtime).run(stop)
    finally:
        close = getattr(queue, "close", None)
        if close is not None:
            await close()
        await runtime.close()
        log.info("indexer poller stopped")


if __name__ == "__main__":
    asyncio.run(main())
