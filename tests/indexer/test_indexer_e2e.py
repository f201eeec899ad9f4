"""The indexer end to end on the real servers: SQS (moto) in, OpenSearch out.

Lambda tests emulate the SQS event source: receive a batch, call the handler,
delete what it did not report as failed. Poller tests run the real poller.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from opensearchpy import AsyncOpenSearch

from services.indexer.lambda_handler import handle_event
from services.indexer.poller import Poller
from services.indexer.runtime import Runtime
from shared.access import Access
from shared.adapters.aws.sqs import SqsQueue
from shared.documents import DocState
from shared.ports import StatusStore
from tests.indexer.events import delete_body, index_body, paragraphs, s3_body
from tests.indexer.harness import Servers, create_status_table, eventually, real_runtime
from tests.servers import SqsQueuePair

pytestmark = [pytest.mark.opensearch, pytest.mark.sqs, pytest.mark.slow]
PROGRESS_LIMIT_S = 60.0

ALL = Access.everything()


@pytest.fixture
async def servers(
    opensearch_url: str,
    opensearch_index_name: str,
    opensearch_knn_engine: str,
    sqs_endpoint_url: str,
    sqs_queue: SqsQueuePair,
) -> Servers:
    table = await create_status_table(sqs_endpoint_url)
    return Servers(
        opensearch_url,
        opensearch_index_name,
        opensearch_knn_engine,
        sqs_endpoint_url,
        sqs_queue.url,
        sqs_queue.dlq_url,
        table,
    )


@pytest.fixture
async def live(servers: Servers) -> AsyncIterator[Runtime]:
    runtime = real_runtime(servers.settings())
    yield runtime
    await runtime.close()


async def send_all(sqs_client: Any, url: str, *bodies: str) -> None:
    for body in bodies:
        await sqs_client.send_message(QueueUrl=url, MessageBody=body)


async def lambda_delivery(runtime: Runtime, sqs_client: Any, url: str) -> list[str]:
    """One event-source poll: receive, invoke, delete successes. Returns failed ids."""
    response = await sqs_client.receive_message(
        QueueUrl=url,
        MaxNumberOfMessages=10,
        WaitTimeSeconds=2,
        VisibilityTimeout=1,  # failures come back quickly
        AttributeNames=["ApproximateReceiveCount"],
    )
    messages = response.get("Messages", [])
    event = {
        "Records": [
            {
                "messageId": m["MessageId"],
                "receiptHandle": m["ReceiptHandle"],
                "body": m["Body"],
                "attributes": m.get("Attributes", {}),
                "eventSource": "aws:sqs",
            }
            for m in messages
        ]
    }
    result = await handle_event(event, runtime)
    failed = [f["itemIdentifier"] for f in result["batchItemFailures"]]
    for m in messages:
        if m["MessageId"] not in failed:
            await sqs_client.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])
    return failed


async def dead_letters(sqs_client: Any, dlq_url: str) -> list[dict[str, Any]]:
    response = await sqs_client.receive_message(
        QueueUrl=dlq_url, MaxNumberOfMessages=10, MessageAttributeNames=["All"], WaitTimeSeconds=1
    )
    return list(response.get("Messages", []))


async def chunk_counts(
    client: AsyncOpenSearch, servers: Servers, runtime: Runtime, expected: dict[str, dict[str, int]]
) -> dict[str, dict[str, int]]:
    async def probe() -> dict[str, dict[str, int]]:
        return {d: await runtime.pipeline.index.generations(d) for d in expected}

    return await eventually(client, servers.index_name, probe, lambda got: got == expected)


async def run_poller_until(
    poller: Poller, done: Callable[[Poller], bool], limit_s: float = PROGRESS_LIMIT_S
) -> None:
    stop = asyncio.Event()
    task = asyncio.create_task(poller.run(stop))
    loop = asyncio.get_running_loop()
    deadline = loop.time() + limit_s
    while not done(poller) and loop.time() < deadline and not task.done():  # noqa: ASYNC110
        await asyncio.sleep(0.1)
    stop.set()
    await task


async def test_lambda_batch_with_one_poison_message_only_it_goes_to_the_dlq(
    servers: Servers,
    live: Runtime,
    sqs_client: Any,
    opensearch_client: AsyncOpenSearch,
    sqs_endpoint_url: str,
) -> None:
    # GIVEN three good documents (one in S3) and one of an unsupported type
    from aiobotocore.session import get_session

    async with get_session().create_client(
        "s3", endpoint_url=sqs_endpoint_url, region_name="us-east-1"
    ) as s3:
        await s3.create_bucket(Bucket="ingest-e2e")
        await s3.put_object(Bucket="ingest-e2e", Key="docs/c.md", Body=b"# C\n\nSea shells.")
    await send_all(
        sqs_client,
        servers.queue_url,
        index_body("a", paragraphs("apples", 3)),
        index_body("b", paragraphs("bananas", 2)),
        s3_body("c", "ingest-e2e", "docs/c.md"),
        index_body("bad.png", "not an image", content_type="image/png"),
    )
    # WHEN the Lambda handles the batch
    failed = await lambda_delivery(live, sqs_client, servers.queue_url)

    # THEN nothing is retried, the poison message is in the DLQ with its reason
    assert failed == []
    [dead] = await dead_letters(sqs_client, servers.dlq_url)
    assert json.loads(dead["Body"])["doc_id"] == "bad.png"
    assert dead["MessageAttributes"]["error_code"]["StringValue"] == "unsupported_content_type"
    assert "image/png" in dead["MessageAttributes"]["reason"]["StringValue"]
    # AND the good ones are searchable, and the status table tells both stories
    status: StatusStore = live.pipeline.status
    counts = {}
    for doc in ("a", "b", "c"):
        record = await status.get(doc)
        assert record is not None and record.state is DocState.INDEXED
        counts[doc] = {record.generation or "": record.chunk_count}
    assert await chunk_counts(opensearch_client, servers, live, counts) == counts
    bad = await status.get("bad.png")
    assert bad is not None and bad.state is DocState.FAILED
    assert bad.error_code == "unsupported_content_type"


async def test_lambda_opensearch_down_then_back_loses_nothing(
    servers: Servers,
    live: Runtime,
    sqs_client: Any,
    opensearch_client: AsyncOpenSearch,
    unused_tcp_port: int,
) -> None:
    await send_all(
        sqs_client,
        servers.queue_url,
        *(index_body(f"doc{i}", paragraphs(f"topic{i}", 2)) for i in range(3)),
    )
    down = real_runtime(servers.settings(opensearch_url=f"http://127.0.0.1:{unused_tcp_port}"))
    try:
        failed = await lambda_delivery(down, sqs_client, servers.queue_url)
    finally:
        await down.close()
    assert len(failed) == 3  # every message reported, none deleted

    indexed: list[str] = []
    loop = asyncio.get_running_loop()
    deadline = loop.time() + PROGRESS_LIMIT_S
    while len(indexed) < 3 and loop.time() < deadline:
        await asyncio.sleep(1.0)  # the failed messages' visibility runs out
        await lambda_delivery(live, sqs_client, servers.queue_url)
        statuses = {d: await live.pipeline.status.get(d) for d in ("doc0", "doc1", "doc2")}
        indexed = [d for d, s in statuses.items() if s is not None and s.state is DocState.INDEXED]
    assert indexed == ["doc0", "doc1", "doc2"]
    assert await dead_letters(sqs_client, servers.dlq_url) == []


async def test_poller_index_reindex_redeliver_delete(
    servers: Servers, live: Runtime, sqs_client: Any, opensearch_client: AsyncOpenSearch
) -> None:
    queue = SqsQueue(servers.queue_url, servers.settings())
    try:
        # GIVEN two documents indexed
        await send_all(
            sqs_client,
            servers.queue_url,
            index_body("a", paragraphs("first", 4)),
            index_body("b", paragraphs("other", 2)),
        )
        poller = Poller(queue, live, shutdown_grace_s=5)
        await run_poller_until(poller, lambda p: p.processed >= 2)
        a_v1 = await live.pipeline.status.get("a")
        assert a_v1 is not None and a_v1.state is DocState.INDEXED
        await chunk_counts(
            opensearch_client, servers, live, {"a": {a_v1.generation or "": a_v1.chunk_count}}
        )

        # WHEN a changes, b is deleted, and a's new version arrives twice
        v2 = index_body("a", paragraphs("second", 2))
        await send_all(sqs_client, servers.queue_url, v2, delete_body("b"), v2)
        poller = Poller(queue, live, shutdown_grace_s=5)
        await run_poller_until(poller, lambda p: p.processed >= 3)

        # THEN only a's new generation remains, exactly once, and b is gone
        a_v2 = await live.pipeline.status.get("a")
        assert a_v2 is not None and a_v2.generation != a_v1.generation
        expected = {"a": {a_v2.generation or "": a_v2.chunk_count}, "b": {}}
        assert await chunk_counts(opensearch_client, servers, live, expected) == expected
        probe = await live.pipeline.embedder.embed_query("second")
        hits = await live.pipeline.index.knn_search(probe, 50, {}, ALL)
        ordinals = sorted(h.chunk.ordinal for h in hits if h.chunk.doc_id == "a")
        assert ordinals == list(range(a_v2.chunk_count))  # no stale chunk, no duplicate
        b = await live.pipeline.status.get("b")
        assert b is not None and b.state is DocState.DELETED
    finally:
        await queue.close()


async def test_poller_sends_poison_to_the_dlq_and_keeps_going(
    servers: Servers, live: Runtime, sqs_client: Any
) -> None:
    queue = SqsQueue(servers.queue_url, servers.settings())
    try:
        await send_all(sqs_client, servers.queue_url, "{oops", index_body("ok", "fine text"))
        poller = Poller(queue, live)
        await run_poller_until(poller, lambda p: p.processed + p.rejected >= 2)
        assert (poller.processed, poller.rejected) == (1, 1)
        [dead] = await dead_letters(sqs_client, servers.dlq_url)
        assert dead["Body"] == "{oops"
        assert dead["MessageAttributes"]["error_code"]["StringValue"] == "invalid_message"
        assert await queue.receive(10, 1, 5) == []  # removed from the main queue
    finally:
        await queue.close()


async def test_poller_opensearch_down_then_back_indexes_everything(
    servers: Servers, live: Runtime, sqs_client: Any, unused_tcp_port: int
) -> None:
    queue = SqsQueue(servers.queue_url, servers.settings())
    docs = [f"d{i}" for i in range(4)]
    await send_all(sqs_client, servers.queue_url, *(index_body(d, paragraphs(d, 2)) for d in docs))
    down = real_runtime(servers.settings(opensearch_url=f"http://127.0.0.1:{unused_tcp_port}"))
    try:
        # the index is down when the messages arrive (start-up is skipped to get that far)
        down.started = True
        failing = Poller(queue, down, retry_base_s=1)
        await run_poller_until(failing, lambda p: p.retried >= len(docs))
        assert failing.retried >= len(docs) and failing.processed == 0

        # it comes back: every message is indexed, none went to the DLQ
        poller = Poller(queue, live)
        await run_poller_until(poller, lambda p: p.processed >= len(docs))
        for d in docs:
            record = await live.pipeline.status.get(d)
            assert record is not None and record.state is DocState.INDEXED
        assert await dead_letters(sqs_client, servers.dlq_url) == []
    finally:
        await down.close()
        await queue.close()
