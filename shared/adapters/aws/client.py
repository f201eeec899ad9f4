"""One lazily created aiobotocore client per adapter, closed idempotently
(every AWS adapter uses this one helper).

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
from botocore.config import Config

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


def client_config(read_timeout_s: float = 60.0, max_pool_connections: int = 32) -> Config:
    """Short connect timeout; botocore's standard retries (throttling, 5xx)."""
    return AioConfig(
        connect_timeout=5,
        read_timeout=read_timeout_s,
        retries={"max_attempts": 3, "mode": "standard"},
        max_pool_connections=max_pool_connections,
    )


class LazyAwsClient:
    """``await client()`` returns the aiobotocore client for one service.

    Created on first use in the running event loop, and created again if a
    later call runs in another loop (a caller that runs ``asyncio.run`` per
    invocation), since an aiobotocore client is bound to the loop it was
    made in. ``close`` is idempotent.
    """

    def __init__(
        self,
        service: str,
        *,
        region: str,
        endpoint_url: str | None = None,
        config: Config | None = None,
    ) -> None:
        self._service = service
        self._region = region
        self._endpoint_url = endpoint_url
        self._config = config or client_config()
        self._stack: AsyncExitStack | None = None
        self._client: Any = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._lock: asyncio.Lock | None = None

    @classmethod
    def from_settings(
        cls,
        service: str,
        settings: Settings,
        *,
        read_timeout_s: float = 60.0,
        max_pool_connections: int = 32,
    ) -> LazyAwsClient:
        """A client for the settings' region and ``RAG_AWS__ENDPOINT_URL`` (a
        local look-alike of S3, SQS, DynamoDB... in tests and local runs)."""
        return cls(
            service,
            region=settings.aws.region,
            endpoint_url=settings.aws.endpoint_url,
            config=client_config(read_timeout_s, max_pool_connections),
        )

    async def __call__(self) -> Any:
        loop = asyncio.get_running_loop()
        if self._client is not None and self._loop is loop:
            return self._client
        if self._loop is not loop:  # a client of another (finished) loop can't be used
            self._lock, self._client, self._stack, self._loop = asyncio.Lock(), None, None, loop
        assert self._lock is not None
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
        if stack is not None and self._loop is asyncio.get_running_loop():
            await stack.aclose()
