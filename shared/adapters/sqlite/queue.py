"""The embedded durable Queue: SQS semantics on a SQLite table.

A received message stays invisible for its visibility timeout; if it isn't
deleted in time it becomes visible again (at-least-once). Every receive
increments its receive count; a message received ``max_receive_count`` times
without being deleted is moved to the dead-letter table, with a reason, on the
next receive (SQS's redrive policy). Several processes may produce and
consume at once: every state change is one ``BEGIN IMMEDIATE`` transaction
and a receipt handle is new on each receive, so a stale consumer can't delete
or extend a message someone else now holds.

Consumers also leave a heartbeat, so ``rag ingest`` can tell whether a
``rag serve`` is already draining the queue of the same data folder.

Unlike SQS, every consumer here is a process on this machine, so a receive
records who holds the message (pid and process start time). A process killed
mid-message (``kill -9`` of ``rag serve``) would otherwise leave its messages
invisible for the whole visibility timeout; instead the next receive (and
``reclaim_orphans``) puts them back at once, within seconds.
"""

from __future__ import annotations

import asyncio
import os
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import apsw

from shared.adapters.helpers.process_identity import is_alive, this_process
from shared.adapters.sqlite.common import QUEUE_DB, SqliteWorker, rows, write_transaction
from shared.ports import PoisonReason, QueueMessage
from shared.settings import Settings

SCHEMA = """
CREATE TABLE IF NOT EXISTS messages (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    message_id TEXT NOT NULL UNIQUE,
    body TEXT NOT NULL,
    sent_at REAL NOT NULL,
    visible_at REAL NOT NULL,
    receive_count INTEGER NOT NULL DEFAULT 0,
    receipt TEXT,
    owner_pid INTEGER,
    owner_started TEXT
);
CREATE INDEX IF NOT EXISTS messages_visible ON messages (visible_at);
CREATE TABLE IF NOT EXISTS dead_letters (
    message_id TEXT PRIMARY KEY,
    body TEXT NOT NULL,
    sent_at REAL NOT NULL,
    dead_at REAL NOT NULL,
    receive_count INTEGER NOT NULL,
    reason TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS consumers (
    consumer_id TEXT PRIMARY KEY,
    pid INTEGER NOT NULL,
    seen_at REAL NOT NULL
);
"""

_POLL_MIN_S = 0.05
_POLL_MAX_S = 0.5
# How often a receiving process looks for messages held by dead processes.
RECLAIM_EVERY_S = 2.0
_OWNER_COLUMNS = (("owner_pid", "INTEGER"), ("owner_started", "TEXT"))


@dataclass(frozen=True)
class DeadLetter:
    message_id: str
    body: str
    receive_count: int
    reason: str
    dead_at: float


@dataclass(frozen=True)
class QueueCounts:
    visible: int
    in_flight: int
    dead: int

    @property
    def pending(self) -> int:
        return self.visible + self.in_flight


