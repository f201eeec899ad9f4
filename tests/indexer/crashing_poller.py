"""``python -m tests.indexer.crashing_poller``: the product's poller that SIGKILLs
itself at chosen points (fault tests only; nothing here ships).

Everything is the product's: settings from ``RAG_*``, the OpenSearch index,
the DynamoDB status store, the SQS queue and DLQ, the pipeline and the
poller. Thin wrappers around the index, the status store and the embedder
kill the process, with probability ``RAG_TEST_CRASH_P`` at each point, at:

- ``embed``: in the middle of embedding a document;
- ``after_write``: right after a group of chunks was written (before the old
  generations are deleted and before the status record);
- ``before_status``: after the whole write, before the ``indexed`` record;
- ``before_cleanup``: after the ``indexed`` record, before old generations go.

Before dying it prints ``CRASH <point>`` so the test can count the crashes.
The embedder is the deterministic hash embedder (fast to start: the test
restarts processes many times; MiniLM has its own tests).
"""

from __future__ import annotations

import asyncio
import os
import random
import signal
from collections.abc import Sequence

from services.indexer.poller import Poller
from services.indexer.runtime import Runtime, build_pipeline
from shared.adapters.aws import dynamodb_status, s3, sqs
from shared.adapters.aws.sqs import SqsDeadLetters
from shared.adapters.opensearch import index as opensearch
from shared.documents import DocState, DocumentStatus, EmbeddedChunk, Vector
from shared.logs import configure_logging
from shared.settings import load_settings
from tests.fakes.embedder import FakeEmbedder

POINTS = ("embed", "after_write", "before_status", "before_cleanup")


class Crasher:
    def __init__(self) -> None:
        self.p = float(os.environ.get("RAG_TEST_CRASH_P", "0"))
        self.points = set(os.environ.get("RAG_TEST_CRASH_POINTS", ",".join(POINTS)).split(","))
        self.rng = random.Random()

    def maybe(self, point: str) -> None:
        if point in self.points and self.rng.random() < self.p:
            print(f"CRASH {point}", flush=True)
            os.kill(os.getpid(), signal.SIGKILL)


class CrashingEmbedder(FakeEmbedder):
    def __init__(self, crasher: Crasher) -> None:
        super().__init__(dimension=16)
        self._crasher = crasher

    async def embed_documents(self, texts: Sequence[str]) -> Vector:
        await asyncio.sleep(0.02)  # "the model is busy"
        self._crasher.maybe("embed")
        return await super().embed_documents(texts)


class CrashingIndex(opensearch.OpenSearchVectorIndex):
    crasher: Crasher

    async def write(self, chunks: Sequence[EmbeddedChunk]) -> None:
        await super().write(chunks)
        self.crasher.maybe("after_write")

    async def delete_chunks(self, store_ids: Sequence[str]) -> int:
        self.crasher.maybe("before_cleanup")
        return await super().delete_chunks(store_ids)


class CrashingStatus(dynamodb_status.DynamoDbStatusStore):
    crasher: Crasher

    async def put(self, status: DocumentStatus, fence: str | None = None) -> None:
        if status.state is DocState.INDEXED:
            self.crasher.maybe("before_status")
        await super().put(status, fence)


async def main() -> None:
    settings = load_settings()
    configure_logging(settings.log_level)
    crasher = Crasher()
    index = CrashingIndex(settings)
    index.crasher = crasher
    status = CrashingStatus(settings.status.table or "", settings)
    status.crasher = crasher
    blobs = s3.S3BlobStore(settings)
    pipeline = build_pipeline(
        settings, index=index, status=status, embedder=CrashingEmbedder(crasher), blobs=blobs
    )
    dlq = sqs.SqsQueue(settings.queue.dlq_url or "", settings)
    runtime = Runtime(settings, pipeline, SqsDeadLetters(dlq))
    runtime.closers += [index.close, status.close, blobs.close, dlq.close]
    queue = sqs.SqsQueue(settings.queue.queue_url or "", settings)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    print("READY", flush=True)
    try:
        await Poller(queue, runtime, retry_base_s=0.5, shutdown_grace_s=2).run(stop)
    finally:
        await queue.close()
        await runtime.close()


if __name__ == "__main__":
    asyncio.run(main())
