"""Query state shared by the Lambda's invocations, in one DynamoDB table.

Table: partition key ``pk`` (S), sort key ``sk`` (S), TTL attribute
``expires_at`` (epoch seconds). Items:

    pk=conn#{connection_id}  sk=req#{request_id}  state=running|cancelled
    pk=conn#{connection_id}  sk=#gone                       ($disconnect seen)
    pk=conv#{conversation_id} sk=turns  turns=[{question, answer}…] (JSON)

Implements both RequestRegistry and ConversationStore. IAM: GetItem, PutItem,
UpdateItem, DeleteItem and Query on the table.
"""

from __future__ import annotations

import json
import time
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from services.query.prompts import Turn
from shared.adapters.aws_client import LazyAwsClient, error_code
from shared.errors import ConfigurationError, TransientError
from shared.protocol import ErrorCode
from shared.settings import Settings

# A worker never outlives Lambda's 15-minute limit; a request item older than
# this is a crashed worker's leftover and no longer counts against the limit
# (DynamoDB's TTL deletion itself may lag by hours).
REQUEST_TTL_S = 16 * 60
CONVERSATION_TTL_S = 7 * 24 * 3600
GONE = "#gone"


def _s(value: str) -> dict[str, str]:
    return {"S": value}


def _conn(connection_id: str) -> dict[str, str]:
    return _s(f"conn#{connection_id}")


def _req(request_id: str) -> dict[str, str]:
    return _s(f"req#{request_id}")


def _expires(ttl_s: int) -> dict[str, str]:
    return {"N": str(int(time.time()) + ttl_s)}


class DynamoDbState:
    def __init__(self, settings: Settings, client: LazyAwsClient | None = None) -> None:
        if not settings.query.state_table:
            raise ConfigurationError("RAG_QUERY__STATE_TABLE is required for DynamoDB state")
        self._table = settings.query.state_table
        self._client = client or LazyAwsClient("dynamodb", settings, read_timeout_s=5)

    async def _call(self, operation: str, **kwargs: Any) -> dict[str, Any]:
        client = await self._client()
        try:
            result: dict[str, Any] = await getattr(client, operation)(
                TableName=self._table, **kwargs
            )
        except ClientError as exc:
            if error_code(exc) == "ConditionalCheckFailedException":
                raise
            raise TransientError(f"DynamoDB {operation} failed: {exc}") from exc
        except BotoCoreError as exc:
            raise TransientError(f"DynamoDB {operation} failed: {exc}") from exc
        return result

    # ---- RequestRegistry ---------------------------------------------------

    async def start(
        self, connection_id: str, request_id: str, max_running: int
    ) -> ErrorCode | None:
        key = {"pk": _conn(connection_id), "sk": _req(request_id)}
        try:
            await self._call(
                "put_item",
                Item={**key, "state": _s("running"), "expires_at": _expires(REQUEST_TTL_S)},
                ConditionExpression="attribute_not_exists(pk)",
            )
        except ClientError:
            return ErrorCode.DUPLICATE_REQUEST
        # Count after writing, so two racing asks can't both slip under the limit.
        if len(await self._requests(connection_id)) > max_running:
            await self._call("delete_item", Key=key)
            return ErrorCode.TOO_MANY_REQUESTS
        return None

    async def _partition(self, connection_id: str) -> list[dict[str, Any]]:
        result = await self._call(
            "query",
            KeyConditionExpression="pk = :pk",
            ExpressionAttributeValues={":pk": _conn(connection_id)},
            ConsistentRead=True,
        )
        items: list[dict[str, Any]] = result.get("Items", [])
        return items

    async def _requests(self, connection_id: str) -> list[dict[str, Any]]:
        now = time.time()
        return [
            item
            for item in await self._partition(connection_id)
            if item["sk"]["S"].startswith("req#") and float(item["expires_at"]["N"]) > now
        ]

    async def cancel(self, connection_id: str, request_id: str) -> bool:
        try:
            await self._call(
                "update_item",
                Key={"pk": _conn(connection_id), "sk": _req(request_id)},
                UpdateExpression="SET #state = :cancelled",
                ConditionExpression="attribute_exists(pk)",
                ExpressionAttributeNames={"#state": "state"},
                ExpressionAttributeValues={":cancelled": _s("cancelled")},
            )
        except ClientError:
            return False
        return True

    async def should_stop(self, connection_id: str, request_id: str) -> bool:
        for item in await self._partition(connection_id):
            sk = item["sk"]["S"]
            if sk == GONE:
                return True
            if sk == f"req#{request_id}" and item.get("state", {}).get("S") == "cancelled":
                return True
        return False

    async def finish(self, connection_id: str, request_id: str) -> None:
        await self._call("delete_item", Key={"pk": _conn(connection_id), "sk": _req(request_id)})

    async def disconnect(self, connection_id: str) -> None:
        await self._call(
            "put_item",
            Item={
                "pk": _conn(connection_id),
                "sk": _s(GONE),
                "expires_at": _expires(REQUEST_TTL_S),
            },
        )

    # ---- ConversationStore -------------------------------------------------

    async def history(self, conversation_id: str) -> list[Turn]:
        result = await self._call(
            "get_item", Key={"pk": _s(f"conv#{conversation_id}"), "sk": _s("turns")}
        )
        item = result.get("Item")
        if not item:
            return []
        return [Turn(**turn) for turn in json.loads(item["turns"]["S"])]

    async def append(self, conversation_id: str, turn: Turn, keep_turns: int) -> None:
        turns = (await self.history(conversation_id)) + [turn]
        kept = turns[-keep_turns:] if keep_turns > 0 else []
        payload = json.dumps([{"question": t.question, "answer": t.answer} for t in kept])
        await self._call(
            "put_item",
            Item={
                "pk": _s(f"conv#{conversation_id}"),
                "sk": _s("turns"),
                "turns": _s(payload),
                "expires_at": _expires(CONVERSATION_TTL_S),
            },
        )

    async def close(self) -> None:
        await self._client.close()
