"""Sending to a deployed stack: the ingest queue (SQS) and, for large files, S3."""

from __future__ import annotations

from shared.adapters.aws.client import LazyAwsClient
from shared.adapters.aws.sqs import SqsQueue
from shared.errors import ConfigurationError
from shared.ingest import MAX_INLINE_BYTES, IndexOperation, S3Object
from shared.settings import Settings

# Room under SQS's 1 MiB body limit for the envelope around the content.
SQS_BODY_LIMIT = MAX_INLINE_BYTES


def build_stack_queue(queue_url: str, settings: Settings) -> SqsQueue:
    """The deployed stack's ingest queue: where the CLI builds its SQS adapter."""
    return SqsQueue(queue_url, settings)


def needs_s3(body: str) -> bool:
    return len(body.encode()) > SQS_BODY_LIMIT


def upload_key(doc_id: str) -> str:
    return f"uploads/{doc_id}"


async def send_to_stack(settings: Settings, message: IndexOperation) -> str:
    """Inline when the message fits in SQS, else upload to the ingest bucket first."""
    if not settings.queue.queue_url:
        raise ConfigurationError(
            "no ingest queue: pass --stack NAME (reads `pulumi stack output`) or set "
            "RAG_QUEUE__QUEUE_URL"
        )
    body = message.model_dump_json(exclude_none=True)
    if needs_s3(body):
        body = (await _via_s3(settings, message)).model_dump_json(exclude_none=True)
    queue = build_stack_queue(settings.queue.queue_url, settings)
    try:
        return await queue.send(body)
    finally:
        await queue.close()


async def _via_s3(settings: Settings, message: IndexOperation) -> IndexOperation:
    bucket = settings.ingest.bucket
    if not bucket:
        raise ConfigurationError(
            f"{message.doc_id} is too large for an SQS message and no ingest bucket is set: "
            "pass --stack NAME or set RAG_INGEST__BUCKET"
        )
    data = message.inline_bytes() or b""
    key = upload_key(message.doc_id)
    client = LazyAwsClient.from_settings("s3", settings)
    try:
        s3 = await client()
        await s3.put_object(
            Bucket=bucket, Key=key, Body=data, ContentType=message.content_type or ""
        )
    finally:
        await client.close()
    return message.model_copy(
        update={"text": None, "data_base64": None, "s3": S3Object(bucket=bucket, key=key)}
    )
