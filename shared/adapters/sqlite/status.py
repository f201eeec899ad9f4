"""The embedded StatusStore: one row per document in the index's SQLite file.

Conditional writes (newer ``doc_version`` wins) and leases are checked and
written inside one ``BEGIN IMMEDIATE`` transaction, so they are atomic across
the processes sharing the data folder.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path

import apsw

from shared.adapters.sqlite.common import INDEX_DB, SqliteWorker, rows, write_transaction
from shared.documents import DocumentStatus, version_conflict
from shared.errors import LeaseLost, StaleVersion
from shared.settings import Settings

SCHEMA = """
CREATE TABLE IF NOT EXISTS doc_status (
    doc_id TEXT PRIMARY KEY,
    state TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    status_json TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS doc_status_updated ON doc_status (updated_at);
CREATE TABLE IF NOT EXISTS doc_lease (
    doc_id TEXT PRIMARY KEY,
    owner TEXT NOT NULL,
    expires REAL NOT NULL
);
"""


class SqliteStatusStore:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._db = SqliteWorker(path, schema=SCHEMA, name="sqlite-status")

    async def put(self, status: DocumentStatus, fence: str | None = None) -> None:
        def _put(conn: apsw.Connection) -> None:
            with write_transaction(conn):
                if fence is not None and not _holds(conn, status.doc_id, fence):
                    raise LeaseLost(f"{status.doc_id}: the lease is another worker's now")
                stored = _stored(conn, status.doc_id)
                if status.doc_version is not None:
                    if version_conflict(stored, status, datetime.now(UTC)):
                        raise StaleVersion(
                            f"{status.doc_id}: version {stored.doc_version if stored else None} "
                            f"is stored, newer than {status.doc_version}"
                        )
                elif stored and stored.updated_at > status.updated_at:
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

    async def acquire_lease(self, doc_id: str, owner: str, ttl_s: float) -> bool:
        def _acquire(conn: apsw.Connection) -> bool:
            now = time.time()
            with write_transaction(conn):
                held = rows(
                    conn, "SELECT owner, expires FROM doc_lease WHERE doc_id = ?", (doc_id,)
                )
                if held and held[0][0] != owner and held[0][1] > now:
                    return False
                conn.execute(
                    "INSERT INTO doc_lease (doc_id, owner, expires) VALUES (?, ?, ?) "
                    "ON CONFLICT (doc_id) DO UPDATE SET owner = excluded.owner, "
                    "expires = excluded.expires",
                    (doc_id, owner, now + ttl_s),
                )
            return True

        return await self._db.run(_acquire)

    async def renew_lease(self, doc_id: str, owner: str, ttl_s: float) -> bool:
        def _renew(conn: apsw.Connection) -> bool:
            with write_transaction(conn):
                conn.execute(
                    "UPDATE doc_lease SET expires = ? WHERE doc_id = ? AND owner = ?",
                    (time.time() + ttl_s, doc_id, owner),
                )
                return bool(conn.changes())

        return await self._db.run(_renew)

    async def release_lease(self, doc_id: str, owner: str) -> None:
        def _release(conn: apsw.Connection) -> None:
            with write_transaction(conn):
                conn.execute(
                    "DELETE FROM doc_lease WHERE doc_id = ? AND owner = ?", (doc_id, owner)
                )

        await self._db.run(_release)

    async def remove(self, doc_id: str) -> None:
        """Forget a document entirely (the page's delete after the chunks are gone)."""

        def _remove(conn: apsw.Connection) -> None:
            with write_transaction(conn):
                conn.execute("DELETE FROM doc_status WHERE doc_id = ?", (doc_id,))

        await self._db.run(_remove)

    async def close(self) -> None:
        await self._db.close()


def _holds(conn: apsw.Connection, doc_id: str, owner: str) -> bool:
    held = rows(conn, "SELECT owner FROM doc_lease WHERE doc_id = ?", (doc_id,))
    return bool(held) and held[0][0] == owner


def _stored(conn: apsw.Connection, doc_id: str) -> DocumentStatus | None:
    found = rows(conn, "SELECT status_json FROM doc_status WHERE doc_id = ?", (doc_id,))
    return DocumentStatus.model_validate_json(found[0][0]) if found else None


def from_settings(settings: Settings) -> SqliteStatusStore:
    return SqliteStatusStore(Path(settings.data_dir) / INDEX_DB)
