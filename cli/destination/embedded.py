"""The embedded destination: this machine's embedded queue and status table.

The queue is shared with any ``rag serve`` on the same data folder. If a server
is consuming (its heartbeat is fresh) a command only waits; if not, it runs
the indexer in this process until its messages are done. Either way the wait
ends once every document is indexed or failed with its reason.

The one module (with ``cli/local_parts.py``, which builds it) that reads
``parts.embedded_queue``: what only the embedded queue can tell (pending
messages, live consumers, dead letters) stays here.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from cli.destination import (
    SETTLED,
    Backlog,
    DocumentResult,
    ProgressBoard,
    Sent,
    Tick,
    send_delete,
)
from cli.local_parts import LocalParts
from shared.documents import DocState, DocumentStatus
from shared.errors import ConfigurationError
from shared.ingest import IndexOperation

if TYPE_CHECKING:
    from shared.adapters.sqlite.queue import SqliteQueue

HEARTBEAT_S = 2.0
CONSUMER_FRESH_S = 10.0
_POLL_S = 0.25
CHUNK_WATCH_DOCS = 20


class EmbeddedDestination:
    def __init__(self, parts: LocalParts) -> None:
        self.parts = parts

    @property
    def queue(self) -> SqliteQueue:
        queue = self.parts.embedded_queue
        if queue is None:  # destination_for chose this kind from the same settings
            raise ConfigurationError("the embedded destination needs the embedded queue")
        return queue

    @property
    def waits(self) -> bool:
        return True

    def indexer_note(self) -> str | None:
        from cli.announce import read_announcement

        note = read_announcement(self.parts.settings.data_dir)
        if note is None:
            return None
        return f"the rag serve at {note.http_url} (pid {note.pid}) indexes"

    async def send(self, message: IndexOperation) -> str:
        status = self.parts.status
        previous = await status.get(message.doc_id)
        # Queued before sent: the indexer's final status can never be overwritten.
        # An indexed document keeps its record: it is the indexer's memory of
        # what is stored (the generation), without which a change of access list
        # alone would re-embed the whole document instead of re-labelling it.
        if previous is None or previous.state is not DocState.INDEXED:
            await status.put(
                DocumentStatus(
                    doc_id=message.doc_id,
                    state=DocState.QUEUED,
                    title=message.title,
                    content_type=message.content_type,
                    groups=message.groups,
                )
            )
        return await self.queue.send(message.model_dump_json(exclude_none=True))

    async def settled(self, doc_id: str) -> bool:
        status = await self.parts.status.get(doc_id)
        return status is not None and status.state in SETTLED

    async def failed_before(self, doc_ids: Sequence[str]) -> int:
        failed = 0
        for doc_id in doc_ids:
            status = await self.parts.status.get(doc_id)
            failed += status is not None and status.state == DocState.FAILED
        return failed

    def sent_lines(self, sent: int, deletes: int) -> list[str]:
        return []  # the wait's report says it all

    async def wait(self, sent: Sequence[Sent], progress: ProgressBoard) -> list[DocumentResult]:
        watcher = IndexingProgress(self.parts, sent, progress)
        await watcher.start()
        watching = asyncio.create_task(watcher.watch())
        try:
            return await self.wait_until_done(sent, lambda _: None, watcher.finished)
        finally:
            watching.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watching

    async def delete(self, doc_id: str) -> DocumentResult:
        if await self.parts.status.get(doc_id) is None:
            raise ConfigurationError(f"no document {doc_id!r}: see `rag docs` for the ids")
        message_id = await send_delete(self, doc_id)
        (result,) = await self.wait_until_done([Sent(doc_id, message_id)], lambda _: None)
        return result

    async def reclaim_orphans(self) -> int:
        return await self.queue.reclaim_orphans()

    async def backlog(self, letters: int = 0) -> Backlog:
        counts = await self.queue.counts()
        dead = await self.queue.dead_letters(letters) if letters else []
        return Backlog(
            counts.visible, counts.in_flight, counts.dead, [(d.message_id, d.reason) for d in dead]
        )

    async def reconcile(self, *, dry_run: bool) -> dict[str, Any]:
        from cli.destination.reconciling import reconcile_here

        report, requeued = await reconcile_here(self.parts, dry_run=dry_run)
        if requeued:  # indexed before the command returns
            await self.wait_until_done(requeued, lambda _: None)
        return report

    async def index_until(self, stop: asyncio.Event, consumer_id: str) -> None:
        """Consume the embedded queue with the indexer until ``stop``, with a
        heartbeat so other processes on this data folder know someone is indexing."""
        from cli.destination.local_indexer import run_indexer

        queue = self.queue

        async def beat() -> None:
            while True:
                await queue.heartbeat(consumer_id)
                await asyncio.sleep(HEARTBEAT_S)

        beating = asyncio.create_task(beat())
        try:
            await run_indexer(self.parts, queue, stop)
        finally:
            beating.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await beating
            with contextlib.suppress(Exception):
                await queue.forget_consumer(consumer_id)

    async def wait_until_done(
        self,
        sent: Sequence[Sent],
        tick: Tick,
        finished: Callable[[list[Sent]], None] = lambda _: None,
    ) -> list[DocumentResult]:
        """Wait for every sent message to leave the embedded queue, indexing in this
        process whenever no ``rag serve`` is consuming. ``tick`` gets how many
        finished, ``finished`` which ones."""
        queue = self.queue
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
                    worker = asyncio.create_task(self.index_until(stop, consumer))
                elif worker is not None and worker.done():
                    worker.result()  # surface the indexer's crash instead of waiting forever
                await asyncio.sleep(_POLL_S)
        finally:
            if worker is not None:
                stop.set()
                await worker
        return await self.document_results([s.doc_id for s in sent])

    async def document_results(self, doc_ids: Sequence[str]) -> list[DocumentResult]:
        dead = await self._dead_letter_reasons()
        results: list[DocumentResult] = []
        for doc_id in doc_ids:
            status = await self.parts.status.get(doc_id)
            if status is None or status.state == DocState.QUEUED:
                reason = dead.get(doc_id, "the indexer left no status for this document")
                results.append(DocumentResult(doc_id, DocState.FAILED.value, 0, reason))
            else:
                results.append(
                    DocumentResult(doc_id, status.state.value, status.chunk_count, status.reason)
                )
        return results

    async def _dead_letter_reasons(self) -> dict[str, str]:
        reasons: dict[str, str] = {}
        for letter in await self.queue.dead_letters():
            with contextlib.suppress(ValueError, TypeError, AttributeError):
                doc_id = json.loads(letter.body).get("doc_id")
                reasons.setdefault(str(doc_id), f"dead-lettered: {letter.reason}")
        return reasons


class IndexingProgress:
    """Bytes and documents finished, plus chunks written so far: a big PDF
    moves the chunk count while its bytes wait for the whole document."""

    def __init__(self, parts: LocalParts, sent: Sequence[Sent], progress: ProgressBoard) -> None:
        self._parts = parts
        self._progress = progress
        self._docs = len(sent)
        self._done: list[Sent] = []
        self._pending = {s.doc_id for s in sent}
        self._baseline: dict[str, int] = {}
        self._task = progress.add_task(
            "indexing", total=sum(s.size for s in sent) or len(sent), detail=""
        )

    async def start(self) -> None:
        for doc_id in list(self._pending)[:CHUNK_WATCH_DOCS]:
            self._baseline[doc_id] = await self._written(doc_id)

    async def _written(self, doc_id: str) -> int:
        return sum((await self._parts.index.generations(doc_id)).values())

    def finished(self, done: list[Sent]) -> None:
        self._done.extend(done)
        for s in done:
            self._pending.discard(s.doc_id)
            self._baseline.pop(s.doc_id, None)
        advance = sum(s.size for s in done) if any(s.size for s in done) else len(done)
        # The count moves now, not on the next tick: piped, the last line drawn
        # is the only one a reader sees.
        self._progress.update(self._task, advance=advance, detail=self._detail(0))

    def _detail(self, written: int) -> str:
        line = f"{len(self._done)}/{self._docs} documents"
        # Chunks show only once some are written: the indexer writes a
        # document's chunks after embedding them all, so a "0" said nothing.
        return f"{line}, {written} chunks written so far" if written else line

    async def watch(self) -> None:
        while True:
            written = 0
            for doc_id, base in list(self._baseline.items()):
                written += max(0, await self._written(doc_id) - base)
            self._progress.update(self._task, detail=self._detail(written))
            await asyncio.sleep(1.0)
