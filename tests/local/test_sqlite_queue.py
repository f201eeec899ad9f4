"""The embedded queue against real SQLite files: visibility, receipts, redrive."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from shared.adapters.sqlite.queue import SqliteQueue
from shared.adapters.sqlite.status import SqliteStatusStore
from shared.documents import DocState, DocumentStatus

HOLD = 600  # seconds: "invisible for the rest of this test"


@pytest.fixture
async def queue(tmp_path: Path) -> AsyncIterator[SqliteQueue]:
    q = SqliteQueue(tmp_path / "queue.sqlite3", max_receive_count=2)
    yield q
    await q.close()


async def test_messages_come_back_in_order_and_delete_removes_them(queue: SqliteQueue) -> None:
    sent = [await queue.send(f"body {i}") for i in range(3)]

    got = await queue.receive(10, 0, HOLD)

    assert [m.message_id for m in got] == sent
    assert [m.body for m in got] == ["body 0", "body 1", "body 2"]
    assert all(m.receive_count == 1 for m in got)
    for m in got:
        await queue.delete(m)
    assert (await queue.counts()).pending == 0


async def test_a_received_message_is_invisible_until_released(queue: SqliteQueue) -> None:
    await queue.send("x")
    (first,) = await queue.receive(1, 0, HOLD)

    assert await queue.receive(1, 0, HOLD) == []
    counts = await queue.counts()
    assert (counts.visible, counts.in_flight) == (0, 1)

    await queue.release(first)
    (again,) = await queue.receive(1, 0, HOLD)
    assert again.message_id == first.message_id
    assert again.receive_count == 2
    assert again.receipt != first.receipt


async def test_visibility_timeout_expiry_redelivers(queue: SqliteQueue) -> None:
    await queue.send("x")
    (first,) = await queue.receive(1, 0, 1)
    # Long-polls past the one-second visibility timeout.
    again = await queue.receive(1, 5, 1)
    assert [m.message_id for m in again] == [first.message_id]


async def test_a_stale_receipt_cannot_delete_or_extend(queue: SqliteQueue) -> None:
    await queue.send("x")
    (first,) = await queue.receive(1, 0, HOLD)
    await queue.release(first)
    (second,) = await queue.receive(1, 0, HOLD)

    await queue.delete(first)
    await queue.extend(first, 0)

    assert await queue.is_pending(second.message_id)
    assert await queue.receive(1, 0, HOLD) == []
    await queue.delete(second)
    assert not await queue.is_pending(second.message_id)


async def test_redrive_after_max_receive_count_keeps_the_reason(queue: SqliteQueue) -> None:
    message_id = await queue.send('{"poison": true}')
    for expected in (1, 2):
        (m,) = await queue.receive(1, 0, 0)  # never deleted: visible again at once
        assert m.receive_count == expected

    assert await queue.receive(1, 0, 0) == []

    (dead,) = await queue.dead_letters()
    assert (dead.message_id, dead.body, dead.receive_count) == (message_id, '{"poison": true}', 2)
    assert "max_receive_count=2" in dead.reason
    assert await queue.counts() == type(await queue.counts())(0, 0, 1)
    assert not await queue.is_pending(message_id)


async def test_dead_letter_now_records_the_given_reason(queue: SqliteQueue) -> None:
    await queue.send("not json")
    (m,) = await queue.receive(1, 0, HOLD)
    await queue.dead_letter(m, "message body is not valid JSON")
    (dead,) = await queue.dead_letters()
    assert dead.reason == "message body is not valid JSON"
    assert (await queue.counts()).pending == 0


async def test_messages_survive_reopening(tmp_path: Path) -> None:
    first = SqliteQueue(tmp_path / "q.sqlite3")
    await first.send("durable")
    await first.close()
    second = SqliteQueue(tmp_path / "q.sqlite3")
    got = await second.receive(1, 0, HOLD)
    await second.close()
    assert [m.body for m in got] == ["durable"]


async def test_heartbeats_tell_live_consumers(queue: SqliteQueue) -> None:
    assert await queue.live_consumers(within_s=60) == 0
    await queue.heartbeat("serve-1")
    assert await queue.live_consumers(within_s=60) == 1
    await queue.forget_consumer("serve-1")
    assert await queue.live_consumers(within_s=60) == 0


CONSUMER = """
import asyncio, json, sys
from pathlib import Path
from shared.adapters.sqlite.queue import SqliteQueue

async def main() -> None:
    q = SqliteQueue(Path(sys.argv[1]))
    got = []
    while True:
        batch = await q.receive(3, 0.3, 600)
        if not batch:
            break
        for m in batch:
            got.append(m.body)
            await q.delete(m)
    await q.close()
    print(json.dumps(got))

asyncio.run(main())
"""


async def test_processes_sharing_the_queue_each_get_distinct_messages(tmp_path: Path) -> None:
    path = tmp_path / "shared.sqlite3"
    producer = SqliteQueue(path)
    bodies = [f"m{i}" for i in range(60)]
    for body in bodies:
        await producer.send(body)
    await producer.close()

    def consume() -> list[str]:
        out = subprocess.run(
            [sys.executable, "-c", CONSUMER, str(path)],
            check=True,
            capture_output=True,
            text=True,
            cwd=Path(__file__).resolve().parents[2],
        )
        return list(json.loads(out.stdout))

    first, second = await asyncio.gather(asyncio.to_thread(consume), asyncio.to_thread(consume))
    assert sorted(first + second) == sorted(bodies)
    assert not set(first) & set(second)


async def test_status_store_upserts_and_lists(tmp_path: Path) -> None:
    store = SqliteStatusStore(tmp_path / "rag.sqlite3")
    await store.put(DocumentStatus(doc_id="b.md", state=DocState.QUEUED))
    await store.put(DocumentStatus(doc_id="a.md", state=DocState.QUEUED))
    await store.put(
        DocumentStatus(doc_id="a.md", state=DocState.FAILED, reason="empty", error_code="x")
    )
    listed = await store.list()
    got = await store.get("a.md")
    await store.remove("b.md")
    remaining = await store.list()
    await store.close()

    assert [s.doc_id for s in listed] == ["a.md", "b.md"]
    assert got is not None and (got.state, got.reason) == (DocState.FAILED, "empty")
    assert [s.doc_id for s in remaining] == ["a.md"]
    empty = SqliteStatusStore(tmp_path / "nothing.sqlite3")
    assert await empty.get("a.md") is None
    await empty.close()
