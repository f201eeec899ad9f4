"""An in-memory StatusStore for logic tests (passes the StatusStore contract)."""

from __future__ import annotations

from shared.documents import DocumentStatus


class FakeStatusStore:
    def __init__(self) -> None:
        self.records: dict[str, DocumentStatus] = {}
        self.history: list[DocumentStatus] = []

    async def put(self, status: DocumentStatus) -> None:
        stored = self.records.get(status.doc_id)
        if stored is not None and stored.updated_at > status.updated_at:
            return  # as the real stores: an older write never replaces a newer record
        self.records[status.doc_id] = status
        self.history.append(status)

    async def get(self, doc_id: str) -> DocumentStatus | None:
        return self.records.get(doc_id)

    async def list(self, limit: int = 1000) -> list[DocumentStatus]:
        return sorted(self.records.values(), key=lambda s: s.updated_at, reverse=True)[:limit]
