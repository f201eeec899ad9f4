"""Messages held by a process that was killed come back within seconds, not
after the visibility timeout."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import apsw

from shared.adapters.helpers.process_identity import is_alive, start_marker, this_process
from shared.adapters.sqlite.queue import SqliteQueue

ROOT = Path(__file__).resolve().parents[2]
# Takes one message for 600 s, says so, then dies as `kill -9` would kill it.
HOLDER = """
import asyncio, os, signal, sys
from pathlib import Path
from shared.adapters.sqlite.queue import SqliteQueue

async def main() -> None:
    got = await SqliteQueue(Path(sys.argv[1])).receive(int(sys.argv[2]), 2.0, 600)
    print(len(got), flush=True)
    os.kill(os.getpid(), signal.SIGKILL)

asyncio.run(main())
"""


def hold_and_die(path: Path, n: int = 1) -> None:
    done = subprocess.run(
        [sys.executable, "-c", HOLDER, str(path), str(n)], cwd=ROOT, capture_output=True, text=True
    )
    assert done.returncode == -signal.SIGKILL and done.stdout.strip() == str(n), done.stderr


async def test_a_killed_consumers_message_is_taken_back_on_the_next_receive(
    tmp_path: Path,
) -> None:
    # GIVEN a message received (600 s visibility) by a process then killed -9
    path = tmp_path / "queue.sqlite3"
    queue = SqliteQueue(path)
    message_id = await queue.send("index me")
    hold_and_die(path)
    # WHEN this process receives, well within the visibility timeout
    got = await queue.receive(1, 1.0, 30)
    # THEN it gets the message back, received once before
    assert [(m.message_id, m.receive_count) for m in got] == [(message_id, 2)]
    await queue.close()


async def test_a_live_holders_message_stays_invisible(tmp_path: Path) -> None:
    queue = SqliteQueue(tmp_path / "queue.sqlite3")
    await queue.send("busy")
    assert len(await queue.receive(1, 0.0, 600)) == 1
    other = SqliteQueue(tmp_path / "queue.sqlite3")
    assert await other.reclaim_orphans() == 0
    assert await other.receive(1, 0.2, 600) == []
    await other.close()
    await queue.close()


async def test_reclaim_reports_how_many_came_back(tmp_path: Path) -> None:
    path = tmp_path / "queue.sqlite3"
    queue = SqliteQueue(path)
    for body in ("a", "b"):
        await queue.send(body)
    hold_and_die(path, 2)
    assert (await queue.counts()).in_flight == 2
    assert await queue.reclaim_orphans() == 2
    assert (await queue.counts()).visible == 2
    await queue.close()


async def test_queues_from_before_owners_get_the_columns(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite3"
    conn = apsw.Connection(str(path))
    conn.execute(
        "CREATE TABLE messages (seq INTEGER PRIMARY KEY AUTOINCREMENT, message_id TEXT NOT "
        "NULL UNIQUE, body TEXT NOT NULL, sent_at REAL NOT NULL, visible_at REAL NOT NULL, "
        "receive_count INTEGER NOT NULL DEFAULT 0, receipt TEXT);"
        "INSERT INTO messages (message_id, body, sent_at, visible_at) VALUES ('m', 'old', 0, 0)"
    )
    conn.close()
    queue = SqliteQueue(path)
    assert [m.body for m in await queue.receive(1, 0.0, 30)] == ["old"]
    await queue.close()


def test_process_identity() -> None:
    pid, marker = this_process()
    assert pid == os.getpid() and is_alive(pid, marker)
    assert not is_alive(pid, "not-this-start-time") or marker is None
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child_marker = start_marker(child.pid)
    child.wait()
    assert not is_alive(child.pid, child_marker)
