"""Adapters built once from settings (a Lambda cold start, the poller's start-up).

Poison messages: the indexer sends them to the dead letters itself (the
``DeadLetters`` port: the SQS DLQ with the reason and error code as message
attributes, or the embedded queue's dead-letter table), and then reports them
as handled. An operator then finds each entry next to *why* it is there,
instead of a bare copy after N pointless retries. Without a configured SQS DLQ
(``RAG_QUEUE__DLQ_URL``) the transports fall back to the queue's own redrive
policy: the message fails until its receive count moves it.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from services.indexer.batching import BatchingEmbedder
from services.indexer.disposition import Outcome
from services.indexer.pipeline import IndexerPipeline, Loader
from services.indexer.reconcile import Reconciler, Requeue
from shared.documents import LoadedDocument
from shared.factory import (
    build_blob_store,
    build_dead_letters,
    build_embedder,
    build_status_store,
    build_token_counter,
    build_vector_index,
)
from shared.ports import (
    BlobStore,
    DeadLetters,
    Embedder,
    PoisonReason,
    Queue,
    QueueMessage,
    StatusStore,
    VectorIndex,
)
from shared.settings import Settings

log = logging.getLogger("services.indexer")


def poison_reason(outcome: Outcome) -> PoisonReason:
    error = outcome.error
    if error is None:
        return PoisonReason("rejected by the indexer", "internal_error", outcome.doc_id)
    return PoisonReason(str(error), error.code, outcome.doc_id)


def default_loader() -> Loader:
    from shared.loaders import load

    def loader(body: bytes, content_type: str | None, name: str | None) -> LoadedDocument:
        return load(body, content_type, filename=name)

    return loader


def build_pipeline(
    settings: Settings,
    *,
    index: VectorIndex,
    status: StatusStore,
    embedder: Embedder,
    blobs: BlobStore | None = None,
) -> IndexerPipeline:
    """The pipeline with the product's loaders and token counter (every caller's choice)."""
    return IndexerPipeline(
        settings=settings,
        index=index,
        status=status,
        embedder=embedder,
        blobs=blobs,
        loader=default_loader(),
        counter=build_token_counter(),
    )


@dataclass
class Runtime:
    settings: Settings
    pipeline: IndexerPipeline
    dead_letters: DeadLetters | None = None
    # The source (ingest) queue, when it is SQS: the Lambda backs failed
    # messages off on it, and reconcile re-queues documents to it.
    queue: Queue | None = None
    closers: list[Callable[[], Awaitable[None]]] = field(default_factory=list)
    started: bool = False

    @property
    def requeue(self) -> Requeue | None:
        """Where reconcile re-queues a document: the source queue, if known."""
        return self.queue.send if self.queue is not None else None

    async def start(self) -> None:
        if not self.started:
            await self.pipeline.start()
            self.started = True

    async def dead_letter(self, message: QueueMessage, outcome: Outcome) -> bool:
        """Send a poison message to the DLQ; False when there is none or the send
        failed, so the caller leaves the message to the queue's redrive."""
        if self.dead_letters is None:
            return False
        try:
            await self.dead_letters.send(message, poison_reason(outcome))
        except Exception as exc:
            log.error(
                "could not send a poison message to the DLQ; leaving it to redrive",
                extra={"fields": {"message_id": message.message_id, "error": repr(exc)}},
            )
            return False
        return True

    async def close(self) -> None:
        for close in reversed(self.closers):
            try:
                await close()
            except Exception as exc:  # closing must go on for the others
                log.warning("close failed", extra={"fields": {"error": repr(exc)}})
        self.closers.clear()


def build_reconciler(runtime: Runtime) -> Reconciler:
    pipeline = runtime.pipeline
    return Reconciler(
        index=pipeline.index,
        status=pipeline.status,
        requeue=runtime.requeue,
        settle_s=pipeline.settle_s,
        lease_s=runtime.settings.indexer.lease_s,
        requeue_limit=runtime.settings.indexer.reconcile_requeue_limit,
    )


def build_runtime(settings: Settings) -> Runtime:
    index = build_vector_index(settings)
    status = build_status_store(settings)
    # Small messages share forward passes (see batching.py).
    embedder = BatchingEmbedder(build_embedder(settings), settings.embedder.batch_size)
    uses_s3 = settings.queue.backend == "sqs" or settings.ingest.bucket is not None
    blobs = build_blob_store(settings) if uses_s3 else None
    pipeline = build_pipeline(settings, index=index, status=status, embedder=embedder, blobs=blobs)
    runtime = Runtime(settings, pipeline)
    runtime.closers.append(index.close)
    for adapter in (status, blobs):
        close = getattr(adapter, "close", None)
        if close is not None:
            runtime.closers.append(close)
    if settings.queue.backend == "sqs" and settings.queue.queue_url:
        from shared.adapters.aws.sqs import SqsQueue

        ingest = SqsQueue(settings.queue.queue_url, settings)
        runtime.queue = ingest
        runtime.closers.append(ingest.close)
    runtime.dead_letters = build_dead_letters(settings)
    close = getattr(runtime.dead_letters, "close", None)
    if close is not None:
        runtime.closers.append(close)
    return runtime
