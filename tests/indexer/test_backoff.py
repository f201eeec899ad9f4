"""Issue #12, item 4: a transient failure is retried after a short, growing
back-off (ChangeMessageVisibility on a real SQS API, the moto server), not
after the queue's whole visibility timeout: in the Lambda handler and the poller."""

from __future__ import annotations

import asyncio
from typing import Any

from services.indexer.disposition import retry_delay_s
from services.indexer.lambda_handler import handle_event
from services.indexer.poller import Poller
from services.indexer.runtime import Runtime
from shared.adapters.aws.sqs import SqsQueue
from shared.errors import IndexUnavailable
from shared.settings import AwsSettings, QueueSettings, Settings
from tests.fakes.vector_index import FakeVectorIndex
from tests.indexer.events import index_body, sqs_event
from tests.servers import SQS_REGION, SqsQueuePair

VISIBILITY_S = 600  # what a real stack's queue has (6x the function timeout)


def test_delay_grows_with_the_receive_count_up_to_the_visibility_timeout() -> None:
    assert [retry_delay_s(n, 5.0, 722) for n in range(1, 9)] == [5, 10, 20, 40, 80, 160, 320, 640]
    assert retry_delay_s(9, 5.0, 722) == 722


async def receive(sqs_client: Any, url: str, wait_s: int) -> list[dict[str, Any]]:
    response = await sqs_client.receive_message(
        QueueUrl=url,
        MaxNumberOfMessages=1,
        WaitTimeSeconds=wait_s,
        VisibilityTimeout=VISIBILITY_S,
        AttributeNames=["ApproximateReceiveCount"],
    )
    messages: list[dict[str, Any]] = response.get("Messages", [])
    return messages


def as_lambda_record(message: dict[str, Any]) -> dict[str, Any]:
    """What the event source mapping hands to the function for a received message."""
    return {
        "messageId": message["MessageId"],
        "receiptHandle": message["ReceiptHandle"],
        "body": message["Body"],
        "attributes": {"ApproximateReceiveCount": message["Attributes"]["ApproximateReceiveCount"]},
        "eventSource": "aws:sqs",
    }


async def test_a_transient_failure_comes_back_after_the_back_off(
    runtime: Runtime,
    fake_index: FakeVectorIndex,
    sqs_client: Any,
    sqs_queue: SqsQueuePair,
    sqs_endpoint_url: str,
) -> None:
    # GIVEN a message received with the stack's long visibility timeout
    await sqs_client.send_message(QueueUrl=sqs_queue.url, MessageBody=index_body("d", "text"))
    (message,) = await receive(sqs_client, sqs_queue.url, wait_s=5)
    runtime.settings.queue = QueueSettings(visibility_timeout_s=VISIBILITY_S)
    queue = SqsQueue(
        sqs_queue.url, Settings(aws=AwsSettings(region=SQS_REGION, endpoint_url=sqs_endpoint_url))
    )
    fake_index.fail_writes.append(IndexUnavailable("throttled"))
    try:
        # WHEN the handler fails it transiently
        result = await handle_event(sqs_event(as_lambda_record(message)), runtime, queue)
    finally:
        await queue.close()
    assert result == {"batchItemFailures": [{"itemIdentifier": message["MessageId"]}]}
    # THEN it is back within its back-off (5 s for a first receive), not after 600 s
    again: list[dict[str, Any]] = []
    for _ in range(4):  # long polls of up to 5 s each: a bound, not a timing claim
        again = await receive(sqs_client, sqs_queue.url, wait_s=5)
        if again:
            break
    assert [m["MessageId"] for m in again] == [message["MessageId"]]
    assert again[0]["Attributes"]["ApproximateReceiveCount"] == "2"


