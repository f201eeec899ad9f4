"""StatusStore on a DynamoDB table (hash key ``doc_id``, a string).

Why DynamoDB rather than a status index in the OpenSearch collection: a
status record is read and written by doc id, and must be right immediately
(an operator asking "why is my document missing?" right after a failure).
DynamoDB gives strongly consistent point reads and conditional writes by key;
an AOSS index offers neither (no client-chosen ``_id``, writes searchable
only after a delay), so "upsert by doc id" would need search-then-write races.
On-demand billing makes the table free at rest.

Writes of records that carry a producer ``doc_version`` are conditional on
it (a newer stored version, or an unexpired tombstone, raises StaleVersion);
other writes are conditional on ``updated_at`` so that a slow, older delivery
can't overwrite a newer record. Leases are items of their own in the same
table, keyed ``LEASE_PREFIX + doc_id`` (doc ids can't contain control
characters, so the keys never collide), written with conditional puts.
Tombstones carry ``ttl_epoch`` (enable the table's TTL on it to let
DynamoDB remove expired ones).
"""

from __future__ import annotations

import json
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from botocore.exceptions import BotoCoreError, ClientError

from shared.adapters.aws.client import LazyAwsClient, error_code
from shared.documents import DocumentStatus
from shared.errors import ConfigurationError, LeaseLost, StaleVersion, TransientError
from shared.settings import Settings

T = TypeVar("T")
_INT_FIELDS = {"chunk_count", "doc_version"}
_JSON_FIELDS = {"groups"}  # lists, stored as JSON strings
_ORDER_KEY = "updated_us"
_TTL_KEY = "ttl_epoch"
_DERIVED = {_ORDER_KEY, _TTL_KEY}
# Control characters are not allowed in doc ids (shared.ingest.DocId).
LEASE_PREFIX = "\x1flease\x1f"

Item = dict[str, dict[str, Any]]


def to_item(status: DocumentStatus) -> Item:
    """A status as a DynamoDB item; absent (None) fields are left out."""
    item: Item = {}
    for name, value in status.model_dump(mode="json").items():
        if value is None:
            continue
        if name in _JSON_FIELDS:
            item[name] = {"S": json.dumps(value)}
        elif isinstance(value, bool):
            item[name] = {"BOOL": value}
        elif name in _INT_FIELDS:
            item[name] = {"N": str(value)}
        else:
            item[name] = {"S": str(value)}
    # A number for the ordering condition (ISO strings vary in their fraction digits).
    item[_ORDER_KEY] = {"N": str(int(status.updated_at.timestamp() * 1_000_000))}
    if status.expires_at is not None:
        item[_TTL_KEY] = {"N": str(int(status.expires_at.timestamp()))}
    return item


def from_item(item: Item) -> DocumentStatus:
    fields: dict[str, Any] = {}
    for name, typed in item.items():
        if name in _DERIVED:
            continue
        if "N" in typed:
            fields[name] = int(typed["N"])
        elif "S" in typed:
            fields[name] = json.loads(typed["S"]) if name in _JSON_FIELDS else typed["S"]
        elif "BOOL" in typed:
            fields[name] = bool(typed["BOOL"])
    return DocumentStatus.model_validate(fields)


def put_condition(item: Item) -> dict[str, Any]:
    """The write condition for one status item (pure, so it is unit-tested)."""
    if "doc_version" in item:
        return {
            "ConditionExpression": (
                "attribute_not_exists(#v) OR #v <= :v OR (attribute_exists(#x) AND #x <= :now)"
            ),
            "ExpressionAttributeNames": {"#v": "doc_version", "#x": _TTL_KEY},
            "ExpressionAttributeValues": {
                ":v": item["doc_version"],
                ":now": {"N": str(int(time.time()))},
            },
        }
    return {
        "ConditionExpression": "attribute_not_exists(#t) OR #t <= :t",
        "ExpressionAttributeNames": {"#t": _ORDER_KEY},
        "ExpressionAttributeValues": {":t": item[_ORDER_KEY]},
    }


def lease_check(table: str, doc_id: str, owner: str) -> dict[str, Any]:
    """The transaction's check that ``owner`` still holds the document's lease."""
    return {
        "TableName": table,
        "Key": {"doc_id": {"S": LEASE_PREFIX + doc_id}},
        "ConditionExpression": "#o = :o",
        "ExpressionAttributeNames": {"#o": "owner"},
        "ExpressionAttributeValues": {":o": {"S": owner}},
    }


