"""Query state shared by the Lambda's invocations, in one DynamoDB table.

Table: partition key ``pk`` (S), sort key ``sk`` (S), TTL attribute
``expires_at`` (epoch seconds). Items:

    pk=conn#{connection_id}  sk=#conn  running={request_id: expiry}, cancelled={ids},
                                       gone=true once $disconnect was seen
    pk=conv#{conversation key} sk=turns  turns=[{question, answer, doc_ids}…] (JSON)
    pk=conn#{connection_id}  sk=#who   principal, groups: the caller as the $connect
                                       authorizer described it
    pk=job#{job_id}           sk=#claim  written once by the worker that streams the answer

Implements both RequestRegistry and ConversationStore. IAM: GetItem, PutItem,
UpdateItem, DeleteItem on the table.
"""

from __future__ import annotations

import json
import time
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from services.query.answer.prompts import Turn
from shared.access import Principal
from shared.adapters.aws.client import LazyAwsClient, error_code
from shared.errors import ConfigurationError, TransientError
from shared.protocol import ErrorCode
from shared.settings import Settings

# A worker never outlives Lambda's 15-minute limit; a running entry older than
# this is a crashed worker's leftover and no longer counts against the limit
# (DynamoDB's TTL deletion itself may lag by hours).
REQUEST_TTL_S = 16 * 60
CONVERSATION_TTL_S = 7 * 24 * 3600
# Longer than Lambda keeps an asynchronous event for a retry (6 hours at most).
CLAIM_TTL_S = 7 * 3600
CONNECTION = "#conn"
IDENTITY = "#who"
# API Gateway closes a WebSocket connection after two hours at most.
IDENTITY_TTL_S = 3 * 3600


def _s(value: str) -> dict[str, str]:
    return {"S": value}


def _conn(connection_id: str) -> dict[str, str]:
    return _s(f"conn#{connection_id}")


def _conv_key(conversation_id: str) -> dict[str, Any]:
    return {"pk": _s(f"conv#{conversation_id}"), "sk": _s("turns")}


def _expires(ttl_s: int) -> dict[str, str]:
    return {"N": str(int(time.time()) + ttl_s)}


