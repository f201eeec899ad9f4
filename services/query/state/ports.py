"""The query service's state: the ports for what it remembers between frames.

The ports every part shares (vector index, embedder, chat model, connection
sink...) are in ``shared/ports.py``; the Lambda transport's own (self-invoke,
Management API sinks) in ``transports/ports.py``. These two are the query
service's state; their adapters live beside them in this package: in memory
for one process (``conversation.py``, ``registry.py``) and DynamoDB for the
Lambda's invocations (``dynamodb.py``).
"""

from __future__ import annotations

from typing import Protocol

from services.query.answer.prompts import Turn
from shared.access import Principal
from shared.protocol import ErrorCode


class ConversationStore(Protocol):
    """The last turns per conversation id (in memory; DynamoDB for Lambda)."""

    async def history(self, conversation_id: str) -> list[Turn]:
        """Oldest first; empty for an unknown id."""
        ...

    async def append(self, conversation_id: str, turn: Turn, keep_turns: int) -> None:
        """Add a turn, keeping at most the last ``keep_turns``."""
        ...


class RequestRegistry(Protocol):
    """Running requests and the caller per connection, shared by the Lambda's invocations."""

    async def start(
        self, connection_id: str, request_id: str, max_running: int
    ) -> ErrorCode | None:
        """Register a running request; return the error code if refused."""
        ...

    async def cancel(self, connection_id: str, request_id: str) -> bool:
        """Flag a running request as cancelled; False if no such request runs."""
        ...

    async def should_stop(self, connection_id: str, request_id: str) -> bool:
        """True once the request was cancelled or its connection left."""
        ...

    async def finish(self, connection_id: str, request_id: str) -> None: ...

    async def disconnect(self, connection_id: str) -> None:
        """The connection left: every request on it should stop."""
        ...

    async def remember(self, connection_id: str, principal: Principal) -> None:
        """Keep the caller the ``$connect`` authorizer vouched for."""
        ...

    async def identity(self, connection_id: str) -> Principal | None:
        """The caller remembered for this connection, if any."""
        ...

    async def claim_job(self, job_id: str) -> bool:
        """Claim a worker job once: True the first time, False for a replayed event
        (Lambda may deliver an asynchronous invocation more than once)."""
        ...