def cancellation_reasons(exc: BaseException) -> list[str]:
    """Per item of a cancelled transaction: "ConditionalCheckFailed", "None", ..."""
    response = getattr(exc, "response", {}) or {}
    reasons = response.get("CancellationReasons")
    if reasons:
        return [str(r.get("Code", "None")) for r in reasons]
    # Some servers only say it in the message: "... reasons [ConditionalCheckFailed, None]".
    message = str(response.get("Error", {}).get("Message", exc))
    if "[" in message:
        return [r.strip() for r in message.rsplit("[", 1)[1].rstrip("]").split(",")]
    return []


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

    async def put(self, status: DocumentStatus, fence: str | None = None) -> None:
        item = to_item(status)
        condition = put_condition(item)
        try:
            if fence is None:
                await self._call(
                    "write a document status",
                    lambda c: c.put_item(TableName=self.table, Item=item, **condition),
                )
            else:
                put = {"TableName": self.table, "Item": item, **condition}
                check = lease_check(self.table, status.doc_id, fence)
                await self._call(
                    "write a document status under its lease",
                    lambda c: c.transact_write_items(
                        TransactItems=[{"ConditionCheck": check}, {"Put": put}]
                    ),
                )
        except TransientError as exc:
            code = error_code(exc.__cause__ or exc)
            if code == "TransactionCanceledException":
                reasons = cancellation_reasons(exc.__cause__ or exc)
                if reasons[:1] == ["ConditionalCheckFailed"]:
                    raise LeaseLost(
                        f"{status.doc_id}: the lease is another worker's now; record not written"
                    ) from exc
                if reasons[1:2] != ["ConditionalCheckFailed"]:
                    raise
                code = "ConditionalCheckFailedException"
            if code != "ConditionalCheckFailedException":
                raise
            if status.doc_version is not None:
                raise StaleVersion(
                    f"{status.doc_id}: a version newer than {status.doc_version} is stored"
                ) from exc
            # A newer record is already there: it wins.

    async def acquire_lease(self, doc_id: str, owner: str, ttl_s: float) -> bool:
        now_ms = int(time.time() * 1000)
        return await self._put_lease(
            doc_id,
            owner,
            ttl_s,
            now_ms,
            condition="attribute_not_exists(#o) OR #o = :o OR #e < :now",
            names={"#o": "owner", "#e": "expires_ms"},
            values={":o": {"S": owner}, ":now": {"N": str(now_ms)}},
        )

    async def renew_lease(self, doc_id: str, owner: str, ttl_s: float) -> bool:
        return await self._put_lease(
            doc_id,
            owner,
            ttl_s,
            int(time.time() * 1000),
            condition="#o = :o",
            names={"#o": "owner"},
            values={":o": {"S": owner}},
        )

    async def _put_lease(
        self,
        doc_id: str,
        owner: str,
        ttl_s: float,
        now_ms: int,
        *,
        condition: str,
        names: dict[str, str],
        values: dict[str, Any],
    ) -> bool:
        """The lease item, put if ``condition`` holds; False when it does not
        (DynamoDB refuses names and values a condition does not use, so each
        caller passes exactly its own)."""
        try:
            await self._call(
                "take a document lease",
                lambda c: c.put_item(
                    TableName=self.table,
                    Item={
                        "doc_id": {"S": LEASE_PREFIX + doc_id},
                        "owner": {"S": owner},
                        "expires_ms": {"N": str(now_ms + int(ttl_s * 1000))},
                        _TTL_KEY: {"N": str(now_ms // 1000 + int(ttl_s) + 3600)},
                    },
                    ConditionExpression=condition,
                    ExpressionAttributeNames=names,
                    ExpressionAttributeValues=values,
                ),
            )
        except TransientError as exc:
            if error_code(exc.__cause__ or exc) == "ConditionalCheckFailedException":
                return False
            raise
        return True

    async def release_lease(self, doc_id: str, owner: str) -> None:
        try:
            await self._call(
                "release a document lease",
                lambda c: c.delete_item(
                    TableName=self.table,
                    Key={"doc_id": {"S": LEASE_PREFIX + doc_id}},
                    ConditionExpression="#o = :o",
                    ExpressionAttributeNames={"#o": "owner"},
                    ExpressionAttributeValues={":o": {"S": owner}},
                ),
            )
        except TransientError as exc:
            if error_code(exc.__cause__ or exc) != "ConditionalCheckFailedException":
                raise
            # Expired and taken by another worker meanwhile: theirs now.

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
            found.extend(
                from_item(i)
                for i in response.get("Items", [])
                if not i["doc_id"]["S"].startswith(LEASE_PREFIX)
            )
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
