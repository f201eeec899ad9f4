"""The ConnectionSink port on the API Gateway Management API (``post_to_connection``).

The endpoint comes from each WebSocket event's request context:
``https://{domainName}/{stage}``. One aiobotocore client is kept per endpoint
(a Lambda container usually serves one API) and reused across invocations.
A ``GoneException`` (410) means the client has left: it becomes
``ConnectionGone`` so the caller stops generating at once.
"""

from __future__ import annotations

from contextlib import AsyncExitStack
from typing import Any

from aiobotocore.config import AioConfig
from aiobotocore.session import get_session
from botocore.exceptions import BotoCoreError, ClientError

from shared.adapters.aws_client import error_code
from shared.errors import ConnectionGone, TransientError
from shared.ports import ServerEvent
from shared.protocol import encode_event
from shared.settings import Settings


def management_endpoint(domain_name: str, stage: str, override: str | None = None) -> str:
    """``override`` (``RAG_AWS__ENDPOINT_URL``) stands in for the API's domain in tests."""
    base = override.rstrip("/") if override else f"https://{domain_name}"
    return f"{base}/{stage}"


class ManagementApi:
    """aiobotocore ``apigatewaymanagementapi`` clients by endpoint, closed together."""

    def __init__(self, settings: Settings) -> None:
        self._region = settings.aws.region
        self._override = settings.aws.endpoint_url
        self._config = AioConfig(
            connect_timeout=5,
            read_timeout=10,
            retries={"max_attempts": 3, "mode": "standard"},  # retries throttling, not Gone
            max_pool_connections=64,
        )
        self._stack = AsyncExitStack()
        self._clients: dict[str, Any] = {}

    def endpoint(self, domain_name: str, stage: str) -> str:
        return management_endpoint(domain_name, stage, self._override)

    async def client(self, endpoint_url: str) -> Any:
        client = self._clients.get(endpoint_url)
        if client is None:
            creator = get_session().create_client(
                "apigatewaymanagementapi",
                region_name=self._region,
                endpoint_url=endpoint_url,
                config=self._config,
            )
            client = await self._stack.enter_async_context(creator)
            self._clients[endpoint_url] = client
        return client

    def sink(self, endpoint_url: str, connection_id: str) -> ApiGatewaySink:
        return ApiGatewaySink(self, endpoint_url, connection_id)

    async def close(self) -> None:
        self._clients.clear()
        await self._stack.aclose()
        self._stack = AsyncExitStack()


class ApiGatewaySink:
    """Posts each event as one WebSocket frame to one connection."""

    def __init__(self, api: ManagementApi, endpoint_url: str, connection_id: str) -> None:
        self._api = api
        self._endpoint_url = endpoint_url
        self.connection_id = connection_id

    async def send(self, event: ServerEvent) -> None:
        client = await self._api.client(self._endpoint_url)
        try:
            await client.post_to_connection(
                ConnectionId=self.connection_id, Data=encode_event(event).encode()
            )
        except ClientError as exc:
            if error_code(exc) == "GoneException":
                raise ConnectionGone(f"connection {self.connection_id} is gone") from exc
            raise TransientError(f"post_to_connection failed: {exc}") from exc
        except BotoCoreError as exc:
            raise TransientError(f"post_to_connection failed: {exc}") from exc


def from_settings(settings: Settings) -> ManagementApi:
    return ManagementApi(settings)
