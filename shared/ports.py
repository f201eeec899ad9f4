"""The ports: one small Protocol per outside system.

Real adapters live in ``shared.adapters`` (one module each); fakes for tests
live in ``tests/``. Services depend on these Protocols only.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from shared.access import Access
from shared.documents import DocumentStatus, EmbeddedChunk, SearchHit
from shared.protocol import Filters as Filters  # re-export: what the index adapters take
from shared.protocol import ServerEvent as ServerEvent  # re-export for sinks
from shared.protocol import StopReason

if TYPE_CHECKING:
    from shared.documents import Vector


@runtime_checkable
class VectorIndex(Protocol):
    """Chunks with vectors, searchable by k-NN and keywords.

    Writes never choose ids and never force a refresh (Amazon OpenSearch
    Serverless forbids both), so a write may become searchable only later.
    """

    async def ensure_index(self, dimension: int) -> None:
        """Create the index if missing (idempotent, race-safe); raise
        DimensionMismatch if it exists with another vector size."""

    async def write(self, chunks: Sequence[EmbeddedChunk]) -> None:
        """Bulk-write; raise IndexWriteError listing failed items."""

    async def generations(self, doc_id: str) -> dict[str, int]:
        """Chunk count per stored generation of one document."""

    async def doc_ids(self) -> list[str]:
        """Every document id that has chunks in the index, sorted (for the
        reconciler; like any search, it may lag recent writes)."""

    async def chunk_ids(self, doc_id: str, except_generation: str | None = None) -> list[str]:
        """Store ids of the document's (searchable) chunks, except that generation's."""

    async def delete_chunks(self, store_ids: Sequence[str]) -> int:
        """Delete chunks by store id (ids already gone are fine). The indexer
        deletes only ids it saw before its own write: a worker that stalled
        past its lease can then never delete a newer worker's chunks."""

    async def set_groups(self, doc_id: str, groups: Sequence[str] | None) -> int:
        """Re-label every stored chunk of a document with a new access list, in
        place (vectors untouched). Returns how many chunks were re-labelled."""

    async def knn_search(
        self, vector: Vector, k: int, filters: Filters, access: Access
    ) -> list[SearchHit]:
        """The ``k`` nearest chunks among those ``access`` may read and ``filters``
        select: both are applied before ranking, never after."""

    async def keyword_search(
        self,
        text: str,
        k: int,
        filters: Filters,
        access: Access,
        expansion: Sequence[tuple[str, float]] = (),
    ) -> list[SearchHit]:
        """BM25 over the chunks ``access`` may read and ``filters`` select. Each
        ``expansion`` word adds its weight x its BM25 to a chunk's score (the
        question's words weigh 1), and a chunk with only such words matches."""

    async def readable(self, doc_ids: Sequence[str], access: Access) -> set[str]:
        """Which of these documents ``access`` may read now (missing ones are not)."""

    async def metadata_keys(self) -> frozenset[str]:
        """Every metadata key some stored chunk carries (none before the index
        exists): tells a filter on an unknown field from one that matches nothing."""

    async def close(self) -> None: ...


class StatusStore(Protocol):
    """Per-document status records and leases, read and written consistently by doc id."""

    async def put(self, status: DocumentStatus, fence: str | None = None) -> None:
        """Write the record. One carrying a ``doc_version`` is written only if the stored
        record has none, an older or equal one, or is an expired tombstone; otherwise
        raise StaleVersion (a conditional write, atomic in the store). One without is
        written unless the stored one is newer (``updated_at``): a slow, older write
        arriving last never undoes a newer outcome.

        ``fence``: the lease owner token the writer holds. The write then also
        requires that the document's lease is still held by it (checked
        atomically with the write); else LeaseLost, and nothing is written."""

    async def get(self, doc_id: str) -> DocumentStatus | None: ...

    async def list(self, limit: int = 1000) -> list[DocumentStatus]:
        """The ``limit`` most recently updated records, newest first."""

    async def acquire_lease(self, doc_id: str, owner: str, ttl_s: float) -> bool:
        """Take the document's lease for ``ttl_s`` seconds, or renew it if ``owner``
        holds it. False while another owner's lease has not expired."""

    async def renew_lease(self, doc_id: str, owner: str, ttl_s: float) -> bool:
        """Extend the lease for ``ttl_s`` only if ``owner`` still holds it (even
        expired); False once another worker took it or it was released: a
        worker never takes back a document it lost."""

    async def release_lease(self, doc_id: str, owner: str) -> None:
        """Give the lease up (a no-op unless ``owner`` still holds it)."""


