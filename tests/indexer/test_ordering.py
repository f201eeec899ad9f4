"""Order, leases and crash markers in the indexer core, over fakes (logic only;
the real stores and the real node are in test_status_ordering and the e2e tests)."""

from __future__ import annotations

import json

from services.indexer.disposition import Verdict
from services.indexer.pipeline import IndexerPipeline
from shared.documents import DocState
from tests.fakes.status_store import FakeStatusStore
from tests.fakes.vector_index import FakeVectorIndex
from tests.indexer.events import index_body, paragraphs, queue_message


def versioned(doc_id: str, topic: str, version: int | None) -> str:
    return index_body(doc_id, paragraphs(topic, 4), doc_version=version)  # 2+ chunks


def delete_v(doc_id: str, version: int) -> str:
    return json.dumps({"version": 1, "op": "delete", "doc_id": doc_id, "doc_version": version})


def texts(index: FakeVectorIndex, doc_id: str) -> str:
    return " ".join(c.chunk.text for c in index.chunks_of(doc_id))


async def test_a_late_older_version_is_acknowledged_as_stale_and_changes_nothing(
    pipeline: IndexerPipeline, fake_index: FakeVectorIndex, fake_status: FakeStatusStore
) -> None:
    # GIVEN version 2 applied
    v2 = await pipeline.process(queue_message(versioned("doc", "newer", 2)))
    # WHEN version 1 arrives late
    v1 = await pipeline.process(queue_message(versioned("doc", "older", 1)))
    # THEN it is acknowledged (ok) as stale, and the index and status still say version 2
    assert (v1.verdict, v1.ok, v1.stored_version) == (Verdict.STALE, True, 2)
    assert "newer" in texts(fake_index, "doc") and "older" not in texts(fake_index, "doc")
    record = fake_status.records["doc"]
    assert (record.doc_version, record.generation) == (2, v2.generation)


async def test_a_versioned_delete_leaves_a_tombstone_for_older_index_messages(
    pipeline: IndexerPipeline, fake_index: FakeVectorIndex, fake_status: FakeStatusStore
) -> None:
    await pipeline.process(queue_message(versioned("doc", "four", 4)))
    deleted = await pipeline.process(queue_message(delete_v("doc", 5)))
    late = await pipeline.process(queue_message(versioned("doc", "three", 3)))
    same = await pipeline.process(queue_message(versioned("doc", "five", 5)))

    assert deleted.verdict is Verdict.DELETED
    assert late.verdict is Verdict.STALE and same.verdict is Verdict.STALE
    assert fake_index.chunks_of("doc") == []
    tombstone = fake_status.records["doc"]
    assert tombstone.state is DocState.DELETED and tombstone.expires_at is not None

    newer = await pipeline.process(queue_message(versioned("doc", "six", 6)))
    assert newer.verdict is Verdict.INDEXED and "six" in texts(fake_index, "doc")


async def test_an_older_delete_does_not_remove_a_newer_version(
    pipeline: IndexerPipeline, fake_index: FakeVectorIndex
) -> None:
    await pipeline.process(queue_message(versioned("doc", "seven", 7)))
    late_delete = await pipeline.process(queue_message(delete_v("doc", 6)))
    assert late_delete.verdict is Verdict.STALE
    assert "seven" in texts(fake_index, "doc")


async def test_without_versions_the_later_processed_message_wins(
    pipeline: IndexerPipeline, fake_index: FakeVectorIndex
) -> None:
    await pipeline.process(queue_message(versioned("doc", "first", None)))
    await pipeline.process(queue_message(versioned("doc", "second", None)))
    assert "second" in texts(fake_index, "doc") and "first" not in texts(fake_index, "doc")


async def test_an_unversioned_update_keeps_the_order_for_versioned_ones(
    pipeline: IndexerPipeline, fake_status: FakeStatusStore
) -> None:
    await pipeline.process(queue_message(versioned("doc", "eight", 8)))
    await pipeline.process(queue_message(versioned("doc", "plain", None)))
    late = await pipeline.process(queue_message(versioned("doc", "two", 2)))
    assert fake_status.records["doc"].doc_version == 8
    assert late.verdict is Verdict.STALE


async def test_a_document_leased_by_another_worker_is_busy_and_untouched(
    pipeline: IndexerPipeline, fake_index: FakeVectorIndex, fake_status: FakeStatusStore
) -> None:
    assert await fake_status.acquire_lease("doc", "another-worker", 60)
    busy = await pipeline.process(queue_message(versioned("doc", "x", 1)))
    assert busy.verdict is Verdict.BUSY and not busy.ok and busy.error is None
    assert fake_index.rows == {} and "doc" not in fake_status.records

    await fake_status.release_lease("doc", "another-worker")
    done = await pipeline.process(queue_message(versioned("doc", "x", 1)))
    assert done.verdict is Verdict.INDEXED
    assert fake_status.leases == {}  # released after the work


async def test_a_worker_that_died_mid_write_is_cleaned_up_by_the_next(
    pipeline: IndexerPipeline, fake_index: FakeVectorIndex, fake_status: FakeStatusStore
) -> None:
    # GIVEN v1 indexed, then a worker that wrote part of v2 and died (its marker remains)
    await pipeline.process(queue_message(versioned("doc", "one", 1)))
    v2 = queue_message(versioned("doc", "two", 2))
    fake_index.write_limit = 1  # the first write stores one chunk, then "the process dies"
    crashed = await pipeline.process(v2)
    assert crashed.verdict is Verdict.RETRY
    marker = fake_status.records["doc"]
    assert marker.writing == crashed.generation and marker.cleanup_pending
    # WHEN the message comes back
    again = await pipeline.process(v2)
    # THEN exactly v2 remains, whole, once
    assert again.verdict is Verdict.INDEXED
    assert await fake_index.generations("doc") == {again.generation: again.chunk_count}
    record = fake_status.records["doc"]
    assert record.writing is None and not record.cleanup_pending and record.doc_version == 2
