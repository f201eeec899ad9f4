"""ConnectionSinks (a query port) on the API Gateway Management API (``post_to_connection``).

The endpoint comes from each WebSocket event's request context:
``https://{domainName}/{stage}``. One aiobotocore client is kept per endpoint
(a Lambda container usually serves one API) and reused across invocations.
A ``GoneException`` (410) means the client has left: it becomes
``ConnectionGone`` so the caller stops generating at once.
"""

from __future__ import annotations

from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from shared.adapters.aws.client import LazyAwsClient, client_config, error_code
from shared.errors import ConnectionGone, TransientError
from shared.ports import ServerEvent
from shared.protocol import encode_event
from shared.settings import Settings


def management_endpoint(domain_name: str, stage: str, override: str | None = None) -> str:
    """``override`` (``RAG_AWS__ENDPOINT_URL``) stands in for the API's domain in tests."""
    base = override.rstrip("/") if override else f"https://{domain_name}"
    return f"{base}/{stage}"


class ManagementApi:
    """``apigatewaymanagementapi`` clients by endpoint, closed together."""

    def __init__(self, settings: Settings) -> None:
        self._region = settings.aws.region
        self._override = settings.aws.endpoint_url
        # Standard retries cover throttling, not Gone; many answers post at once.
        self._config = client_config(read_timeout_s=10, max_pool_connections=64)
        self._clients: dict[str, LazyAwsClient] = {}

    def endpoint(self, domain_name: str, stage: str) -> str:
        return management_endpoint(domain_name, stage, self._override)

    async def client(self, endpoint_url: str) -> Any:
        client = self._clients.get(endpoint_url)
        if client is None:
            client = LazyAwsClient(
                "apigatewaymanagementapi",
                region=self._region,
                endpoint_url=endpoint_url,
                config=self._config,
            )
            self._clients[endpoint_url] = client
        return await client()

    def sink(self, endpoint_url: str, connection_id: str) -> ApiGatewaySink:
        return ApiGatewaySink(self, endpoint_url, connection_id)

    async def close(self) -> None:
        clients, self._clients = list(self._clients.values()), {}
        for client in clients:
            await client.close()


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
