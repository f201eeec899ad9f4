"""Shared plumbing for the embedded SQLite adapters (store, status, queue).

Each adapter owns one apsw connection used from one worker thread, so blocking
SQLite calls never run on the event loop and never race each other inside a
process. Across processes, WAL mode plus a busy timeout lets ``rag serve`` and
``rag ingest`` share one data folder.

apsw is used instead of the standard ``sqlite3`` module because the stock
CPython build here cannot load SQLite extensions (sqlite-vec).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import apsw

from shared.errors import IndexUnavailable

T = TypeVar("T")

BUSY_TIMEOUT_MS = 15_000
INDEX_DB = "rag.sqlite3"
QUEUE_DB = "queue.sqlite3"


def open_connection(path: Path, *, load_vec: bool = False) -> apsw.Connection:
    """Open (creating if needed) a WAL-mode database with a busy timeout."""
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = apsw.Connection(str(path))
    conn.setbusytimeout(BUSY_TIMEOUT_MS)
    _enable_wal(conn)
    # NORMAL is durable across application crashes in WAL mode; only an OS
    # crash can lose the last transactions, which at-least-once delivery redoes.
    conn.execute("PRAGMA synchronous=NORMAL")
    if load_vec:
        import sqlite_vec

        conn.enable_load_extension(True)
        conn.load_extension(sqlite_vec.loadable_path())
        conn.enable_load_extension(False)
    return conn


def _enable_wal(conn: apsw.Connection) -> None:
    """Switch a new database to WAL, retrying while another connection holds
    a lock. The switch needs an exclusive lock, and when two first starts both
    hold a shared one SQLite answers BUSY at once instead of calling the busy
    handler (waiting could deadlock), so the busy timeout alone does not cover
    concurrent first starts. Once the file is in WAL mode this returns at once."""
    deadline = time.monotonic() + BUSY_TIMEOUT_MS / 1000
    while True:
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            return
        except apsw.BusyError:
            if time.monotonic() >= deadline:
                raise
            time.sleep(0.05)


@contextmanager
def write_transaction(conn: apsw.Connection) -> Iterator[None]:
    """BEGIN IMMEDIATE takes the write lock up front, so two processes never
    deadlock upgrading read locks (the busy timeout then simply waits)."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


class SqliteWorker:
    """One connection, one thread: every call runs serially off the loop."""

    def __init__(
        self, path: Path, *, schema: str, load_vec: bool = False, name: str = "sqlite"
    ) -> None:
        self.path = path
        self._schema = schema
        self._load_vec = load_vec
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=name)
        self._conn: apsw.Connection | None = None
        self._closed = False

    def _connection(self) -> apsw.Connection:
        if self._conn is None:
            conn = open_connection(self.path, load_vec=self._load_vec)
            # Idempotent DDL, once per connection: each adapter owns its tables.
            with write_transaction(conn):
                conn.execute(self._schema)
            self._conn = conn
        return self._conn

    async def run(self, fn: Callable[[apsw.Connection], T]) -> T:
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(self._executor, lambda: fn(self._connection()))
        except apsw.BusyError as exc:
            raise IndexUnavailable(f"database {self.path} stayed locked: {exc}") from exc

    def run_sync(self, fn: Callable[[apsw.Connection], T]) -> T:
        """For synchronous callers (CLI helpers); still on the worker thread."""
        return self._executor.submit(lambda: fn(self._connection())).result()

    async def close(self) -> None:
        """Idempotent: a second close is a no-op."""
        if self._closed:
            return
        self._closed = True

        def _close() -> None:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

        loop = asyncio.get_running_loop()
        await loop.run_in_executor(self._executor, _close)
        self._executor.shutdown(wait=True)


def rows(conn: apsw.Connection, sql: str, params: Any = ()) -> list[tuple[Any, ...]]:
    return list(conn.execute(sql, params))
