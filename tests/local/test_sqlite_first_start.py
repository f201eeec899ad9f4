"""Concurrent first starts on one new data folder: ``rag serve`` and ``rag
ingest`` (or two indexer workers) may open the same new database at the same
instant, and both must come up in WAL mode."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import apsw

from shared.adapters.sqlite.common import open_connection

RACES = 40


def _race(path: Path) -> list[str]:
    barrier = threading.Barrier(3)

    def start() -> str:
        barrier.wait()
        conn = open_connection(path)
        try:
            return str(conn.execute("PRAGMA journal_mode").fetchall()[0][0])
        finally:
            conn.close()

    with ThreadPoolExecutor(max_workers=3) as pool:
        futures = [pool.submit(start) for _ in range(3)]
        return [f.result() for f in futures]


def test_connections_racing_to_open_a_new_database_all_get_wal(tmp_path: Path) -> None:
    for attempt in range(RACES):
        modes = _race(tmp_path / f"race-{attempt}" / "rag.sqlite3")
        assert modes == ["wal", "wal", "wal"]


def test_a_reader_holding_the_new_database_delays_the_switch_but_does_not_fail_it(
    tmp_path: Path,
) -> None:
    path = tmp_path / "rag.sqlite3"
    reader = apsw.Connection(str(path))
    reader.execute("CREATE TABLE t (x)")
    reader.execute("BEGIN")
    reader.execute("SELECT * FROM t").fetchall()  # holds a shared lock
    release = threading.Timer(0.3, lambda: reader.execute("COMMIT"))
    release.start()
    conn = open_connection(path)
    release.join()
    assert conn.execute("PRAGMA journal_mode").fetchall()[0][0] == "wal"
    conn.close()
    reader.close()
