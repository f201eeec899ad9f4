"""Factories for ingest messages and Lambda SQS events (GIVEN helpers)."""

from __future__ import annotations

import json
import uuid
from typing import Any

from shared.ports import QueueMessage

QUEUE_ARN = "arn:aws:sqs:us-east-1:123456789012:rag-ingest"


def index_body(doc_id: str, text: str, **fields: Any) -> str:
    message = {"version": 1, "op": "index", "doc_id": doc_id, "text": text}
    message.setdefault("content_type", "text/plain")
    message.update(fields)
    return json.dumps(message)


def s3_body(doc_id: str, bucket: str, key: str, **fields: Any) -> str:
    message = {"version": 1, "op": "index", "doc_id": doc_id, "s3": {"bucket": bucket, "key": key}}
    message.update(fields)
    return json.dumps(message)


def delete_body(doc_id: str) -> str:
    return json.dumps({"version": 1, "op": "delete", "doc_id": doc_id})


def queue_message(body: str, receive_count: int = 1, message_id: str | None = None) -> QueueMessage:
    mid = message_id or str(uuid.uuid4())
    return QueueMessage(mid, f"receipt-{mid}", body, receive_count)


def sqs_record(body: str, message_id: str | None = None, receive_count: int = 1) -> dict[str, Any]:
    """One record as the SQS event source hands it to Lambda."""
    mid = message_id or str(uuid.uuid4())
    return {
        "messageId": mid,
        "receiptHandle": f"AQEB{uuid.uuid4().hex}",
        "body": body,
        "attributes": {
            "ApproximateReceiveCount": str(receive_count),
            "SentTimestamp": "1700000000000",
            "SenderId": "AIDAEXAMPLE",
            "ApproximateFirstReceiveTimestamp": "1700000000001",
        },
        "messageAttributes": {},
        "md5OfBody": "",
        "eventSource": "aws:sqs",
        "eventSourceARN": QUEUE_ARN,
        "awsRegion": "us-east-1",
    }


def sqs_event(*records: dict[str, Any]) -> dict[str, Any]:
    return {"Records": list(records)}


def paragraphs(topic: str, n: int) -> str:
    """A document long enough to span several chunks, distinct per topic."""
    return "\n\n".join(
        f"Paragraph {i} about {topic}. " + " ".join(f"{topic}{i}word{j}" for j in range(60))
        for i in range(n)
    )
