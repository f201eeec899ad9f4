"""SQS, S3 and DynamoDB adapters against the real SQS-compatible server (moto)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from aiobotocore.session import get_session

from shared.adapters.aws import dynamodb_status, s3, sqs
from shared.adapters.aws.dynamodb_status import DynamoDbStatusStore
from shared.adapters.aws.s3 import S3BlobStore
from shared.adapters.aws.sqs import SqsQueue
from shared.documents import DocState, DocumentStatus
from shared.errors import DocumentError, DocumentTooLarge, QueueUnavailable
from shared.settings import Settings
from tests.servers import SqsQueuePair

pytestmark = pytest.mark.sqs


def aws_settings(endpoint: str, **more: Any) -> Settings:
    return Settings(_env_file=None, aws={"endpoint_url": endpoint}, **more)


@pytest.fixture
async def queue(sqs_endpoint_url: str, sqs_queue: SqsQueuePair) -> AsyncIterator[SqsQueue]:
    settings = aws_settings(sqs_endpoint_url, queue={"backend": "sqs", "queue_url": sqs_queue.url})
    adapter = sqs.from_settings(settings)
    yield adapter
    await adapter.close()


async def test_sqs_send_receive_extend_release_delete(queue: SqsQueue) -> None:
    sent = await queue.send('{"hello": 1}')
    [got] = await queue.receive(10, 1, visibility_timeout_s=30)
    assert (got.message_id, got.body, got.receive_count) == (sent, '{"hello": 1}', 1)
    await queue.extend(got, 60)
    assert await queue.receive(10, 0, visibility_timeout_s=30) == []  # still invisible
    await queue.release(got)
    [again] = await queue.receive(10, 1, visibility_timeout_s=30)
    assert again.message_id == sent and again.receive_count == 2
    await queue.delete(again)
    await queue.release(again)  # a stale receipt is not an error
    assert await queue.receive(10, 0, visibility_timeout_s=0) == []


async def test_sqs_dead_letter_carries_the_reason(
    queue: SqsQueue, sqs_queue: SqsQueuePair, sqs_client: Any
) -> None:
    dlq = queue.sibling(sqs_queue.dlq_url)
    await dlq.send_with_attributes("{bad", {"reason": "not JSON", "error_code": "invalid_message"})
    response = await sqs_client.receive_message(
        QueueUrl=sqs_queue.dlq_url, MessageAttributeNames=["All"], WaitTimeSeconds=1
    )
    [message] = response["Messages"]
    assert message["Body"] == "{bad"
    assert message["MessageAttributes"]["reason"]["StringValue"] == "not JSON"


async def test_sqs_unreachable_is_queue_unavailable(unused_tcp_port: int) -> None:
    settings = aws_settings(f"http://127.0.0.1:{unused_tcp_port}")
    adapter = SqsQueue(f"http://127.0.0.1:{unused_tcp_port}/123/q", settings)
    try:
        with pytest.raises(QueueUnavailable):
            await adapter.send("x")
    finally:
        await adapter.close()


@pytest.fixture
async def bucket(sqs_endpoint_url: str) -> AsyncIterator[tuple[str, Any]]:
    name = f"test-{uuid.uuid4().hex[:12]}"
    async with get_session().create_client(
        "s3", endpoint_url=sqs_endpoint_url, region_name="us-east-1"
    ) as client:
        await client.create_bucket(Bucket=name)
        yield name, client


async def test_s3_reads_an_object_within_the_limit(
    sqs_endpoint_url: str, bucket: tuple[str, Any]
) -> None:
    name, client = bucket
    data = b"x" * 700_000  # several streamed parts
    await client.put_object(Bucket=name, Key="docs/a.txt", Body=data)
    store = s3.from_settings(aws_settings(sqs_endpoint_url))
    try:
        assert await store.get(name, "docs/a.txt", None, max_bytes=1_000_000) == data
        with pytest.raises(DocumentTooLarge, match="700000 bytes"):
            await store.get(name, "docs/a.txt", None, max_bytes=1000)
        with pytest.raises(DocumentError, match="does not exist"):
            await store.get(name, "docs/missing.txt", None, max_bytes=1000)
    finally:
        await store.close()


async def test_s3_streamed_read_stops_at_the_cap() -> None:
    class Body:
        def __init__(self) -> None:
            self.reads = 0

        async def __aenter__(self) -> Body:
            return self

        async def __aexit__(self, *exc: object) -> None:
            return None

        async def read(self, amount: int) -> bytes:
            self.reads += 1
            return b"y" * amount  # an object that grew after HeadObject

    body = Body()
    with pytest.raises(DocumentTooLarge):
        await S3BlobStore._read_capped(body, "s3://b/k", max_bytes=600_000)
    assert body.reads == 3  # stopped right after passing the cap


@pytest.fixture
async def status_store(sqs_endpoint_url: str) -> AsyncIterator[DynamoDbStatusStore]:
    table = f"test-{uuid.uuid4().hex[:12]}"
    async with get_session().create_client(
        "dynamodb", endpoint_url=sqs_endpoint_url, region_name="us-east-1"
    ) as client:
        await client.create_table(
            TableName=table,
            KeySchema=[{"AttributeName": "doc_id", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "doc_id", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
        store = dynamodb_status.from_settings(
            aws_settings(sqs_endpoint_url, status={"backend": "dynamodb", "table": table})
        )
        yield store
        await store.close()
        await client.delete_table(TableName=table)


async def test_dynamodb_status_round_trip(status_store: DynamoDbStatusStore) -> None:
    assert await status_store.get("nope") is None
    now = datetime.now(UTC)
    record = DocumentStatus(
        doc_id="a/b.md",
        state=DocState.INDEXED,
        generation="g1",
        chunk_count=7,
        title="B",
        updated_at=now,
        indexed_at=now,
    )
    await status_store.put(record)
    assert await status_store.get("a/b.md") == record


async def test_dynamodb_status_never_goes_back_in_time(status_store: DynamoDbStatusStore) -> None:
    now = datetime.now(UTC)
    newer = DocumentStatus(doc_id="d", state=DocState.DELETED, updated_at=now)
    older = DocumentStatus(
        doc_id="d", state=DocState.FAILED, reason="slow", updated_at=now - timedelta(seconds=5)
    )
    await status_store.put(newer)
    await status_store.put(older)  # a slow, older delivery
    got = await status_store.get("d")
    assert got is not None and got.state is DocState.DELETED


async def test_dynamodb_status_list(status_store: DynamoDbStatusStore) -> None:
    await asyncio.gather(
        *(
            status_store.put(DocumentStatus(doc_id=f"d{i}", state=DocState.INDEXED))
            for i in range(5)
        )
    )
    listed = await status_store.list(limit=3)
    assert len(listed) == 3
    assert len(await status_store.list()) == 5
