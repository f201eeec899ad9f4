"""Asynchronous self-invocation: the ``$default`` invocation hands the answer
to a worker invocation of the same function (``InvocationType=Event``), so
answers may outlive API Gateway's 29-second integration timeout."""

from __future__ import annotations

import json
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from shared.adapters.aws.client import LazyAwsClient
from shared.errors import TransientError
from shared.settings import Settings


class LambdaInvoker:
    def __init__(self, settings: Settings) -> None:
        self._client = LazyAwsClient.from_settings("lambda", settings, read_timeout_s=10)

    async def invoke_async(self, function_name: str, payload: dict[str, Any]) -> None:
        client = await self._client()
        try:
            await client.invoke(
                FunctionName=function_name,
                InvocationType="Event",
                Payload=json.dumps(payload).encode(),
            )
        except (ClientError, BotoCoreError) as exc:
            raise TransientError(f"could not start the answer worker: {exc}") from exc

    async def close(self) -> None:
        await self._client.close()