class SqliteQueue:
    def __init__(self, path: Path, max_receive_count: int = 5) -> None:
        self.path = path
        self.max_receive_count = max_receive_count
        self._db = SqliteWorker(path, schema=SCHEMA, name="sqlite-queue")
        self._migrated = False
        self._reclaimed_at = float("-inf")

    async def send(self, body: str) -> str:
        message_id = str(uuid.uuid4())

        def _send(conn: apsw.Connection) -> None:
            now = time.time()
            with write_transaction(conn):
                conn.execute(
                    "INSERT INTO messages (message_id, body, sent_at, visible_at) "
                    "VALUES (?, ?, ?, ?)",
                    (message_id, body, now, now),
                )

        await self._db.run(_send)
        return message_id

    async def receive(
        self, max_messages: int, wait_seconds: float, visibility_timeout_s: int
    ) -> list[QueueMessage]:
        """Long-poll up to ``wait_seconds`` for at least one message."""
        deadline = time.monotonic() + max(0.0, wait_seconds)
        pause = _POLL_MIN_S
        while True:
            if time.monotonic() - self._reclaimed_at >= RECLAIM_EVERY_S:
                await self.reclaim_orphans()
            got = await self._db.run(lambda c: self._take(c, max_messages, visibility_timeout_s))
            if got or time.monotonic() >= deadline:
                return got
            await asyncio.sleep(min(pause, max(0.0, deadline - time.monotonic())))
            pause = min(pause * 2, _POLL_MAX_S)

    def _take(self, conn: apsw.Connection, limit: int, visibility_s: int) -> list[QueueMessage]:
        now = time.time()
        taken: list[QueueMessage] = []
        owner_pid, owner_started = this_process()
        with write_transaction(conn):
            candidates = rows(
                conn,
                "SELECT message_id, body, receive_count, sent_at FROM messages "
                "WHERE visible_at <= ? ORDER BY seq LIMIT ?",
                (now, limit * 4),
            )
            for message_id, body, count, sent_at in candidates:
                if len(taken) >= limit:
                    break
                if count >= self.max_receive_count:
                    reason = (
                        f"received {count} times without being deleted "
                        f"(max_receive_count={self.max_receive_count})"
                    )
                    self._move_to_dead(conn, message_id, body, sent_at, count, reason, now)
                    continue
                receipt = uuid.uuid4().hex
                conn.execute(
                    "UPDATE messages SET receive_count = receive_count + 1, visible_at = ?, "
                    "receipt = ?, owner_pid = ?, owner_started = ? WHERE message_id = ?",
                    (now + visibility_s, receipt, owner_pid, owner_started, message_id),
                )
                taken.append(QueueMessage(message_id, receipt, body, count + 1))
        return taken

    @staticmethod
    def _move_to_dead(
        conn: apsw.Connection,
        message_id: str,
        body: str,
        sent_at: float,
        count: int,
        reason: str,
        now: float,
    ) -> None:
        conn.execute(
            "INSERT OR REPLACE INTO dead_letters (message_id, body, sent_at, dead_at, "
            "receive_count, reason) VALUES (?, ?, ?, ?, ?, ?)",
            (message_id, body, sent_at, now, count, reason),
        )
        conn.execute("DELETE FROM messages WHERE message_id = ?", (message_id,))

    async def _update(self, sql: str, params: tuple[object, ...]) -> None:
        def _run(conn: apsw.Connection) -> None:
            with write_transaction(conn):
                conn.execute(sql, params)

        await self._db.run(_run)

    def _ensure_owner_columns(self, conn: apsw.Connection) -> None:
        """Queues made before owners were recorded get the columns once."""
        if self._migrated:
            return
        have = {str(row[1]) for row in rows(conn, "PRAGMA table_info(messages)")}
        with write_transaction(conn):
            for name, kind in _OWNER_COLUMNS:
                if name not in have:
                    conn.execute(f"ALTER TABLE messages ADD COLUMN {name} {kind}")
        self._migrated = True

    async def reclaim_orphans(self) -> int:
        """Make messages held by processes that no longer exist visible again
        now (their receive count stays, so a message that kills its consumer
        still reaches the dead-letter table). Returns how many."""
        self._reclaimed_at = time.monotonic()

        def _holders(conn: apsw.Connection) -> list[tuple[int, str | None]]:
            self._ensure_owner_columns(conn)
            found = rows(
                conn,
                "SELECT DISTINCT owner_pid, owner_started FROM messages "
                "WHERE visible_at > ? AND owner_pid IS NOT NULL",
                (time.time(),),
            )
            return [(int(pid), started) for pid, started in found]

        dead = [h for h in await self._db.run(_holders) if not is_alive(*h)]
        if not dead:
            return 0

        def _reclaim(conn: apsw.Connection) -> int:
            now = time.time()
            taken_back = 0
            with write_transaction(conn):
                for pid, started in dead:
                    conn.execute(
                        "UPDATE messages SET visible_at = ?, owner_pid = NULL, "
                        "owner_started = NULL WHERE visible_at > ? AND owner_pid = ? "
                        "AND owner_started IS ?",
                        (now, now, pid, started),
                    )
                    taken_back += conn.changes()
            return taken_back

        return await self._db.run(_reclaim)

    async def delete(self, message: QueueMessage) -> None:
        await self._update(
            "DELETE FROM messages WHERE message_id = ? AND receipt = ?",
            (message.message_id, message.receipt),
        )

    async def extend(self, message: QueueMessage, visibility_timeout_s: int) -> None:
        await self._update(
            "UPDATE messages SET visible_at = ? WHERE message_id = ? AND receipt = ?",
            (time.time() + visibility_timeout_s, message.message_id, message.receipt),
        )

    async def release(self, message: QueueMessage) -> None:
        await self._update(
            "UPDATE messages SET visible_at = ? WHERE message_id = ? AND receipt = ?",
            (time.time(), message.message_id, message.receipt),
        )

    async def dead_letter(self, message: QueueMessage, reason: str) -> None:
        """Move a poison message to the dead-letter table now, with why."""

        def _dead(conn: apsw.Connection) -> None:
            with write_transaction(conn):
                found = rows(
                    conn,
                    "SELECT sent_at FROM messages WHERE message_id = ? AND receipt = ?",
                    (message.message_id, message.receipt),
                )
                if found:
                    self._move_to_dead(
                        conn,
                        message.message_id,
                        message.body,
                        found[0][0],
                        message.receive_count,
                        reason,
                        time.time(),
                    )

        await self._db.run(_dead)

    async def counts(self) -> QueueCounts:
        def _counts(conn: apsw.Connection) -> QueueCounts:
            now = time.time()
            (visible, in_flight), *_ = rows(
                conn,
                "SELECT coalesce(sum(visible_at <= ?), 0), coalesce(sum(visible_at > ?), 0) "
                "FROM messages",
                (now, now),
            )
            (dead,), *_ = rows(conn, "SELECT count(*) FROM dead_letters")
            return QueueCounts(int(visible), int(in_flight), int(dead))

        return await self._db.run(_counts)

    async def is_pending(self, message_id: str) -> bool:
        """True while the message is still queued or being processed."""

        def _pending(conn: apsw.Connection) -> bool:
            found = rows(conn, "SELECT 1 FROM messages WHERE message_id = ?", (message_id,))
            return bool(found)

        return await self._db.run(_pending)

    async def dead_letters(self, limit: int = 1000) -> list[DeadLetter]:
        def _list(conn: apsw.Connection) -> list[DeadLetter]:
            found = rows(
                conn,
                "SELECT message_id, body, receive_count, reason, dead_at FROM dead_letters "
                "ORDER BY dead_at DESC LIMIT ?",
                (limit,),
            )
            return [DeadLetter(str(m), str(b), int(n), str(r), float(t)) for m, b, n, r, t in found]

        return await self._db.run(_list)

    async def heartbeat(self, consumer_id: str) -> None:
        """Record that a consumer is alive (``rag serve`` calls this every few seconds)."""
        await self._update(
            "INSERT INTO consumers (consumer_id, pid, seen_at) VALUES (?, ?, ?) "
            "ON CONFLICT (consumer_id) DO UPDATE SET seen_at = excluded.seen_at",
            (consumer_id, os.getpid(), time.time()),
        )

    async def forget_consumer(self, consumer_id: str) -> None:
        await self._update("DELETE FROM consumers WHERE consumer_id = ?", (consumer_id,))

    async def live_consumers(self, within_s: float) -> int:
        def _live(conn: apsw.Connection) -> int:
            (n,), *_ = rows(
                conn, "SELECT count(*) FROM consumers WHERE seen_at >= ?", (time.time() - within_s,)
            )
            return int(n)

        return await self._db.run(_live)

    async def close(self) -> None:
        await self._db.close()


class SqliteDeadLetters:
    """Poison messages to the embedded queue's dead-letter table, with the reason."""

    def __init__(self, queue: SqliteQueue) -> None:
        self._queue = queue

    async def send(self, message: QueueMessage, why: PoisonReason) -> None:
        await self._queue.dead_letter(message, why.reason)

    async def close(self) -> None:
        await self._queue.close()


def dead_letters_from_settings(settings: Settings) -> SqliteDeadLetters:
    return SqliteDeadLetters(from_settings(settings))


def from_settings(settings: Settings) -> SqliteQueue:
    return SqliteQueue(
        Path(settings.data_dir) / QUEUE_DB, max_receive_count=settings.queue.max_receive_count
    )
