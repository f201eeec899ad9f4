"""A document's status record as one pure state machine, and the rules the
indexer reads from it.

States (``DocState``) and the events that move between them; every record the
indexer writes is built here, by the function named after its event:

| event | from | to | record |
|---|---|---|---|
| ``WRITE_STARTED`` | none, deleted | queued (+ ``writing``) | ``writing_record`` |
| ``WRITE_STARTED`` | queued, indexed, failed | same (+ ``writing``) | ``writing_record`` |
| ``WRITTEN`` | any | indexed (``cleanup_pending`` if older chunks) | ``indexed_record`` |
| ``CLEANED`` | indexed, clean-up pending | indexed | ``cleaned_record`` |
| ``CONFIRMED`` | indexed/failed, same generation whole | indexed | ``confirmed_record`` |
| ``DELETED`` | any | deleted (a tombstone if versioned) | ``deleted_record`` |
| ``FAILED`` | any | failed (what the index holds is kept) | ``failed_record`` |
| ``REPAIRED`` | any (reconcile) | same (re-queued: + ``writing``) | ``repaired_record`` |

Every write of these is conditional on the writer's lease (the fencing token,
see ``lease``) and on the version/order rules of the store (``StatusStore.put``).

Searches of OpenSearch (AOSS especially) lag writes. The indexer never asks
the index "what is there?" until every write to that document has had
``settle_s`` to become searchable; the record's ``settled_at`` says when.
"""

from __future__ import annotations

import base64
import zlib
from datetime import UTC, datetime, timedelta
from enum import StrEnum

from shared.documents import DocState, DocumentStatus
from shared.errors import RagError
from shared.ingest import DeleteOperation, IndexOperation
from shared.ports import QueueMessage

# Ingest messages kept in the record (compressed) only up to this size.
MAX_PACKED_CHARS = 64 * 1024


def settled_at(
    previous: DocumentStatus | None, lease_acquired_at: float, settle_s: float
) -> datetime | None:
    """When searches will see every chunk written for the document so far.

    A ``writing`` marker means a worker died mid-write; its last requests had
    landed by the time its lease ran out, i.e. before ours was granted.
    """
    if previous is None or settle_s <= 0:
        return None
    settle = timedelta(seconds=settle_s)
    known = previous.settled_at or previous.updated_at + settle
    if previous.writing is not None:
        crashed = datetime.fromtimestamp(lease_acquired_at, UTC) + settle
        known = max(known, crashed)
    return known


def is_current(previous: DocumentStatus | None, generation: str) -> bool:
    """The record says this generation is in the index whole (nothing to write)."""
    return (
        previous is not None
        and previous.generation == generation
        and previous.writing is None
        and previous.state in (DocState.INDEXED, DocState.FAILED)
    )


def newest_version(message_version: int | None, previous: DocumentStatus | None) -> int | None:
    """The version a record carries after an update (unversioned updates keep it)."""
    stored = previous.doc_version if previous is not None else None
    if message_version is None:
        return stored
    return message_version if stored is None else max(message_version, stored)


def writing_record(
    op: IndexOperation,
    previous: DocumentStatus | None,
    generation: str,
    version: int | None,
    message: QueueMessage,
) -> DocumentStatus:
    """The record written before a generation's first chunk (``WRITE_STARTED``):
    the previous record (what the index holds whole) plus the marker."""
    update = {
        "writing": generation,
        "doc_version": version,
        "cleanup_pending": True,
        "message_id": message.message_id,
        "updated_at": datetime.now(UTC),
    }
    if previous is None or previous.state is DocState.DELETED:
        return DocumentStatus(
            doc_id=op.doc_id,
            state=next_state(previous, Event.WRITE_STARTED),
            title=op.title,
            source_uri=op.source_uri,
            content_type=op.content_type,
            **update,
        )
    return previous.model_copy(update=update)


class Event(StrEnum):
    WRITE_STARTED = "write_started"
    WRITTEN = "written"
    CLEANED = "cleaned"
    CONFIRMED = "confirmed"
    DELETED = "deleted"
    FAILED = "failed"
    REPAIRED = "repaired"


def next_state(previous: DocumentStatus | None, event: Event) -> DocState:
    """The state after ``event`` (the table above); ValueError for a move it forbids."""
    if event is Event.REPAIRED:
        if previous is None:
            raise ValueError("reconcile repairs recorded documents only")
        return previous.state
    if event is Event.WRITE_STARTED:
        if previous is None or previous.state is DocState.DELETED:
            return DocState.QUEUED
        return previous.state
    if event is Event.CLEANED and (previous is None or not previous.cleanup_pending):
        raise ValueError("nothing to clean up: no record with a pending clean-up")
    if event is Event.CONFIRMED and (
        previous is None or previous.writing is not None or previous.generation is None
    ):
        raise ValueError("only a whole, recorded generation can be confirmed")
    return {
        Event.WRITTEN: DocState.INDEXED,
        Event.CLEANED: DocState.INDEXED,
        Event.CONFIRMED: DocState.INDEXED,
        Event.DELETED: DocState.DELETED,
        Event.FAILED: DocState.FAILED,
    }[event]