class Embedder(Protocol):
    @property
    def model_id(self) -> str:
        """Stable name; part of each chunk's generation."""

    @property
    def dimension(self) -> int: ...

    async def embed_documents(self, texts: Sequence[str]) -> Vector:
        """Shape (len(texts), dimension), L2-normalised float32."""

    async def embed_query(self, text: str) -> Vector:
        """Shape (dimension,), L2-normalised float32."""


class TokenCounter(Protocol):
    """Tokenises text as the embedding model does (for chunk sizing)."""

    def token_spans(self, text: str) -> list[tuple[int, int]]:
        """Character span of each token, special tokens excluded."""


@dataclass(frozen=True)
class GenerationParams:
    max_new_tokens: int = 512
    temperature: float = 0.6
    top_p: float = 0.9
    stop: tuple[str, ...] = ()
    repetition_penalty: float = 1.0  # 1.0 = off


@dataclass(frozen=True)
class ModelToken:
    text: str


@dataclass(frozen=True)
class ModelFinish:
    stop_reason: StopReason
    prompt_tokens: int | None = None
    completion_tokens: int | None = None


ModelEvent = ModelToken | ModelFinish


class ChatModel(Protocol):
    """One streaming method. Cancel by leaving the loop: the caller closes the
    iterator (``aclose``) and the adapter stops generating within one token."""

    @property
    def family(self) -> str:
        """Prompt template family: "llama2", "chatml", "llama3"."""

    def stream(self, prompt: str, params: GenerationParams) -> AsyncIterator[ModelEvent]:
        """Yield ModelToken events, then exactly one ModelFinish. Raise ModelError."""
        ...

    def count_tokens(self, text: str) -> int:
        """Approximate prompt size in the model's tokens (for context budgets)."""
        ...


class ConnectionSink(Protocol):
    """Where server events for one WebSocket connection go."""

    async def send(self, event: ServerEvent) -> None:
        """Deliver one event; raise ConnectionGone if the client has left."""


@dataclass(frozen=True)
class QueueMessage:
    message_id: str
    receipt: str
    body: str
    receive_count: int = 1


class Queue(Protocol):
    async def send(self, body: str) -> str:
        """Enqueue; returns the message id."""

    async def receive(
        self, max_messages: int, wait_seconds: float, visibility_timeout_s: int
    ) -> list[QueueMessage]: ...

    async def delete(self, message: QueueMessage) -> None: ...

    async def extend(self, message: QueueMessage, visibility_timeout_s: int) -> None:
        """Keep a message invisible while a long document is processed."""

    async def release(self, message: QueueMessage) -> None:
        """Make a message visible again now (graceful shutdown)."""


@dataclass(frozen=True)
class PoisonReason:
    """Why a message goes to the dead letters, for the operator who finds it there."""

    reason: str
    error_code: str
    doc_id: str | None = None


class DeadLetters(Protocol):
    """Where poison messages go: body unchanged, next to why (SQS: the DLQ with
    message attributes; embedded: the queue's dead-letter table)."""

    async def send(self, message: QueueMessage, why: PoisonReason) -> None: ...


class BlobStore(Protocol):
    """Large document bodies referenced by ingest messages (S3)."""

    async def get(self, bucket: str, key: str, version_id: str | None, max_bytes: int) -> bytes:
        """Raise DocumentTooLarge past max_bytes, DocumentError if missing."""
