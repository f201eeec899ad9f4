"""StatusStore on a DynamoDB table (hash key ``doc_id``, a string).

Why DynamoDB rather than a status index in the OpenSearch collection: a
status record is read and written by doc id, and must be right immediately
(an operator asking "why is my document missing?" right after a failure).
DynamoDB gives strongly consistent point reads and conditional writes by key;
an AOSS index offers neither (no client-chosen ``_id``, writes searchable
only after a delay), so "upsert by doc id" would need search-then-write races.
On-demand billing makes the table free at rest.

Writes are conditional on ``updated_at`` so that a slow, older delivery can't
overwrite a newer record.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from botocore.exceptions import BotoCoreError, ClientError

from shared.adapters.aws_client import LazyAwsClient, error_code
from shared.documents import DocumentStatus
from shared.errors import ConfigurationError, TransientError
from shared.settings import Settings

T = TypeVar("T")
_INT_FIELDS = {"chunk_count"}
_ORDER_KEY = "updated_us"


def to_item(status: DocumentStatus) -> dict[str, dict[str, str]]:
    """A status as a DynamoDB item; absent (None) fields are left out."""
    item: dict[str, dict[str, str]] = {}
    for name, value in status.model_dump(mode="json").items():
        if value is None:
            continue
        item[name] = {"N": str(value)} if name in _INT_FIELDS else {"S": str(value)}
    # A number for the ordering condition (ISO strings vary in their fraction digits).
    item[_ORDER_KEY] = {"N": str(int(status.updated_at.timestamp() * 1_000_000))}
    return item


def from_item(item: dict[str, dict[str, str]]) -> DocumentStatus:
    fields: dict[str, Any] = {}
    for name, typed in item.items():
        if name == _ORDER_KEY:
            continue
        if "N" in typed:
            fields[name] = int(typed["N"])
        elif "S" in typed:
            fields[name] = typed["S"]
    return DocumentStatus.model_validate(fields)


class DynamoDbStatusStore:
    def __init__(self, table: str, settings: Settings) -> None:
        self.table = table
        self._client = LazyAwsClient.from_settings("dynamodb", settings, read_timeout_s=10.0)

    async def _call(self, action: str, call: Callable[[Any], Awaitable[T]]) -> T:
        try:
            return await call(await self._client())
        except ClientError as exc:
            if error_code(exc) == "ResourceNotFoundException":
                raise ConfigurationError(f"DynamoDB table {self.table!r} does not exist") from exc
            raise TransientError(f"DynamoDB failed to {action}: {exc}") from exc
        except (BotoCoreError, OSError) as exc:
            raise TransientError(f"DynamoDB unreachable while trying to {action}: {exc}") from exc

    async def put(self, status: DocumentStatus) -> None:
        item = to_item(status)
        try:
            await self._call(
                "write a document status",
                lambda c: c.put_item(
                    TableName=self.table,
                    Item=item,
                    ConditionExpression="attribute_not_exists(#t) OR #t <= :t",
                    ExpressionAttributeNames={"#t": _ORDER_KEY},
                    ExpressionAttributeValues={":t": item[_ORDER_KEY]},
                ),
            )
        except TransientError as exc:
            if error_code(exc.__cause__ or exc) != "ConditionalCheckFailedException":
                raise
            # A newer record is already there: it wins.

    async def get(self, doc_id: str) -> DocumentStatus | None:
        response = await self._call(
            "read a document status",
            lambda c: c.get_item(
                TableName=self.table, Key={"doc_id": {"S": doc_id}}, ConsistentRead=True
            ),
        )
        item = response.get("Item")
        return from_item(item) if item else None

    async def list(self, limit: int = 1000) -> list[DocumentStatus]:
        # A scan returns items in no useful order: the newest ``limit`` are
        # only known once every page has been read.
        found: list[DocumentStatus] = []
        start_key: dict[str, Any] | None = None
        while True:
            kwargs: dict[str, Any] = {"TableName": self.table, "Limit": 1000}
            if start_key:
                kwargs["ExclusiveStartKey"] = start_key
            response = await self._scan(kwargs)
            found.extend(from_item(i) for i in response.get("Items", []))
            start_key = response.get("LastEvaluatedKey")
            if not start_key:
                break
        found.sort(key=lambda s: s.updated_at, reverse=True)
        return found[:limit]

    async def _scan(self, kwargs: dict[str, Any]) -> dict[str, Any]:
        result: dict[str, Any] = await self._call(
            "list document statuses", lambda c: c.scan(**kwargs)
        )
        return result

    async def close(self) -> None:
        await self._client.close()


def from_settings(settings: Settings) -> DynamoDbStatusStore:
    if not settings.status.table:
        raise ConfigurationError("RAG_STATUS__TABLE is required when RAG_STATUS__BACKEND=dynamodb")
    return DynamoDbStatusStore(settings.status.table, settings)
