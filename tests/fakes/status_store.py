"""An in-memory StatusStore for logic tests (passes the StatusStore contract,
with the same version and lease rules as the real stores)."""

from __future__ import annotations

import time
from datetime import UTC, datetime

from shared.documents import DocumentStatus, version_conflict
from shared.errors import LeaseLost, StaleVersion


class FakeStatusStore:
    def __init__(self) -> None:
        self.records: dict[str, DocumentStatus] = {}
        self.history: list[DocumentStatus] = []
        self.leases: dict[str, tuple[str, float]] = {}

    async def put(self, status: DocumentStatus, fence: str | None = None) -> None:
        if fence is not None and self.leases.get(status.doc_id, ("", 0.0))[0] != fence:
            raise LeaseLost(f"{status.doc_id}: the lease is another worker's now")
        stored = self.records.get(status.doc_id)
        if status.doc_version is not None:
            if version_conflict(stored, status, datetime.now(UTC)):
                raise StaleVersion(f"{status.doc_id}: a newer version is stored")
        elif stored is not None and stored.updated_at > status.updated_at:
            return  # as the real stores: an older write never replaces a newer record
        self.records[status.doc_id] = status
        self.history.append(status)

    async def get(self, doc_id: str) -> DocumentStatus | None:
        return self.records.get(doc_id)

    async def list(self, limit: int = 1000) -> list[DocumentStatus]:
        return sorted(self.records.values(), key=lambda s: s.updated_at, reverse=True)[:limit]

    async def acquire_lease(self, doc_id: str, owner: str, ttl_s: float) -> bool:
        now = time.time()
        held = self.leases.get(doc_id)
        if held is not None and held[0] != owner and held[1] > now:
            return False
        self.leases[doc_id] = (owner, now + ttl_s)
        return True

    async def renew_lease(self, doc_id: str, owner: str, ttl_s: float) -> bool:
        if self.leases.get(doc_id, ("", 0.0))[0] != owner:
            return False
        self.leases[doc_id] = (owner, time.time() + ttl_s)
        return True

    async def release_lease(self, doc_id: str, owner: str) -> None:
        if self.leases.get(doc_id, ("", 0.0))[0] == owner:
            del self.leases[doc_id]
