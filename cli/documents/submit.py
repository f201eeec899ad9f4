"""``rag ingest``: send files to the ingest queue, then (locally) wait for them.

Locally the embedded queue is shared with any ``rag serve`` on the same data
folder. If a server is consuming (its heartbeat is fresh) we only wait; if
not, we run the indexer in this process until our messages are done. Either
way the command returns once every document is indexed or failed with its
reason.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from cli.documents.manifest import Manifest
from cli.files import SourceFile, build_index_message, manifest_digest
from cli.local_parts import LocalParts
from shared.documents import DocState
from shared.errors import ConfigurationError
from shared.ingest import DeleteOperation, IndexOperation, MetadataValue

HEARTBEAT_S = 2.0
CONSUMER_FRESH_S = 10.0
_POLL_S = 0.25


@dataclass(frozen=True)
class Sent:
    doc_id: str
    message_id: str
    size: int = 0  # bytes of the file, for progress


@dataclass(frozen=True)
class DocumentResult:
    doc_id: str
    state: str
    chunks: int = 0
    reason: str | None = None


Tick = Callable[[int], None]


# An unchanged file in one of these states is not sent again (a failed one
# would only fail again: `--force` re-sends it).
SETTLED = (DocState.INDEXED, DocState.FAILED)


async def is_unchanged(parts: LocalParts, manifest: Manifest, doc_id: str, digest: str) -> bool:
    if manifest.digest(doc_id) != digest:
        return False
    from cli.destination import destination_for  # (it builds on this module)

    return await destination_for(parts).settled(doc_id)


def check_sources(manifest: Manifest, files: Sequence[SourceFile]) -> None:
    """Refuse (before sending anything) a file whose id already belongs to
    another file that still exists: it would silently replace that document."""
    for source in files:
        previous = manifest.source(source.doc_id)
        here = source.path.resolve()
        if previous is None or Path(previous) == here or not Path(previous).exists():
            continue
        folder = here.parent.name or "b"
        raise ConfigurationError(
            f"document id {source.doc_id!r} already belongs to {previous}; "
            f"{source.path} would silently replace it. To keep both, give this run "
            f"an id prefix: --id-prefix {folder}/ (id {folder}/{source.doc_id}); "
            f"to replace it, `rag delete {source.doc_id}` first"
        )


async def send_one(parts: LocalParts, message: IndexOperation) -> str:
    from cli.destination import destination_for  # (it builds on this module)

    return await destination_for(parts).send(message)


async def send_delete(parts: LocalParts, doc_id: str) -> str:
    """Queue a delete and forget the file's digest, so a later ingest re-sends it."""
    message_id = await parts.queue.send(DeleteOperation(doc_id=doc_id).model_dump_json())
    manifest = Manifest.load(parts.settings.data_dir)
    manifest.forget(doc_id)
    manifest.save()
    return message_id


async def send_files(
    parts: LocalParts,
    files: Sequence[SourceFile],
    *,
    force: bool = False,
    metadata: dict[str, MetadataValue] | None = None,
    groups: list[str] | None = None,
    tick: Tick = lambda _: None,
) -> tuple[list[Sent], list[str]]:
    """Send every changed file; returns (sent, unchanged doc ids). Unchanged
    means the same bytes as last sent and (locally) indexed or failed; ``tick``
    gets each file's size in bytes."""
    manifest = Manifest.load(parts.settings.data_dir)
    check_sources(manifest, files)
    sent: list[Sent] = []
    unchanged: list[str] = []
    for source in files:
        data = await asyncio.to_thread(source.path.read_bytes)
        digest = manifest_digest(data, groups)
        if not force and await is_unchanged(parts, manifest, source.doc_id, digest):
            unchanged.append(source.doc_id)
        else:
            message = build_index_message(
                source.doc_id, data, source.content_type, metadata=metadata, groups=groups
            )
            sent.append(Sent(source.doc_id, await send_one(parts, message), len(data)))
            manifest.record(source.doc_id, digest, source.path)
            manifest.save()
        tick(len(data))
    return sent, unchanged


def vanished(manifest: Manifest, folders: Sequence[Path]) -> list[str]:
    """Ids of documents ingested from under ``folders`` whose files are gone
    (``rag ingest --sync``)."""
    gone: list[str] = []
    for folder in folders:
        gone.extend(
            doc_id
            for doc_id, source in sorted(manifest.under(folder).items())
            if not source.exists()
        )
    return gone


async def wait_until_done(
    parts: LocalParts,
    sent: Sequence[Sent],
    tick: Tick,
    finished: Callable[[list[Sent]], None] = lambda _: None,
) -> list[DocumentResult]:
    """Wait for every sent message to leave the embedded queue, indexing in this
    process whenever no ``rag serve`` is consuming. ``tick`` gets how many
    finished, ``finished`` which ones."""
    queue = parts.embedded_queue
    if queue is None:
        raise ConfigurationError("waiting for the indexer needs the embedded queue")
    by_id = {s.message_id: s for s in sent}
    pending = set(by_id)
    worker: asyncio.Task[None] | None = None
    stop = asyncio.Event()
    try:
        while pending:
            still = {m for m in pending if await queue.is_pending(m)}
            tick(len(pending) - len(still))
            finished([by_id[m] for m in pending - still])
            pending = still
            if not pending:
                break
            serving = await queue.live_consumers(CONSUMER_FRESH_S) > 0
            if worker is None and not serving:
                consumer = f"ingest-{os.getpid()}"
                worker = asyncio.create_task(run_local_indexer(parts, stop, consumer))
            elif worker is not None and worker.done():
                worker.result()  # surface the indexer's crash instead of waiting forever
            await asyncio.sleep(_POLL_S)
    finally:
        if worker is not None:
            stop.set()
            await worker
    return await document_results(parts, [s.doc_id for s in sent])


async def document_results(parts: LocalParts, doc_ids: Sequence[str]) -> list[DocumentResult]:
    dead = await _dead_letter_reasons(parts)
    results: list[DocumentResult] = []
    for doc_id in doc_ids:
        status = await parts.status.get(doc_id)
        if status is None or status.state == DocState.QUEUED:
            reason = dead.get(doc_id, "the indexer left no status for this document")
            results.append(DocumentResult(doc_id, DocState.FAILED.value, 0, reason))
        else:
            results.append(
                DocumentResult(doc_id, status.state.value, status.chunk_count, status.reason)
            )
    return results


async def _dead_letter_reasons(parts: LocalParts) -> dict[str, str]:
    queue = parts.embedded_queue
    if queue is None:
        return {}
    reasons: dict[str, str] = {}
    for letter in await queue.dead_letters():
        with contextlib.suppress(ValueError, TypeError, AttributeError):
            doc_id = json.loads(letter.body).get("doc_id")
            reasons.setdefault(str(doc_id), f"dead-lettered: {letter.reason}")
    return reasons


async def run_local_indexer(parts: LocalParts, stop: asyncio.Event, consumer_id: str) -> None:
    """Consume the embedded queue with the indexer until ``stop``, with a
    heartbeat so other processes on this data folder know someone is indexing."""
    from cli.destination.local_indexer import run_indexer

    queue = parts.embedded_queue
    if queue is None:
        raise ConfigurationError("the in-process indexer consumes the embedded queue only")

    async def beat() -> None:
        while True:
            await queue.heartbeat(consumer_id)
            await asyncio.sleep(HEARTBEAT_S)

    beating = asyncio.create_task(beat())
    try:
        await run_indexer(parts, stop)
    finally:
        beating.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await beating
        with contextlib.suppress(Exception):
            await queue.forget_consumer(consumer_id)