class DynamoDbState:
    def __init__(self, settings: Settings, client: LazyAwsClient | None = None) -> None:
        if not settings.query.state_table:
            raise ConfigurationError("RAG_QUERY__STATE_TABLE is required for DynamoDB state")
        self._table = settings.query.state_table
        self._client = client or LazyAwsClient.from_settings("dynamodb", settings, read_timeout_s=5)

    async def _call(self, operation: str, **kwargs: Any) -> dict[str, Any]:
        client = await self._client()
        try:
            result: dict[str, Any] = await getattr(client, operation)(
                TableName=self._table, **kwargs
            )
        except (ClientError, BotoCoreError) as exc:
            if error_code(exc) == "ConditionalCheckFailedException":
                raise  # the callers' conditional updates read this as "refused"
            raise TransientError(f"DynamoDB {operation} failed: {exc}") from exc
        return result

    # ---- RequestRegistry ---------------------------------------------------
    # One item per connection holds its running requests (a map request id ->
    # expiry), the cancelled ids and the gone flag, so that every check is one
    # atomic conditional update or one consistent read (no Query needed).

    def _conn_key(self, connection_id: str) -> dict[str, Any]:
        return {"pk": _conn(connection_id), "sk": _s(CONNECTION)}

    async def _connection(self, connection_id: str) -> dict[str, Any]:
        result = await self._call(
            "get_item", Key=self._conn_key(connection_id), ConsistentRead=True
        )
        item: dict[str, Any] = result.get("Item", {})
        return item

    async def start(
        self, connection_id: str, request_id: str, max_running: int
    ) -> ErrorCode | None:
        key = self._conn_key(connection_id)
        await self._call(
            "update_item",
            Key=key,
            UpdateExpression="SET running = if_not_exists(running, :empty), expires_at = :exp",
            ExpressionAttributeValues={":empty": {"M": {}}, ":exp": _expires(REQUEST_TTL_S)},
        )
        if await self._claim(key, request_id, max_running):
            return None
        running = (await self._connection(connection_id)).get("running", {}).get("M", {})
        now = time.time()
        expired = [rid for rid, exp in running.items() if float(exp["N"]) <= now]
        if request_id in running and request_id not in expired:
            return ErrorCode.DUPLICATE_REQUEST
        if not expired:
            return ErrorCode.TOO_MANY_REQUESTS
        # Leftovers of crashed workers (older than any Lambda can run) no longer count.
        names = {f"#e{i}": rid for i, rid in enumerate(expired)}
        await self._call(
            "update_item",
            Key=key,
            UpdateExpression="REMOVE " + ", ".join(f"running.{name}" for name in names),
            ExpressionAttributeNames=names,
        )
        if await self._claim(key, request_id, max_running):
            return None
        return ErrorCode.TOO_MANY_REQUESTS

    async def _claim(self, key: dict[str, Any], request_id: str, max_running: int) -> bool:
        try:
            await self._call(
                "update_item",
                Key=key,
                UpdateExpression="SET running.#rid = :exp",
                ConditionExpression="attribute_not_exists(running.#rid) AND size(running) < :max",
                ExpressionAttributeNames={"#rid": request_id},
                ExpressionAttributeValues={
                    ":exp": _expires(REQUEST_TTL_S),
                    ":max": {"N": str(max_running)},
                },
            )
        except ClientError:
            return False
        return True

    async def cancel(self, connection_id: str, request_id: str) -> bool:
        try:
            await self._call(
                "update_item",
                Key=self._conn_key(connection_id),
                UpdateExpression="ADD cancelled :ids",
                ConditionExpression="attribute_exists(running.#rid)",
                ExpressionAttributeNames={"#rid": request_id},
                ExpressionAttributeValues={":ids": {"SS": [request_id]}},
            )
        except ClientError:
            return False
        return True

    async def should_stop(self, connection_id: str, request_id: str) -> bool:
        item = await self._connection(connection_id)
        if item.get("gone", {}).get("BOOL"):
            return True
        return request_id in item.get("cancelled", {}).get("SS", [])

    async def finish(self, connection_id: str, request_id: str) -> None:
        await self._call(
            "update_item",
            Key=self._conn_key(connection_id),
            UpdateExpression="REMOVE running.#rid DELETE cancelled :ids",
            ExpressionAttributeNames={"#rid": request_id},
            ExpressionAttributeValues={":ids": {"SS": [request_id]}},
        )

    async def disconnect(self, connection_id: str) -> None:
        await self._call(
            "update_item",
            Key=self._conn_key(connection_id),
            UpdateExpression="SET gone = :true, expires_at = :exp",
            ExpressionAttributeValues={":true": {"BOOL": True}, ":exp": _expires(REQUEST_TTL_S)},
        )
        # The caller is forgotten with the connection, as the in-memory registry
        # does (the contract suite found the difference): nothing may read it later.
        await self._call("delete_item", Key={"pk": _conn(connection_id), "sk": _s(IDENTITY)})

    async def remember(self, connection_id: str, principal: Principal) -> None:
        await self._call(
            "put_item",
            Item={
                "pk": _conn(connection_id),
                "sk": _s(IDENTITY),
                "principal": _s(principal.id),
                "groups": _s(json.dumps(sorted(principal.groups))),
                "admin": {"BOOL": principal.admin},
                "expires_at": _expires(IDENTITY_TTL_S),
            },
        )

    async def identity(self, connection_id: str) -> Principal | None:
        result = await self._call(
            "get_item", Key={"pk": _conn(connection_id), "sk": _s(IDENTITY)}, ConsistentRead=True
        )
        item = result.get("Item")
        if not item:
            return None
        return Principal(
            id=item["principal"]["S"],
            groups=frozenset(json.loads(item["groups"]["S"])),
            admin=bool(item.get("admin", {}).get("BOOL", False)),
        )

    async def claim_job(self, job_id: str) -> bool:
        """A conditional put: only the first worker for a job writes it. The
        item outlives any replay (Lambda keeps a retried event at most 6 h,
        the stack sets 60 s; TTL deletion only ever comes later than expiry)."""
        try:
            await self._call(
                "put_item",
                Item={
                    "pk": _s(f"job#{job_id}"),
                    "sk": _s("#claim"),
                    "expires_at": _expires(CLAIM_TTL_S),
                },
                ConditionExpression="attribute_not_exists(pk)",
            )
        except ClientError:
            return False
        return True

    # ---- ConversationStore -------------------------------------------------

    async def history(self, conversation_id: str) -> list[Turn]:
        result = await self._call("get_item", Key=_conv_key(conversation_id))
        item = result.get("Item")
        if not item:
            return []
        return [
            Turn(turn["question"], turn["answer"], tuple(turn.get("doc_ids", ())))
            for turn in json.loads(item["turns"]["S"])
        ]

    async def append(self, conversation_id: str, turn: Turn, keep_turns: int) -> None:
        turns = (await self.history(conversation_id)) + [turn]
        kept = turns[-keep_turns:] if keep_turns > 0 else []
        payload = json.dumps(
            [{"question": t.question, "answer": t.answer, "doc_ids": t.doc_ids} for t in kept]
        )
        await self._call(
            "put_item",
            Item={
                **_conv_key(conversation_id),
                "turns": _s(payload),
                "expires_at": _expires(CONVERSATION_TTL_S),
            },
        )

    async def close(self) -> None:
        await self._client.close()
