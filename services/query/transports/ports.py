"""The Lambda transport's own ports: what only the deployed WebSocket API needs.

Their adapters live beside them: ``apigw.py`` (API Gateway's Management API)
and ``lambda_invoker.py`` (asynchronous self-invocation).
"""

from __future__ import annotations

from typing import Any, Protocol

from shared.ports import ConnectionSink


class Invoker(Protocol):
    """Start another invocation of a function without waiting for it."""

    async def invoke_async(self, function_name: str, payload: dict[str, Any]) -> None: ...


class ConnectionSinks(Protocol):
    """Sinks for the connections of a deployed WebSocket API (API Gateway's
    Management API), one client per endpoint."""

    def endpoint(self, domain_name: str, stage: str) -> str:
        """The Management API endpoint of the API a request came through."""
        ...

    def sink(self, endpoint_url: str, connection_id: str) -> ConnectionSink: ...

    async def close(self) -> None: ...