def indexed_record(
    op: IndexOperation,
    message: QueueMessage,
    generation: str,
    count: int,
    version: int | None,
    settled: datetime | None,
    *,
    cleanup_pending: bool,
    title: str | None = None,
) -> DocumentStatus:
    """A whole generation is in the index (``WRITTEN``)."""
    now = datetime.now(UTC)
    return DocumentStatus(
        doc_id=op.doc_id,
        state=next_state(None, Event.WRITTEN),
        generation=generation,
        chunk_count=count,
        title=title or op.title,
        source_uri=op.source_uri,
        content_type=op.content_type,
        message_id=message.message_id,
        groups=op.groups,
        updated_at=now,
        indexed_at=now,
        doc_version=version,
        settled_at=settled,
        cleanup_pending=cleanup_pending,
        source_message=pack_message(message.body),
    )


def cleaned_record(record: DocumentStatus) -> DocumentStatus:
    """Older generations are gone (``CLEANED``)."""
    state = next_state(record, Event.CLEANED)
    return record.model_copy(
        update={"state": state, "cleanup_pending": False, "updated_at": datetime.now(UTC)}
    )


def confirmed_record(
    previous: DocumentStatus, op: IndexOperation, settled: datetime | None
) -> DocumentStatus | None:
    """The same generation again (``CONFIRMED``): the record after a pending
    clean-up, a re-label or a newer version; None when nothing changed."""
    version = newest_version(op.doc_version, previous)
    if (
        previous.groups == op.groups
        and not previous.cleanup_pending
        and previous.state is DocState.INDEXED
        and version == previous.doc_version
    ):
        return None
    return previous.model_copy(
        update={
            "state": next_state(previous, Event.CONFIRMED),
            "cleanup_pending": False,
            "reason": None,
            "error_code": None,
            "doc_version": version,
            "groups": op.groups,
            "updated_at": datetime.now(UTC),
            "settled_at": settled,
        }
    )


def deleted_record(
    op: DeleteOperation,
    message: QueueMessage,
    previous: DocumentStatus | None,
    tombstone: timedelta,
) -> DocumentStatus:
    """The document's chunks are deleted (``DELETED``)."""
    now = datetime.now(UTC)
    return DocumentStatus(
        doc_id=op.doc_id,
        state=next_state(previous, Event.DELETED),
        message_id=message.message_id,
        doc_version=newest_version(op.doc_version, previous),
        settled_at=previous.settled_at if previous else None,
        # Only a versioned delete has anything to block, and only for a while.
        expires_at=now + tombstone if op.doc_version is not None else None,
    )


def failed_record(
    previous: DocumentStatus | None, doc_id: str, error: RagError, message_id: str
) -> DocumentStatus:
    """Why it failed (``FAILED``), keeping what the record knows about the index
    (generation, count, version, markers): the last good chunks are still there."""
    failure = {
        "state": next_state(previous, Event.FAILED),
        "reason": str(error)[:2000],
        "error_code": error.code,
        "message_id": message_id,
        "updated_at": datetime.now(UTC),
    }
    if previous is None:
        return DocumentStatus(doc_id=doc_id, **failure)
    return previous.model_copy(update=failure)


def repaired_record(record: DocumentStatus, requeued_because: str | None) -> DocumentStatus:
    """The reconciler made the index match the record (``REPAIRED``); when it
    re-queued the document, the generation is not current any more: the
    re-queued message rewrites it whole."""
    update: dict[str, object] = {
        "state": next_state(record, Event.REPAIRED),
        "cleanup_pending": False,
        "writing": None,
        "updated_at": datetime.now(UTC),
    }
    if requeued_because is not None:
        update |= {
            "writing": record.generation,
            "cleanup_pending": True,
            "reason": "re-queued by reconcile: " + requeued_because,
        }
    return record.model_copy(update=update)


def pack_message(body: str) -> str | None:
    packed = base64.b64encode(zlib.compress(body.encode(), 6)).decode()
    return packed if len(packed) <= MAX_PACKED_CHARS else None


def unpack_message(packed: str) -> str:
    return zlib.decompress(base64.b64decode(packed)).decode()
