"""One lazily created aiobotocore client per adapter, closed idempotently.

Adapters are built at start-up (a Lambda cold start, the poller's main), but
the client is only created on first use so that building an adapter never
touches the network or the credential chain.
"""

from __future__ import annotations

import asyncio
from contextlib import AsyncExitStack
from typing import Any

from aiobotocore.config import AioConfig
from aiobotocore.session import get_session

from shared.settings import Settings


def error_code(exc: BaseException) -> str:
    """The AWS error code of a botocore ClientError (``""`` for other errors)."""
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        return str(response.get("Error", {}).get("Code", ""))
    return ""


def http_status(exc: BaseException) -> int | None:
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        status = response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        return int(status) if status is not None else None
    return None


class LazyAwsClient:
    """``await client()`` returns the (shared) aiobotocore client for one service."""

    def __init__(
        self,
        service: str,
        settings: Settings,
        *,
        read_timeout_s: float = 60.0,
        max_pool_connections: int = 32,
    ) -> None:
        self._service = service
        self._region = settings.aws.region
        self._endpoint_url = settings.aws.endpoint_url
        self._config = AioConfig(
            connect_timeout=5,
            read_timeout=read_timeout_s,
            retries={"max_attempts": 3, "mode": "standard"},
            max_pool_connections=max_pool_connections,
        )
        self._stack: AsyncExitStack | None = None
        self._client: Any = None
        self._lock: asyncio.Lock | None = None

    async def __call__(self) -> Any:
        if self._client is not None:
            return self._client
        if self._lock is None:
            self._lock = asyncio.Lock()
        async with self._lock:
            if self._client is None:
                stack = AsyncExitStack()
                creator = get_session().create_client(
                    self._service,
                    region_name=self._region,
                    endpoint_url=self._endpoint_url,
                    config=self._config,
                )
                self._client = await stack.enter_async_context(creator)
                self._stack = stack
        return self._client

    async def close(self) -> None:
        stack, self._stack, self._client = self._stack, None, None
        if stack is not None:
            await stack.aclose()
