"""The indexer consuming the embedded queue, in this process.

A thin transport around the indexer's core (``IndexerPipeline.process``):
success deletes the message; a poison message goes to the dead-letter table
at once, with its reason; a transient failure is retried after a short
backoff (not the full visibility timeout, so a local ``rag ingest`` doesn't
sit idle) until the queue's redrive limit moves it to the dead letters.
"""

from __future__ import annotations

import asyncio
import logging

from services.cli.runtime import Parts
from services.indexer.pipeline import IndexerPipeline, Outcome, Verdict
from shared.adapters.sqlite_queue import SqliteQueue
from shared.adapters.wordpiece import default_token_counter
from shared.documents import LoadedDocument
from shared.loaders import load
from shared.ports import QueueMessage

log = logging.getLogger("services.cli.indexing")
RECEIVE_WAIT_S = 1.0
MAX_BACKOFF_S = 30


def _load(body: bytes, content_type: str | None, name: str | None) -> LoadedDocument:
    return load(body, content_type, filename=name)


def build_pipeline(parts: Parts) -> IndexerPipeline:
    return IndexerPipeline(
        settings=parts.settings,
        index=parts.index,
        status=parts.status,
        embedder=parts.embedder,
        blobs=None,
        loader=_load,
        counter=default_token_counter(),
    )


def retry_backoff_s(receive_count: int) -> int:
    return int(min(2**receive_count, MAX_BACKOFF_S))


async def settle(queue: SqliteQueue, message: QueueMessage, outcome: Outcome) -> None:
    if outcome.ok:
        await queue.delete(message)
    elif outcome.verdict is Verdict.POISON:
        await queue.dead_letter(message, str(outcome.error or "poison message"))
    else:
        await queue.extend(message, retry_backoff_s(message.receive_count))


async def run_indexer(parts: Parts, ready: asyncio.Event | None = None) -> None:
    """Consume until cancelled; one message at a time (embedding is CPU-bound
    and already uses every core)."""
    queue = parts.queue
    if not isinstance(queue, SqliteQueue):
        raise TypeError("the in-process indexer consumes the embedded queue only")
    pipeline = build_pipeline(parts)
    await pipeline.start()
    if ready is not None:
        ready.set()
    visibility = parts.settings.queue.visibility_timeout_s
    while True:
        for message in await queue.receive(1, RECEIVE_WAIT_S, visibility):
            outcome = await pipeline.process(message)
            log.info("indexed message", extra={"fields": outcome.log_fields()})
            await settle(queue, message, outcome)