async def test_without_a_queue_the_message_keeps_its_visibility_timeout(
    runtime: Runtime, fake_index: FakeVectorIndex, sqs_client: Any, sqs_queue: SqsQueuePair
) -> None:
    await sqs_client.send_message(QueueUrl=sqs_queue.url, MessageBody=index_body("d", "text"))
    (message,) = await receive(sqs_client, sqs_queue.url, wait_s=5)
    fake_index.fail_writes.append(IndexUnavailable("throttled"))
    await handle_event(sqs_event(as_lambda_record(message)), runtime)
    await asyncio.sleep(0)
    assert await receive(sqs_client, sqs_queue.url, wait_s=1) == []


async def test_successes_are_not_touched(
    runtime: Runtime, sqs_client: Any, sqs_queue: SqsQueuePair, sqs_endpoint_url: str
) -> None:
    await sqs_client.send_message(QueueUrl=sqs_queue.url, MessageBody=index_body("d", "text"))
    (message,) = await receive(sqs_client, sqs_queue.url, wait_s=5)
    queue = SqsQueue(
        sqs_queue.url, Settings(aws=AwsSettings(region=SQS_REGION, endpoint_url=sqs_endpoint_url))
    )
    try:
        result = await handle_event(sqs_event(as_lambda_record(message)), runtime, queue)
    finally:
        await queue.close()
    assert result == {"batchItemFailures": []}
    assert await receive(sqs_client, sqs_queue.url, wait_s=1) == []  # still invisible


async def test_the_poller_backs_a_transient_failure_off_too(
    runtime: Runtime,
    fake_index: FakeVectorIndex,
    sqs_client: Any,
    sqs_queue: SqsQueuePair,
    sqs_endpoint_url: str,
) -> None:
    # GIVEN a poller whose index fails one write, on a queue with a long visibility
    runtime.settings.queue = QueueSettings(visibility_timeout_s=VISIBILITY_S, wait_seconds=1)
    queue = SqsQueue(
        sqs_queue.url, Settings(aws=AwsSettings(region=SQS_REGION, endpoint_url=sqs_endpoint_url))
    )
    fake_index.fail_writes.append(IndexUnavailable("throttled"))
    await sqs_client.send_message(QueueUrl=sqs_queue.url, MessageBody=index_body("d", "text"))
    poller = Poller(queue, runtime, idle_pause_s=0.1)
    stop = asyncio.Event()
    task = asyncio.create_task(poller.run(stop))
    try:
        # WHEN it retries, THEN the second delivery comes after the 5 s back-off, not 600 s
        for _ in range(100):  # a bound (20 s), not a timing claim
            if poller.processed:
                break
            await asyncio.sleep(0.2)
    finally:
        stop.set()
        await task
        await queue.close()
    assert (poller.retried, poller.processed) == (1, 1)


async def test_a_busy_document_comes_back_after_the_short_busy_delay(
    runtime: Runtime, sqs_client: Any, sqs_queue: SqsQueuePair, sqs_endpoint_url: str
) -> None:
    # GIVEN a message whose document another invocation holds (its lease)
    assert await runtime.pipeline.status.acquire_lease("d", "another-invocation", 60)
    await sqs_client.send_message(QueueUrl=sqs_queue.url, MessageBody=index_body("d", "text"))
    (message,) = await receive(sqs_client, sqs_queue.url, wait_s=5)
    runtime.settings.queue = QueueSettings(visibility_timeout_s=VISIBILITY_S)
    queue = SqsQueue(
        sqs_queue.url, Settings(aws=AwsSettings(region=SQS_REGION, endpoint_url=sqs_endpoint_url))
    )
    try:
        result = await handle_event(sqs_event(as_lambda_record(message)), runtime, queue)
    finally:
        await queue.close()
    assert result == {"batchItemFailures": [{"itemIdentifier": message["MessageId"]}]}
    # THEN it is back after the busy delay (seconds), as the poller would do
    again: list[dict[str, Any]] = []
    for _ in range(4):
        again = await receive(sqs_client, sqs_queue.url, wait_s=5)
        if again:
            break
    assert [m["MessageId"] for m in again] == [message["MessageId"]]
