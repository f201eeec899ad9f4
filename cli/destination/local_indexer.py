"""The indexer's poller consuming the embedded queue, in this process.

The indexer service's own ``Poller`` and ``IndexerPipeline`` do the work; this
module only wires them to the local parts (sharing the store and embedder
with the query side of ``rag serve``) and gives poison messages a place to go:
the embedded queue's dead-letter table, with the reason (``SqliteDeadLetters``).
"""

from __future__ import annotations

import asyncio

from cli.local_parts import LocalParts
from services.indexer.batching import BatchingEmbedder
from services.indexer.pipeline import IndexerPipeline
from services.indexer.poller import Poller
from services.indexer.runtime import Runtime, build_pipeline
from shared.adapters.sqlite.queue import SqliteDeadLetters, SqliteQueue

# The embedded queue's receive is a local poll, so a short wait costs nothing
# and lets the poller stop (end of `rag ingest`, server shutdown) at once.
LOCAL_WAIT_S = 1
LOCAL_RETRY_BASE_S = 2.0
# A stopping `rag serve` releases what it is still indexing after this (the
# deployed poller's 25 s would hold Ctrl-C or SIGTERM that long): the message
# goes back to the embedded queue and the next indexer on the data folder
# writes it whole (a generation is never half-recorded).
LOCAL_SHUTDOWN_GRACE_S = 2.0


def local_pipeline(parts: LocalParts) -> IndexerPipeline:
    # As the deployed indexer embeds (services/indexer/runtime.py): a stopping
    # `rag serve` then waits for one batch, not a document's whole write group.
    embedder = BatchingEmbedder(parts.embedder, parts.settings.embedder.batch_size)
    return build_pipeline(parts.settings, index=parts.index, status=parts.status, embedder=embedder)


def build_poller(parts: LocalParts, queue: SqliteQueue) -> Poller:
    settings = parts.settings.model_copy(
        update={"queue": parts.settings.queue.model_copy(update={"wait_seconds": LOCAL_WAIT_S})}
    )
    runtime = Runtime(settings, local_pipeline(parts), dead_letters=SqliteDeadLetters(queue))
    return Poller(
        queue,
        runtime,
        retry_base_s=LOCAL_RETRY_BASE_S,
        shutdown_grace_s=LOCAL_SHUTDOWN_GRACE_S,
    )


async def run_indexer(parts: LocalParts, queue: SqliteQueue, stop: asyncio.Event) -> None:
    """Consume ``queue`` until ``stop`` is set; in-flight messages finish or are released."""
    await build_poller(parts, queue).run(stop)
