"""The Queue and DeadLetters ports on Amazon SQS (or ElasticMQ / moto via RAG_AWS__ENDPOINT_URL)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from botocore.exceptions import BotoCoreError, ClientError

from shared.adapters.aws.client import LazyAwsClient, error_code
from shared.errors import ConfigurationError, QueueUnavailable
from shared.ports import PoisonReason, QueueMessage
from shared.settings import Settings

T = TypeVar("T")
# SQS caps a receive at 10 messages and a message attribute value at 256 KiB;
# reasons are kept short so that operators can read them in the console.
MAX_RECEIVE = 10
MAX_REASON_CHARS = 1000
# The receipt is stale: visibility ran out and someone else holds the message.
_STALE_RECEIPT = {"ReceiptHandleIsInvalid", "InvalidParameterValue"}


def build_message_attributes(attributes: dict[str, str]) -> dict[str, dict[str, str]]:
    return {
        name: {"DataType": "String", "StringValue": value[:MAX_REASON_CHARS] or "-"}
        for name, value in attributes.items()
    }


def dead_letter_attributes(message: QueueMessage, why: PoisonReason) -> dict[str, str]:
    """The DLQ entry's message attributes: why, and where the message came from."""
    return {
        "reason": why.reason,
        "error_code": why.error_code,
        "source_message_id": message.message_id,
        "doc_id": why.doc_id or "",
        "receive_count": str(message.receive_count),
    }


def parse_message(raw: dict[str, Any]) -> QueueMessage:
    attributes = raw.get("Attributes", {})
    return QueueMessage(
        message_id=str(raw["MessageId"]),
        receipt=str(raw["ReceiptHandle"]),
        body=str(raw.get("Body", "")),
        receive_count=int(attributes.get("ApproximateReceiveCount", 1)),
    )


class SqsQueue:
    def __init__(
        self, queue_url: str, settings: Settings, client: LazyAwsClient | None = None
    ) -> None:
        self.queue_url = queue_url
        self._settings = settings
        # Long polls hold a connection for up to 20 s: the read timeout must exceed it.
        self._client = client or LazyAwsClient.from_settings("sqs", settings, read_timeout_s=40.0)

    def sibling(self, queue_url: str) -> SqsQueue:
        """Another queue (e.g. the dead-letter queue) sharing this one's client."""
        return SqsQueue(queue_url, self._settings, self._client)

    async def _call(self, action: str, call: Callable[[Any], Awaitable[T]]) -> T:
        try:
            return await call(await self._client())
        except ClientError as exc:
            code = error_code(exc)
            if code in {"AWS.SimpleQueueService.NonExistentQueue", "QueueDoesNotExist"}:
                raise ConfigurationError(f"queue {self.queue_url} does not exist") from exc
            raise QueueUnavailable(f"SQS failed to {action}: {exc}") from exc
        except (BotoCoreError, OSError) as exc:
            raise QueueUnavailable(f"SQS unreachable while trying to {action}: {exc}") from exc

    async def send(self, body: str) -> str:
        return await self.send_with_attributes(body, {})

    async def send_with_attributes(self, body: str, attributes: dict[str, str]) -> str:
        kwargs: dict[str, Any] = {"QueueUrl": self.queue_url, "MessageBody": body}
        if attributes:
            kwargs["MessageAttributes"] = build_message_attributes(attributes)
        response = await self._call("send a message", lambda c: c.send_message(**kwargs))
        return str(response["MessageId"])

    async def receive(
        self, max_messages: int, wait_seconds: float, visibility_timeout_s: int
    ) -> list[QueueMessage]:
        response = await self._call(
            "receive messages",
            lambda c: c.receive_message(
                QueueUrl=self.queue_url,
                MaxNumberOfMessages=max(1, min(MAX_RECEIVE, max_messages)),
                WaitTimeSeconds=int(max(0, min(20, wait_seconds))),
                VisibilityTimeout=visibility_timeout_s,
                AttributeNames=["ApproximateReceiveCount"],
                MessageAttributeNames=["All"],
            ),
        )
        return [parse_message(m) for m in response.get("Messages", [])]

    async def delete(self, message: QueueMessage) -> None:
        await self._quietly_if_stale(
            "delete a message",
            lambda c: c.delete_message(QueueUrl=self.queue_url, ReceiptHandle=message.receipt),
        )

    async def extend(self, message: QueueMessage, visibility_timeout_s: int) -> None:
        await self._change_visibility(message, visibility_timeout_s)

    async def release(self, message: QueueMessage) -> None:
        await self._change_visibility(message, 0)

    async def _change_visibility(self, message: QueueMessage, seconds: int) -> None:
        await self._quietly_if_stale(
            "change a message's visibility",
            lambda c: c.change_message_visibility(
                QueueUrl=self.queue_url,
                ReceiptHandle=message.receipt,
                VisibilityTimeout=seconds,
            ),
        )

    async def _quietly_if_stale(self, action: str, call: Callable[[Any], Awaitable[Any]]) -> None:
        # A stale receipt means the message is (or was) someone else's now; the
        # work is idempotent, so there is nothing useful to do about it here.
        try:
            await self._call(action, call)
        except QueueUnavailable as exc:
            if error_code(exc.__cause__ or exc) not in _STALE_RECEIPT:
                raise

    async def close(self) -> None:
        await self._client.close()


class SqsDeadLetters:
    """Poison messages to an SQS dead-letter queue, body unchanged, reason attached."""

    def __init__(self, dlq: SqsQueue) -> None:
        self._dlq = dlq

    async def send(self, message: QueueMessage, why: PoisonReason) -> None:
        await self._dlq.send_with_attributes(message.body, dead_letter_attributes(message, why))

    async def close(self) -> None:
        await self._dlq.close()


def dead_letters_from_settings(settings: Settings) -> SqsDeadLetters:
    if not settings.queue.dlq_url:
        raise ConfigurationError("RAG_QUEUE__DLQ_URL is required for an SQS dead-letter queue")
    return SqsDeadLetters(SqsQueue(settings.queue.dlq_url, settings))


def from_settings(settings: Settings) -> SqsQueue:
    if not settings.queue.queue_url:
        raise ConfigurationError("RAG_QUEUE__QUEUE_URL is required when RAG_QUEUE__BACKEND=sqs")
    return SqsQueue(settings.queue.queue_url, settings)
