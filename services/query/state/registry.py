"""Running requests per connection: duplicate ids, the concurrency limit,
cancel flags and departed connections.

In the local server a ConnectionSession keeps this in memory. In Lambda the
``ask``, the worker that streams its answer and a later ``cancel`` or
``$disconnect`` are separate invocations (often separate containers), so the
registry must be shared state: ``DynamoDbState`` (``dynamodb.py``) when
``RAG_QUERY__STATE_TABLE`` is set. ``InMemoryRegistry`` only works within one
container. The port, ``RequestRegistry``, is in ``ports.py``.
"""

from __future__ import annotations

from shared.access import Principal
from shared.protocol import ErrorCode


class InMemoryRegistry:
    def __init__(self) -> None:
        self._running: dict[str, dict[str, bool]] = {}  # connection -> request -> cancelled
        self._gone: set[str] = set()
        self._claimed: set[str] = set()
        self._who: dict[str, Principal] = {}

    async def remember(self, connection_id: str, principal: Principal) -> None:
        self._who[connection_id] = principal

    async def identity(self, connection_id: str) -> Principal | None:
        return self._who.get(connection_id)

    async def start(
        self, connection_id: str, request_id: str, max_running: int
    ) -> ErrorCode | None:
        running = self._running.setdefault(connection_id, {})
        if request_id in running:
            return ErrorCode.DUPLICATE_REQUEST
        if len(running) >= max_running:
            return ErrorCode.TOO_MANY_REQUESTS
        running[request_id] = False
        return None

    async def cancel(self, connection_id: str, request_id: str) -> bool:
        running = self._running.get(connection_id, {})
        if request_id not in running:
            return False
        running[request_id] = True
        return True

    async def should_stop(self, connection_id: str, request_id: str) -> bool:
        if connection_id in self._gone:
            return True
        return self._running.get(connection_id, {}).get(request_id, False)

    async def finish(self, connection_id: str, request_id: str) -> None:
        running = self._running.get(connection_id, {})
        running.pop(request_id, None)
        if not running:
            self._running.pop(connection_id, None)
            self._gone.discard(connection_id)

    async def disconnect(self, connection_id: str) -> None:
        self._who.pop(connection_id, None)
        if connection_id in self._running:
            self._gone.add(connection_id)

    async def claim_job(self, job_id: str) -> bool:
        if job_id in self._claimed:
            return False
        self._claimed.add(job_id)
        return True
