"""The indexer's transport-free core: one queue message in, the index made to match.

    parse → lease the doc id (else: busy) → stale version? (acknowledge)
      → fetch body (inline or S3, size-limited) → load → chunk → generation
      → recorded whole already? → no-op (finish a pending clean-up)
      → else start embedding the first group, and meanwhile wait until earlier
        writes are searchable → writing marker
        → write (embedding the next group) → status indexed → delete other generations
    → status record (indexed / deleted / failed with reason and error code)

Idempotency rests on the generation (a hash of the body, its metadata and
everything that shapes chunks and vectors), never on store ids: re-sending the
same document changes nothing, and a crash anywhere converges on the next
delivery. The status record, not the index's lagging search, is the memory of
what the index holds (see ``records`` and ``lease``). Failures are classified
for the transports: *poison* (the message or document itself is unusable:
retrying won't help), *retry* (anything else), *busy* (another worker holds
the document) and *stale* (older than the version applied: acknowledged).
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

from services.indexer.disposition import Outcome, Verdict
from services.indexer.lease import DocLease, DocumentBusy, delete_seen
from services.indexer.records import (
    cleaned_record,
    confirmed_record,
    deleted_record,
    failed_record,
    indexed_record,
    is_current,
    newest_version,
    settled_at,
    writing_record,
)
from shared.chunking import chunk_document, settings_fingerprint
from shared.context_header import HeaderBuilder
from shared.documents import (
    Chunk,
    DocumentStatus,
    EmbeddedChunk,
    LoadedDocument,
    Vector,
    content_generation,
    is_stale,
)
from shared.errors import (
    DocumentError,
    DocumentTooLarge,
    InvalidMessage,
    LeaseLost,
    RagError,
    StaleVersion,
)
from shared.ingest import DeleteOperation, IndexOperation, parse_ingest_message
from shared.ports import BlobStore, Embedder, QueueMessage, StatusStore, TokenCounter, VectorIndex
from shared.settings import Settings

log = logging.getLogger("services.indexer")

# (body, content_type, name hint such as the S3 key) → loaded text
Loader = Callable[[bytes, str | None, str | None], LoadedDocument]
# Chunks embedded and written per round: bounds memory for very long documents.
WRITE_GROUP = 256


def is_poison(error: BaseException) -> bool:
    return isinstance(error, InvalidMessage | DocumentError)


def doc_id_hint(body: str) -> str | None:
    """The doc id of a message that failed validation, if one can be read at all."""
    try:
        raw = json.loads(body)
    except ValueError:
        return None
    doc_id = raw.get("doc_id") if isinstance(raw, dict) else None
    return doc_id if isinstance(doc_id, str) and 0 < len(doc_id) <= 512 else None


def file_name_hint(op: IndexOperation) -> str:
    """The name whose extension tells the type when content_type is absent."""
    candidates = [op.s3.key if op.s3 is not None else None, op.source_uri, op.doc_id]
    for name in candidates:
        if name and "." in name.rstrip("/").rsplit("/", 1)[-1]:
            return name
    return op.doc_id


def _forget(task: asyncio.Task[Any]) -> None:
    """Cancel ``task`` if it still runs; else mark its exception as seen (the
    caller failed first, or already awaited it)."""
    if not task.done():
        task.cancel()
    elif not task.cancelled():
        task.exception()


def generation_of(op: IndexOperation, body: bytes, fingerprint: str) -> str:
    """Title, URI and metadata are stored on every chunk, so they are part of it too."""
    described = json.dumps(
        [op.title, op.source_uri, op.content_type, op.metadata], sort_keys=True, default=str
    )
    return content_generation(described.encode() + b"\0" + body, fingerprint)


class _Timer:
    def __init__(self) -> None:
        self.timings: dict[str, float] = {}
        self._start = time.perf_counter()

    def lap(self, name: str, since: float) -> float:
        now = time.perf_counter()
        self.timings[name] = self.timings.get(name, 0.0) + (now - since) * 1000
        return now

    def total(self) -> dict[str, float]:
        self.timings["total"] = (time.perf_counter() - self._start) * 1000
        return self.timings


class KeyedLocks:
    """One lock per doc id, dropped when nobody holds or waits for it.

    Messages of one document in one process wait for each other here rather
    than bounce off the document's lease (which keeps other processes out).
    """

    def __init__(self) -> None:
        self._locks: dict[str, tuple[asyncio.Lock, int]] = {}

    @asynccontextmanager
    async def hold(self, key: str) -> AsyncIterator[None]:
        lock, users = self._locks.get(key, (asyncio.Lock(), 0))
        self._locks[key] = (lock, users + 1)
        try:
            async with lock:
                yield
        finally:
            lock, users = self._locks[key]
            if users <= 1:
                del self._locks[key]
            else:
                self._locks[key] = (lock, users - 1)

    def __len__(self) -> int:
        return len(self._locks)


class IndexerPipeline:
    def __init__(
        self,
        *,
        settings: Settings,
        index: VectorIndex,
        status: StatusStore,
        embedder: Embedder,
        blobs: BlobStore | None,
        loader: Loader,
        counter: TokenCounter,
    ) -> None:
        self._settings = settings
        self.index = index
        self.status = status
        self.embedder = embedder
        self._blobs = blobs
        self._load = loader
        self._counter = counter
        self._fingerprint = settings_fingerprint(settings.chunking, embedder.model_id)
        self._headers = HeaderBuilder(
            settings.chunking.context_header,
            counter,
            line=settings.chunking.strategy == "words",
        )
        self._doc_locks = KeyedLocks()
        self.settle_s = settings.settle_seconds()
        self._lease_s = settings.indexer.lease_s
        self._tombstone = timedelta(days=settings.indexer.tombstone_days)

    async def start(self) -> None:
        """Create the index if needed; DimensionMismatch here is a start-up error."""
        await self.index.ensure_index(self.embedder.dimension)

    async def process(self, message: QueueMessage) -> Outcome:
        timer = _Timer()
        outcome = Outcome(Verdict.RETRY, message.message_id)
        try:
            op = parse_ingest_message(message.body)
            outcome.doc_id = op.doc_id
            outcome.doc_version = op.doc_version
            # One process serialises its own messages of a document; the lease
            # keeps other processes out.
            async with (
                self._doc_locks.hold(op.doc_id),
                DocLease(self.status, op.doc_id, self._lease_s) as lease,
            ):
                if isinstance(op, DeleteOperation):
                    await self._delete(op, message, outcome, lease, timer)
                else:
                    await self._index(op, message, outcome, lease, timer)
        except DocumentBusy:
            outcome.verdict = Verdict.BUSY
        except StaleVersion:
            outcome.verdict = Verdict.STALE  # lost a race to a newer version at the write
        except Exception as exc:
            error = exc if isinstance(exc, RagError) else RagError(f"unexpected error: {exc!r}")
            outcome.verdict = Verdict.POISON if is_poison(exc) else Verdict.RETRY
            outcome.error = error
            if outcome.doc_id is None:
                outcome.doc_id = doc_id_hint(message.body)
            if outcome.verdict is Verdict.RETRY and not isinstance(exc, RagError):
                log.exception("unexpected failure", extra={"fields": outcome.log_fields()})
            if not isinstance(exc, LeaseLost):  # the document is another worker's now
                await self._record_failure(outcome, message)
        outcome.timings_ms = timer.total()
        return outcome

    async def _delete(
        self,
        op: DeleteOperation,
        message: QueueMessage,
        out: Outcome,
        lease: DocLease,
        timer: _Timer,
    ) -> None:
        previous = await self.status.get(op.doc_id)
        if self._is_stale(previous, op.doc_version, out, delete=True):
            return
        await self._wait_settled(previous, lease, timer)
        out.removed = await delete_seen(self.index, op.doc_id, None, lease)
        out.verdict = Verdict.DELETED
        lease.check()
        record = deleted_record(op, message, previous, self._tombstone)
        await self.status.put(record, fence=lease.owner)

    async def _index(
        self,
        op: IndexOperation,
        message: QueueMessage,
        out: Outcome,
        lease: DocLease,
        timer: _Timer,
    ) -> None:
        """lookup → fetch → same generation? confirm it : (re-label what is served
        → chunk → write the generation → record it and clean up)."""
        t = time.perf_counter()
        previous = await self.status.get(op.doc_id)
        if self._is_stale(previous, op.doc_version, out, delete=False):
            return
        t = timer.lap("lookup", t)
        body = await self._fetch(op)
        t = timer.lap("fetch", t)
        generation = out.generation = generation_of(op, body, self._fingerprint)
        if is_current(previous, generation):
            assert previous is not None
            await self._confirm_current(op, previous, out, lease, timer)
            return
        previous = await self._relabel_served(op, previous, lease)
        chunks = await asyncio.to_thread(self._chunks, op, body, generation)
        timer.lap("chunk", t)
        out.chunk_count = len(chunks)
        version = newest_version(op.doc_version, previous)
        doomed = await self._write_generation(
            op, message, previous, generation, version, chunks, lease, timer
        )
        out.verdict = Verdict.INDEXED
        # The loader's title (HTML <title>, a Markdown heading) when the message gave none.
        title = op.title or next((c.title for c in chunks if c.title), None)
        settled = datetime.now(UTC) + timedelta(seconds=self.settle_s)
        record = indexed_record(
            op,
            message,
            generation,
            len(chunks),
            version,
            settled,
            cleanup_pending=bool(doomed),
            title=title,
        )
        out.removed = await self._record_and_clean(record, doomed, lease, timer)

    def _is_stale(
        self, previous: DocumentStatus | None, version: int | None, out: Outcome, *, delete: bool
    ) -> bool:
        if not is_stale(previous, version, delete=delete, now=datetime.now(UTC)):
            return False
        out.verdict = Verdict.STALE
        out.stored_version = previous.doc_version if previous else None
        return True

    async def _confirm_current(
        self,
        op: IndexOperation,
        previous: DocumentStatus,
        out: Outcome,
        lease: DocLease,
        timer: _Timer,
    ) -> None:
        """A redelivery or a re-send of identical content: nothing to embed. The
        status record (strongly consistent, written only after a whole write)
        is trusted over the index's search, which may lag. A pending clean-up
        is finished, a new access list re-labels, a newer version is recorded."""
        out.chunk_count = previous.chunk_count
        out.verdict = Verdict.UNCHANGED
        if previous.cleanup_pending:
            await self._wait_settled(previous, lease, timer)
            out.removed = await delete_seen(self.index, op.doc_id, previous.generation, lease)
        settled = previous.settled_at
        if previous.groups != op.groups:
            # Only the access list changed: re-label, never re-embed. The status
            # is written after, so a crash in between re-labels again.
            await lease.confirm()
            await self.index.set_groups(op.doc_id, op.groups)
            out.verdict = Verdict.RELABELLED
            # A re-label may rewrite the chunks (AOSS): searches see the copies
            # after the refresh interval, like any write.
            settled = self._settles_from_now(previous)
        record = confirmed_record(previous, op, settled)
        if record is not None:
            await self.status.put(record, fence=lease.owner)

    async def _relabel_served(
        self, op: IndexOperation, previous: DocumentStatus | None, lease: DocLease
    ) -> DocumentStatus | None:
        """New content and a new access list: the chunks still served until the
        new generation replaces them take the new list now, not after."""
        if previous is None or previous.groups == op.groups:
            return previous
        await lease.confirm()
        await self.index.set_groups(op.doc_id, op.groups)
        # The clean-up search must see the re-labelled copies too.
        return previous.model_copy(update={"settled_at": self._settles_from_now(previous)})

    async def _write_generation(
        self,
        op: IndexOperation,
        message: QueueMessage,
        previous: DocumentStatus | None,
        generation: str,
        version: int | None,
        chunks: Sequence[Chunk],
        lease: DocLease,
        timer: _Timer,
    ) -> list[str]:
        """Wait until earlier writes are searchable, note what they left, mark the
        record, write the generation whole. Returns the store ids to clean up."""
        # Embedding writes nothing: the first group is embedded while the
        # settle wait, the lookup and the marker go on, so the embedder is not
        # left idle for those round trips.
        ahead = asyncio.create_task(self._embed(chunks[:WRITE_GROUP]))
        try:
            # From here on the index's searches must be complete for this document:
            # every earlier write (ours, or a crashed worker's) must be searchable.
            await self._wait_settled(previous, lease, timer)
            t = time.perf_counter()
            stored = await self.index.generations(op.doc_id)
            # Everything searchable now predates this write: the chunks to remove.
            # Deleting these ids (never "all but mine" by a later search) keeps a
            # worker that stalls past its lease from deleting its successor's.
            doomed = await self.index.chunk_ids(op.doc_id) if stored else []
            lease.check()
            # The marker: should this worker die from here on, the next one knows a
            # generation may be half-written and waits for it to become searchable.
            marker = writing_record(op, previous, generation, version, message)
            await self.status.put(marker, fence=lease.owner)
            if generation in stored:
                # A partial (or duplicated) copy left by a crash: start it afresh.
                await lease.confirm()
                await self.index.delete_chunks(doomed)
                doomed = []
            timer.lap("lookup", t)
            await self._embed_and_write(chunks, timer, lease, ahead)
        finally:
            _forget(ahead)
        return doomed

    async def _record_and_clean(
        self, record: DocumentStatus, doomed: list[str], lease: DocLease, timer: _Timer
    ) -> int:
        """Record the generation, then delete what was there before it."""
        lease.check()
        await self.status.put(record, fence=lease.owner)
        if not doomed:
            return 0
        t = time.perf_counter()
        await lease.confirm()
        removed = await self.index.delete_chunks(doomed)
        timer.lap("cleanup", t)
        await self.status.put(cleaned_record(record), fence=lease.owner)
        return removed

    def _settles_from_now(self, previous: DocumentStatus) -> datetime | None:
        if self.settle_s <= 0:
            return previous.settled_at
        now = datetime.now(UTC) + timedelta(seconds=self.settle_s)
        return max(now, previous.settled_at) if previous.settled_at else now

    async def _wait_settled(
        self, previous: DocumentStatus | None, lease: DocLease, timer: _Timer
    ) -> None:
        """Sleep until searches see every chunk written for this document so far."""
        until = settled_at(previous, lease.acquired_at, self.settle_s)
        if until is None:
            return
        delay = (until - datetime.now(UTC)).total_seconds()
        if delay > 0:
            t = time.perf_counter()
            await asyncio.sleep(delay)
            timer.lap("settle", t)

    async def _fetch(self, op: IndexOperation) -> bytes:
        limit = self._settings.ingest.max_document_bytes
        inline = op.inline_bytes()
        if inline is not None:
            if len(inline) > limit:
                raise DocumentTooLarge(f"the document is {len(inline)} bytes; the limit is {limit}")
            return inline
        assert op.s3 is not None  # the message model guarantees one body source
        if self._blobs is None:
            raise DocumentError("this indexer has no S3 access configured for s3 bodies")
        return await self._blobs.get(op.s3.bucket, op.s3.key, op.s3.version_id, limit)

    def _chunks(self, op: IndexOperation, body: bytes, generation: str) -> list[Chunk]:
        loaded = self._load(body, op.content_type, file_name_hint(op))
        chunks = chunk_document(
            op.doc_id,
            loaded,
            generation=generation,
            settings=self._settings.chunking,
            counter=self._counter,
            title=op.title,
            source_uri=op.source_uri,
            metadata=op.metadata,
        )
        # The access list is not part of the generation: changing it re-labels.
        return [c.model_copy(update={"groups": op.groups}) for c in chunks]

    async def _embed(self, group: Sequence[Chunk]) -> Vector:
        # The embedder reads each chunk under its title and section path.
        return await self.embedder.embed_documents([self._headers.embedding_text(c) for c in group])

    async def _embed_and_write(
        self,
        chunks: Sequence[Chunk],
        timer: _Timer,
        lease: DocLease,
        ahead: asyncio.Task[Vector],
    ) -> None:
        """Embed group n+1 while group n is being written (``ahead``: group 0's)."""
        pending: asyncio.Task[None] | None = None
        try:
            for first in range(0, len(chunks), WRITE_GROUP):
                group = chunks[first : first + WRITE_GROUP]
                t = time.perf_counter()
                vectors = await (ahead if first == 0 else self._embed(group))
                timer.lap("embed", t)
                if pending is not None:
                    await self._timed(pending, timer)
                embedded = [EmbeddedChunk(c, v) for c, v in zip(group, vectors, strict=True)]
                await lease.confirm()
                pending = asyncio.create_task(self.index.write(embedded))
            if pending is not None:
                await self._timed(pending, timer)
        finally:
            if pending is not None and not pending.done():
                pending.cancel()

    @staticmethod
    async def _timed(task: asyncio.Task[None], timer: _Timer) -> None:
        t = time.perf_counter()
        await task
        timer.lap("write", t)

    async def _record_failure(self, out: Outcome, message: QueueMessage) -> None:
        if out.doc_id is None or out.error is None:
            return
        try:
            previous = await self.status.get(out.doc_id)
            record = failed_record(previous, out.doc_id, out.error, message.message_id)
            await self.status.put(record)
        except Exception as exc:  # the failure itself matters more than its record
            log.warning(
                "could not record a failure status",
                extra={"fields": {"doc_id": out.doc_id, "error": repr(exc)}},
            )
