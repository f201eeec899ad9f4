"""The StatusStore contract: the embedded store, DynamoDB (moto) and the tests'
fake keep document status records the same way."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from shared.documents import DocState, DocumentStatus
from shared.ports import StatusStore

T0 = datetime(2026, 1, 2, 3, 4, 5, 678_000, tzinfo=UTC)


def status(doc_id: str, state: DocState, at: datetime, **more: object) -> DocumentStatus:
    return DocumentStatus(doc_id=doc_id, state=state, updated_at=at, **more)


async def test_an_unknown_document_has_no_status(status_store: StatusStore) -> None:
    assert await status_store.get("never-seen.md") is None


async def test_every_field_round_trips(status_store: StatusStore) -> None:
    record = status(
        "guide.md",
        DocState.INDEXED,
        T0,
        generation="g-1",
        chunk_count=7,
        title="Guide",
        source_uri="s3://bucket/guide.md",
        content_type="text/markdown",
        message_id="m-1",
        indexed_at=T0,
    )
    await status_store.put(record)
    assert await status_store.get("guide.md") == record


async def test_a_failure_keeps_its_reason_and_code(status_store: StatusStore) -> None:
    failed = status(
        "scan.png", DocState.FAILED, T0, reason="unsupported type", error_code="unsupported"
    )
    await status_store.put(failed)
    assert await status_store.get("scan.png") == failed


async def test_a_newer_record_replaces_the_older_one(status_store: StatusStore) -> None:
    await status_store.put(status("a.md", DocState.QUEUED, T0))
    newer = status("a.md", DocState.INDEXED, T0 + timedelta(seconds=1), chunk_count=2)
    await status_store.put(newer)
    assert await status_store.get("a.md") == newer


async def test_an_older_record_never_overwrites_a_newer_one(status_store: StatusStore) -> None:
    """A slow, older delivery arriving last must not undo the newer outcome."""
    newer = status("a.md", DocState.INDEXED, T0 + timedelta(seconds=1), chunk_count=2)
    await status_store.put(newer)
    await status_store.put(status("a.md", DocState.QUEUED, T0))
    assert await status_store.get("a.md") == newer


async def test_list_is_newest_first_and_honours_the_limit(status_store: StatusStore) -> None:
    for i, doc_id in enumerate(["b.md", "c.md", "a.md"]):
        await status_store.put(status(doc_id, DocState.INDEXED, T0 + timedelta(minutes=i)))
    assert [s.doc_id for s in await status_store.list()] == ["a.md", "c.md", "b.md"]
    assert [s.doc_id for s in await status_store.list(limit=2)] == ["a.md", "c.md"]
