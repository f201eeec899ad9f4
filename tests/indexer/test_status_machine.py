"""The status record's state machine and the shared disposition (issue 23 item 1): pure."""

from __future__ import annotations

from datetime import timedelta

import pytest

from services.indexer.disposition import Action, Disposition, Outcome, Verdict, disposition
from services.indexer.records import (
    Event,
    cleaned_record,
    confirmed_record,
    deleted_record,
    failed_record,
    indexed_record,
    next_state,
    repaired_record,
    writing_record,
)
from shared.documents import DocState, DocumentStatus
from shared.errors import IndexUnavailable
from shared.ingest import DeleteOperation, IndexOperation, parse_ingest_message
from shared.settings import Settings
from tests.indexer.events import delete_body, index_body, queue_message


def index_op(body: str) -> IndexOperation:
    op = parse_ingest_message(body)
    assert isinstance(op, IndexOperation)
    return op


MESSAGE = queue_message(index_body("doc", "text", groups=["hr"], doc_version=3))
OP = index_op(MESSAGE.body)


def indexed(**more: object) -> DocumentStatus:
    base = indexed_record(OP, MESSAGE, "g1", 4, 3, None, cleanup_pending=False)
    return base.model_copy(update=more)


def test_a_new_document_moves_queued_then_indexed_then_clean() -> None:
    marker = writing_record(OP, None, "g1", 3, MESSAGE)
    assert (marker.state, marker.writing) == (DocState.QUEUED, "g1")
    written = indexed_record(OP, MESSAGE, "g1", 4, 3, None, cleanup_pending=True)
    assert (written.state, written.generation, written.writing) == (DocState.INDEXED, "g1", None)
    clean = cleaned_record(written)
    assert clean.state is DocState.INDEXED and not clean.cleanup_pending


def test_a_write_keeps_the_state_the_index_still_serves() -> None:
    for state in (DocState.INDEXED, DocState.FAILED, DocState.QUEUED):
        marker = writing_record(OP, indexed(state=state), "g2", 3, MESSAGE)
        assert (marker.state, marker.generation, marker.writing) == (state, "g1", "g2")
    after_delete = writing_record(OP, indexed(state=DocState.DELETED), "g2", 3, MESSAGE)
    assert after_delete.state is DocState.QUEUED


def test_forbidden_moves_are_refused() -> None:
    with pytest.raises(ValueError, match="nothing to clean up"):
        cleaned_record(indexed())
    with pytest.raises(ValueError, match="whole, recorded generation"):
        next_state(indexed(writing="g2"), Event.CONFIRMED)
    with pytest.raises(ValueError, match="recorded documents"):
        next_state(None, Event.REPAIRED)


def test_confirming_the_same_generation_writes_only_what_changed() -> None:
    assert confirmed_record(indexed(), OP, None) is None  # a pure redelivery: no write
    relabelled = confirmed_record(indexed(groups=["finance"]), OP, None)
    assert relabelled is not None and relabelled.groups == ["hr"]
    recovered = confirmed_record(indexed(state=DocState.FAILED, reason="x"), OP, None)
    assert recovered is not None and (recovered.state, recovered.reason) == (DocState.INDEXED, None)
    newer = index_op(index_body("doc", "text", groups=["hr"], doc_version=4))
    bumped = confirmed_record(indexed(), newer, None)
    assert bumped is not None and bumped.doc_version == 4


def test_delete_failure_and_repair_records() -> None:
    op = parse_ingest_message(delete_body("doc"))
    assert isinstance(op, DeleteOperation)
    gone = deleted_record(op, MESSAGE, indexed(), timedelta(days=1))
    assert gone.state is DocState.DELETED and gone.expires_at is None  # unversioned
    failed = failed_record(indexed(), "doc", IndexUnavailable("down"), "m2")
    assert (failed.state, failed.generation, failed.error_code) == (
        DocState.FAILED,
        "g1",  # what the index holds is kept
        "index_unavailable",
    )
    requeued = repaired_record(indexed(), "2 chunks missing")
    assert (requeued.writing, requeued.cleanup_pending) == ("g1", True)
    assert repaired_record(indexed(cleanup_pending=True), None).cleanup_pending is False


@pytest.mark.parametrize(
    ("verdict", "receive_count", "expected"),
    [
        (Verdict.INDEXED, 1, Disposition(Action.ACK)),
        (Verdict.STALE, 1, Disposition(Action.ACK)),
        (Verdict.POISON, 1, Disposition(Action.DEAD_LETTER, 0)),
        (Verdict.BUSY, 1, Disposition(Action.BACK_OFF, 2)),
        (Verdict.BUSY, 3, Disposition(Action.BACK_OFF, 18)),
        (Verdict.RETRY, 1, Disposition(Action.BACK_OFF, 5)),
        (Verdict.RETRY, 3, Disposition(Action.BACK_OFF, 20)),
    ],
)
def test_one_disposition_for_both_transports(
    verdict: Verdict, receive_count: int, expected: Disposition
) -> None:
    outcome = Outcome(verdict, "m1")
    assert disposition(outcome, receive_count, Settings(_env_file=None)) == expected
