"""The embedded StatusStore: one row per document in the index's SQLite file."""

from __future__ import annotations

from pathlib import Path

import apsw

from shared.adapters.sqlite_common import INDEX_DB, SqliteWorker, rows, write_transaction
from shared.documents import DocumentStatus
from shared.settings import Settings

SCHEMA = """
CREATE TABLE IF NOT EXISTS doc_status (
    doc_id TEXT PRIMARY KEY,
    state TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    status_json TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS doc_status_updated ON doc_status (updated_at);
"""


class SqliteStatusStore:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._db = SqliteWorker(path, schema=SCHEMA, name="sqlite-status")

    async def put(self, status: DocumentStatus) -> None:
        def _put(conn: apsw.Connection) -> None:
            with write_transaction(conn):
                if (
                    stored := _stored(conn, status.doc_id)
                ) and stored.updated_at > status.updated_at:
                    return  # a slow, older write arriving last: the newer record wins
                conn.execute(
                    "INSERT INTO doc_status (doc_id, state, updated_at, status_json) "
                    "VALUES (?, ?, ?, ?) ON CONFLICT (doc_id) DO UPDATE SET "
                    "state = excluded.state, updated_at = excluded.updated_at, "
                    "status_json = excluded.status_json",
                    (
                        status.doc_id,
                        status.state.value,
                        status.updated_at.isoformat(),
                        status.model_dump_json(),
                    ),
                )

        await self._db.run(_put)

    async def get(self, doc_id: str) -> DocumentStatus | None:
        def _get(conn: apsw.Connection) -> DocumentStatus | None:
            return _stored(conn, doc_id)

        return await self._db.run(_get)

    async def list(self, limit: int = 1000) -> list[DocumentStatus]:
        def _list(conn: apsw.Connection) -> list[DocumentStatus]:
            # Newest first, as the port says (ISO strings in the column vary in
            # their fraction digits, so the order is taken on parsed times).
            found = rows(conn, "SELECT status_json FROM doc_status")
            statuses = [DocumentStatus.model_validate_json(r[0]) for r in found]
            statuses.sort(key=lambda s: s.updated_at, reverse=True)
            return statuses[:limit]

        return await self._db.run(_list)

    async def remove(self, doc_id: str) -> None:
        """Forget a document entirely (the page's delete after the chunks are gone)."""

        def _remove(conn: apsw.Connection) -> None:
            with write_transaction(conn):
                conn.execute("DELETE FROM doc_status WHERE doc_id = ?", (doc_id,))

        await self._db.run(_remove)

    async def close(self) -> None:
        await self._db.close()


def _stored(conn: apsw.Connection, doc_id: str) -> DocumentStatus | None:
    found = rows(conn, "SELECT status_json FROM doc_status WHERE doc_id = ?", (doc_id,))
    return DocumentStatus.model_validate_json(found[0][0]) if found else None


def from_settings(settings: Settings) -> SqliteStatusStore:
    return SqliteStatusStore(Path(settings.data_dir) / INDEX_DB)
