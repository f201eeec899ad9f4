"""The Queue and DeadLetters contract: the embedded queue behaves as SQS does.

Run over the embedded SQLite queue and SQS on the shared moto server (and,
for the dead letters, the tests' RecordingDeadLetters): visibility, receive
counts, release and extend, redrive after ``max_receive_count``, and poison
messages sent to the dead letters with their reason.
"""

from __future__ import annotations

import asyncio

from shared.ports import PoisonReason, QueueMessage
from tests.contract.conftest import QueueUnderTest
from tests.waiting import wait_until

HOLD_S = 60  # a visibility timeout no test outlives


async def receive_all(subject: QueueUnderTest, count: int, visibility_s: int) -> list[QueueMessage]:
    """Receive until ``count`` messages came (SQS may return fewer per call)."""
    got: list[QueueMessage] = []
    for _ in range(10):
        got += await subject.queue.receive(count - len(got), 1, visibility_s)
        if len(got) >= count:
            break
    return got


async def test_a_sent_message_is_received_with_its_id_body_and_count(
    queue_under_test: QueueUnderTest,
) -> None:
    queue = queue_under_test.queue
    sent = [await queue.send(f'{{"n": {i}}}') for i in range(3)]
    got = await receive_all(queue_under_test, 3, HOLD_S)
    assert sorted(m.message_id for m in got) == sorted(sent)
    assert sorted(m.body for m in got) == ['{"n": 0}', '{"n": 1}', '{"n": 2}']
    assert {m.receive_count for m in got} == {1}
    assert len({m.receipt for m in got}) == 3


async def test_a_received_message_is_invisible_until_released(
    queue_under_test: QueueUnderTest,
) -> None:
    queue = queue_under_test.queue
    await queue.send("x")
    (first,) = await receive_all(queue_under_test, 1, HOLD_S)
    assert await queue.receive(1, 0, HOLD_S) == []
    await queue.release(first)
    (again,) = await receive_all(queue_under_test, 1, HOLD_S)
    assert again.message_id == first.message_id
    assert again.receive_count == 2


async def test_the_visibility_timeout_running_out_redelivers(
    queue_under_test: QueueUnderTest,
) -> None:
    queue = queue_under_test.queue
    await queue.send("x")
    (first,) = await receive_all(queue_under_test, 1, 1)
    # WHEN its 1 s visibility runs out THEN it is received again (polled, bounded)
    (again,) = await wait_until(lambda: queue.receive(1, 0, HOLD_S), "the redelivery")
    assert (again.message_id, again.receive_count) == (first.message_id, 2)


async def test_extend_keeps_a_message_invisible_past_its_first_timeout(
    queue_under_test: QueueUnderTest,
) -> None:
    queue = queue_under_test.queue
    await queue.send("long document")
    (held,) = await receive_all(queue_under_test, 1, 1)
    await queue.extend(held, HOLD_S)
    await asyncio.sleep(1.5)  # an absence: only time passing can show it
    assert await queue.receive(1, 0, HOLD_S) == []


async def test_a_deleted_message_is_gone_and_a_late_release_is_harmless(
    queue_under_test: QueueUnderTest,
) -> None:
    queue = queue_under_test.queue
    await queue.send("x")
    (message,) = await receive_all(queue_under_test, 1, HOLD_S)
    await queue.delete(message)
    await queue.release(message)  # e.g. a shutdown racing the delete
    assert await queue.receive(1, 1, 0) == []
    assert await queue_under_test.read_dead() == []


async def test_a_message_never_deleted_is_redriven_after_max_receive_count(
    queue_under_test: QueueUnderTest,
) -> None:
    queue = queue_under_test.queue
    await queue.send('{"poison": true}')
    for expected in range(1, queue_under_test.max_receive_count + 1):
        (message,) = await receive_all(queue_under_test, 1, HOLD_S)
        assert message.receive_count == expected
        await queue.release(message)  # failed again: visible at once
    assert await queue.receive(1, 1, HOLD_S) == []
    assert [body for body, _ in await queue_under_test.read_dead()] == ['{"poison": true}']


async def test_poison_sent_to_the_dead_letters_keeps_its_body_and_reason(
    dead_letters_under_test: QueueUnderTest,
) -> None:
    subject = dead_letters_under_test
    await subject.queue.send("{not json")
    (message,) = await receive_all(subject, 1, HOLD_S)
    why = PoisonReason("message body is not valid JSON", "invalid_message", doc_id=None)
    await subject.dead_letters.send(message, why)
    await subject.queue.delete(message)  # what the indexer does once it is dead-lettered
    assert await subject.read_dead() == [("{not json", "message body is not valid JSON")]
    assert await subject.queue.receive(1, 1, 0) == []
