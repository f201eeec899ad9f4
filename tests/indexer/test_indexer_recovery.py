"""Crash recovery and shutdown on the real servers."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence

import pytest
from opensearchpy import AsyncOpenSearch

from services.indexer import lambda_handler
from services.indexer.poller import Poller
from services.indexer.runtime import Runtime
from shared.adapters.aws.sqs import SqsQueue
from shared.adapters.opensearch.index import OpenSearchVectorIndex
from shared.documents import DocState, Vector
from shared.errors import IndexUnavailable
from shared.settings import Settings
from tests.fakes.embedder import FakeEmbedder
from tests.fakes.status_store import FakeStatusStore
from tests.fakes.vector_index import FakeVectorIndex
from tests.indexer.conftest import make_pipeline
from tests.indexer.events import index_body, paragraphs, queue_message, sqs_event, sqs_record
from tests.indexer.harness import INDEX_TIMING, create_status_table, eventually
from tests.servers import SqsQueuePair


class CrashBeforeCleanup(OpenSearchVectorIndex):
    """The real adapter, except that the first cleanup after a write 'crashes'."""

    crashes = 1

    async def delete_chunks(self, store_ids: Sequence[str]) -> int:
        if self.crashes:
            self.crashes -= 1
            raise IndexUnavailable("the process died here")
        return await super().delete_chunks(store_ids)


@pytest.mark.opensearch
async def test_a_crash_between_write_and_cleanup_converges_on_redelivery(
    opensearch_url: str,
    opensearch_index_name: str,
    opensearch_knn_engine: str,
    opensearch_client: AsyncOpenSearch,
) -> None:
    settings = Settings(
        _env_file=None,
        index={
            "backend": "opensearch",
            "opensearch_url": opensearch_url,
            "index_name": opensearch_index_name,
            "engine": opensearch_knn_engine,
            **INDEX_TIMING,
        },
    )
    index = CrashBeforeCleanup(settings)
    status = FakeStatusStore()
    pipeline = make_pipeline(settings, index, status)
    try:
        await pipeline.start()
        index.crashes = 0
        v1 = await pipeline.process(queue_message(index_body("doc", paragraphs("one", 5))))
        await eventually(
            opensearch_client, opensearch_index_name, lambda: index.generations("doc"), bool
        )
        index.crashes = 1
        v2_message = queue_message(index_body("doc", paragraphs("two", 2)))
        crashed = await pipeline.process(v2_message)
        assert crashed.error is not None and crashed.error.code == "index_unavailable"
        both = {v1.generation: v1.chunk_count, crashed.generation: crashed.chunk_count}
        assert (
            await eventually(
                opensearch_client,
                opensearch_index_name,
                lambda: index.generations("doc"),
                lambda g: g == both,
            )
            == both
        )

        again = await pipeline.process(v2_message)

        assert again.ok
        expected = {again.generation: again.chunk_count}
        settled = await eventually(
            opensearch_client,
            opensearch_index_name,
            lambda: index.generations("doc"),
            lambda g: g == expected,
        )
        assert settled == expected
        record = status.records["doc"]
        assert record.state is DocState.INDEXED and record.generation == again.generation
    finally:
        await index.close()


class BlockingEmbedder(FakeEmbedder):
    """Embeds only once released; records when it started."""

    def __init__(self) -> None:
        super().__init__(dimension=16)
        self.started = asyncio.Event()
        self.release = asyncio.Event()

    async def embed_documents(self, texts: Sequence[str]) -> Vector:
        self.started.set()
        await self.release.wait()
        return await super().embed_documents(texts)


@pytest.fixture
async def sqs(sqs_endpoint_url: str, sqs_queue: SqsQueuePair) -> AsyncIterator[SqsQueue]:
    settings = Settings(_env_file=None, aws={"endpoint_url": sqs_endpoint_url})
    queue = SqsQueue(sqs_queue.url, settings)
    yield queue
    await queue.close()


def slow_runtime(visibility_timeout_s: int) -> tuple[Runtime, BlockingEmbedder]:
    settings = Settings(
        _env_file=None,
        queue={"wait_seconds": 1, "visibility_timeout_s": visibility_timeout_s},
    )
    embedder = BlockingEmbedder()
    pipeline = make_pipeline(settings, FakeVectorIndex(), FakeStatusStore(), embedder)
    return Runtime(settings, pipeline), embedder


@pytest.mark.sqs
async def test_shutdown_releases_a_message_still_in_flight(sqs: SqsQueue) -> None:
    runtime, embedder = slow_runtime(visibility_timeout_s=300)
    await sqs.send(index_body("slow", "a long document"))
    stop = asyncio.Event()
    poller = Poller(sqs, runtime, shutdown_grace_s=0.2)
    task = asyncio.create_task(poller.run(stop))
    await asyncio.wait_for(embedder.started.wait(), 30)

    stop.set()  # SIGTERM while the message is being processed
    await task

    # released, not left invisible for 300 s: it is there for the next worker
    [again] = await sqs.receive(10, 2, visibility_timeout_s=30)
    assert again.receive_count == 2 and poller.processed == 0


@pytest.mark.sqs
async def test_the_heartbeat_keeps_a_long_message_from_a_second_worker(sqs: SqsQueue) -> None:
    runtime, embedder = slow_runtime(visibility_timeout_s=2)
    await sqs.send(index_body("long", "a long document"))
    stop = asyncio.Event()
    poller = Poller(sqs, runtime)
    task = asyncio.create_task(poller.run(stop))
    await asyncio.wait_for(embedder.started.wait(), 30)

    # a second worker polls for longer than the visibility timeout
    stolen = [await sqs.receive(10, 1, visibility_timeout_s=30) for _ in range(4)]
    embedder.release.set()
    while poller.processed == 0 and not task.done():  # noqa: ASYNC110
        await asyncio.sleep(0.05)
    stop.set()
    await task

    assert stolen == [[], [], [], []]
    assert poller.processed == 1
    assert await sqs.receive(10, 0, visibility_timeout_s=30) == []  # deleted after success


@pytest.mark.opensearch
@pytest.mark.sqs
@pytest.mark.slow
def test_the_lambda_entry_point_builds_everything_from_the_environment(
    monkeypatch: pytest.MonkeyPatch,
    opensearch_url: str,
    opensearch_knn_engine: str,
    sqs_endpoint_url: str,
) -> None:
    # GIVEN the settings a deployed function gets (real MiniLM embedder, DynamoDB status)
    table = asyncio.run(create_status_table(sqs_endpoint_url))
    index_name = f"test-lambda-{table[-8:]}"
    env = {
        "RAG_AWS__ENDPOINT_URL": sqs_endpoint_url,
        "RAG_INDEX__BACKEND": "opensearch",
        "RAG_INDEX__OPENSEARCH_URL": opensearch_url,
        "RAG_INDEX__INDEX_NAME": index_name,
        "RAG_INDEX__ENGINE": opensearch_knn_engine,
        "RAG_QUEUE__BACKEND": "sqs",
        "RAG_STATUS__BACKEND": "dynamodb",
        "RAG_STATUS__TABLE": table,
    }
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    lambda_handler.handler.close()  # start cold, under these settings
    try:
        # WHEN two warm invocations handle a batch each
        first = lambda_handler.handler(
            sqs_event(sqs_record(index_body("guide", "How to file expenses."))), None
        )
        second = lambda_handler.handler(sqs_event(sqs_record("not json", message_id="p")), None)
        # THEN the good one succeeded; the poison one (no DLQ configured) is left to redrive
        assert first == {"batchItemFailures": []}
        assert second == {"batchItemFailures": [{"itemIdentifier": "p"}]}
        app = lambda_handler.handler.app
        assert app is not None
        runtime = app.runtime
        record = lambda_handler.handler.run(runtime.pipeline.status.get("guide"))
        assert record is not None and record.state is DocState.INDEXED
        assert runtime.pipeline.embedder.dimension == 384
    finally:
        lambda_handler.handler.close()
        asyncio.run(_drop_index(opensearch_url, index_name))


async def _drop_index(url: str, name: str) -> None:
    client = AsyncOpenSearch(hosts=[url])
    try:
        await client.indices.delete(index=name, params={"ignore_unavailable": "true"})
    finally:
        await client.close()
