"""Documents, chunks, search hits and per-document status."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import TYPE_CHECKING

from pydantic import BaseModel, ConfigDict, Field

from shared.ingest import MetadataValue

if TYPE_CHECKING:
    import numpy as np
    from numpy.typing import NDArray

    Vector = NDArray[np.float32]


def __getattr__(name: str) -> object:
    # Vector only annotates: numpy loads when something uses it, not with the
    # document models (`rag docs` and the status records never need it).
    if name == "Vector":
        import numpy as np
        from numpy.typing import NDArray

        return NDArray[np.float32]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


class LoadedDocument(BaseModel):
    """A loader's output: plain text plus where pages and sections begin.

    ``pages`` and ``sections`` are ``(char_offset, value)`` pairs in ascending
    offset order; ``breaks`` are offsets where a chunk boundary is preferred
    (e.g. Markdown headings).
    """

    model_config = ConfigDict(frozen=True)

    text: str
    title: str | None = None
    pages: list[tuple[int, int]] = Field(default_factory=list)
    sections: list[tuple[int, str]] = Field(default_factory=list)
    breaks: list[int] = Field(default_factory=list)


class Chunk(BaseModel):
    """One retrievable piece of a document, as stored in the vector index."""

    model_config = ConfigDict(frozen=True)

    chunk_id: str
    doc_id: str
    generation: str
    ordinal: int = Field(ge=0)
    text: str
    start: int = Field(ge=0, description="Offset of the first character in the loaded text.")
    end: int = Field(ge=0, description="Offset one past the last character.")
    # Small-to-big (ChunkingSettings.context_tokens): the embedder reads the text
    # only up to here; the rest is context for the model and keyword search.
    # None: the embedder reads the whole text.
    embedded_end: int | None = Field(default=None, ge=0)
    page: int | None = None
    section: str | None = None
    title: str | None = None
    source_uri: str | None = None
    metadata: dict[str, MetadataValue] = Field(default_factory=dict)
    # The document's access list (shared.access): None = every authenticated user.
    groups: list[str] | None = None


@dataclass(frozen=True)
class EmbeddedChunk:
    chunk: Chunk
    vector: Vector


@dataclass(frozen=True)
class SearchHit:
    """A retrieved chunk. ``store_id`` is the backend's own id (for deletes)."""

    chunk: Chunk
    score: float
    store_id: str = ""
    rank_sources: tuple[str, ...] = field(default=())


class DocState(StrEnum):
    QUEUED = "queued"
    INDEXED = "indexed"
    FAILED = "failed"
    DELETED = "deleted"


class DocumentStatus(BaseModel):
    """Why a document is (or isn't) searchable. Queryable by doc id.

    Besides the story for operators, the record is the indexer's consistent
    memory of the index (whose searches lag writes): ``generation`` and
    ``chunk_count`` are what the index must hold; ``writing`` names a
    generation a worker began to write and never recorded (it crashed);
    ``settled_at`` is when searches will see every chunk written so far;
    ``cleanup_pending`` says other generations may still be there.
    """

    doc_id: str
    state: DocState
    generation: str | None = None
    chunk_count: int = 0
    reason: str | None = None
    error_code: str | None = None
    title: str | None = None
    source_uri: str | None = None
    content_type: str | None = None
    message_id: str | None = None
    # The access list the stored chunks carry (None: every authenticated user).
    groups: list[str] | None = None
    updated_at: datetime = Field(default_factory=lambda: datetime.now(UTC))
    indexed_at: datetime | None = None
    doc_version: int | None = None  # the producer's version last applied
    writing: str | None = None
    settled_at: datetime | None = None
    cleanup_pending: bool = False
    # A versioned delete's tombstone blocks older index messages until then.
    expires_at: datetime | None = None
    # The ingest message (zlib + base64) when small, so reconcile can re-queue it.
    source_message: str | None = None


def is_stale(
    stored: DocumentStatus | None, version: int | None, *, delete: bool, now: datetime
) -> bool:
    """Whether an update with ``version`` must not change a document stored as ``stored``.

    Unversioned updates always apply (the later processed wins). A versioned
    one applies over an older or equal version (equal: a redelivery of the
    same update), except that a delete's tombstone also blocks index updates
    of its own version, until it expires.
    """
    if version is None or stored is None or stored.doc_version is None:
        return False
    if stored.expires_at is not None and stored.expires_at <= now:
        return False
    if stored.state is DocState.DELETED and not delete:
        return version <= stored.doc_version
    return version < stored.doc_version


def content_generation(content: bytes, settings_fingerprint: str) -> str:
    """Generation = hash of the document bytes and everything that shapes its chunks.

    Changing the chunker or the embedder therefore re-indexes on the next
    delivery, while re-sending identical content is recognised as a no-op.
    """
    h = hashlib.sha256()
    h.update(settings_fingerprint.encode())
    h.update(b"\0")
    h.update(content)
    return h.hexdigest()[:24]


def chunk_id_for(doc_id: str, generation: str, ordinal: int) -> str:
    return hashlib.sha256(f"{doc_id}\0{generation}\0{ordinal}".encode()).hexdigest()[:32]


def version_conflict(stored: DocumentStatus | None, new: DocumentStatus, now: datetime) -> bool:
    """The status stores' write condition: a record carrying a version may not replace
    one with a newer version (an expired tombstone no longer counts)."""
    if new.doc_version is None or stored is None or stored.doc_version is None:
        return False
    if stored.expires_at is not None and stored.expires_at <= now:
        return False
    return stored.doc_version > new.doc_version
