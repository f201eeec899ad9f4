"""Pure rules over status records: when the index's searches are complete for a
document, whether a generation is already current, the writing marker, and the
small copy of an ingest message kept for re-queueing.

Searches of OpenSearch (AOSS especially) lag writes. The indexer never asks
the index "what is there?" until every write to that document has had
``settle_s`` to become searchable; the record's ``settled_at`` says when.
"""

from __future__ import annotations

import base64
import zlib
from datetime import UTC, datetime, timedelta

from shared.documents import DocState, DocumentStatus
from shared.ingest import IndexOperation
from shared.ports import QueueMessage
from shared.settings import Settings

# Ingest messages kept in the record (compressed) only up to this size.
MAX_PACKED_CHARS = 64 * 1024


def settle_seconds(settings: Settings) -> float:
    """Searches see writes after the collection kind's refresh interval
    (``shared.settings``: 60 s classic AOSS, 10 s NextGen, the index's own on
    managed OpenSearch); the indexer waits that with a margin."""
    return settings.settle_seconds()


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
    """The record written before a generation's first chunk: the previous record
    (what the index holds whole) plus the marker."""
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
            state=DocState.QUEUED,
            title=op.title,
            source_uri=op.source_uri,
            content_type=op.content_type,
            **update,
        )
    return previous.model_copy(update=update)


def pack_message(body: str) -> str | None:
    packed = base64.b64encode(zlib.compress(body.encode(), 6)).decode()
    return packed if len(packed) <= MAX_PACKED_CHARS else None


def unpack_message(packed: str) -> str:
    return zlib.decompress(base64.b64decode(packed)).decode()
