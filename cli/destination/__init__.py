"""Where ``rag ingest`` and ``rag delete`` send documents, and how they learn
what became of them: one :class:`Destination`, two kinds.

    EmbeddedDestination  this machine's embedded queue and status table; the
                         ``rag serve`` on the data folder indexes, else this
                         process does while it waits
    StackDestination     a deployed stack's SQS queue (``--stack`` or the
                         ``RAG_QUEUE__*`` settings); its indexer writes the
                         status table we read, when there is one

The commands ask the destination instead of checking which kind it is.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence
from typing import TYPE_CHECKING, Protocol

from rich.console import Console
from rich.markup import escape

from cli.documents.submit import SETTLED, DocumentResult, Sent, send_delete, wait_until_done
from cli.local_parts import LocalParts
from shared.documents import DocState, DocumentStatus
from shared.errors import ConfigurationError
from shared.ingest import IndexOperation

if TYPE_CHECKING:
    from rich.progress import Progress

console = Console(soft_wrap=True)


class Destination(Protocol):
    parts: LocalParts

    @property
    def waits(self) -> bool:
        """Whether the outcome of what was sent can be waited for."""
        ...

    async def send(self, message: IndexOperation) -> str:
        """Send one index message; its message id."""
        ...

    async def settled(self, doc_id: str) -> bool:
        """Whether an unchanged file needs no re-send (its document settled)."""
        ...

    async def failed_before(self, doc_ids: Sequence[str]) -> int:
        """How many of these (unchanged) documents failed last time, if known."""
        ...

    def say_sent(self, sent: int, deletes: int) -> None:
        """What the user is told once everything is sent."""
        ...

    async def wait(self, sent: Sequence[Sent], progress: Progress) -> list[DocumentResult]:
        """Wait (bounded) for the outcome of every message sent."""
        ...

    async def delete(self, doc_id: str) -> bool:
        """Delete one document, saying what happened; False if it failed."""
        ...


def destination_for(parts: LocalParts) -> Destination:
    if parts.embedded_queue is not None:
        return EmbeddedDestination(parts)
    return StackDestination(parts)


class EmbeddedDestination:
    def __init__(self, parts: LocalParts) -> None:
        self.parts = parts

    @property
    def waits(self) -> bool:
        return True

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
        return await self.parts.queue.send(message.model_dump_json(exclude_none=True))

    async def settled(self, doc_id: str) -> bool:
        status = await self.parts.status.get(doc_id)
        return status is not None and status.state in SETTLED

    async def failed_before(self, doc_ids: Sequence[str]) -> int:
        failed = 0
        for doc_id in doc_ids:
            status = await self.parts.status.get(doc_id)
            failed += status is not None and status.state == DocState.FAILED
        return failed

    def say_sent(self, sent: int, deletes: int) -> None:
        return None  # the wait's report says it all

    async def wait(self, sent: Sequence[Sent], progress: Progress) -> list[DocumentResult]:
        watcher = IndexingProgress(self.parts, sent, progress)
        await watcher.start()
        watching = asyncio.create_task(watcher.watch())
        try:
            return await wait_until_done(self.parts, sent, lambda _: None, watcher.finished)
        finally:
            watching.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watching

    async def delete(self, doc_id: str) -> bool:
        if await self.parts.status.get(doc_id) is None:
            raise ConfigurationError(f"no document {doc_id!r}: see `rag docs` for the ids")
        message_id = await send_delete(self.parts, doc_id)
        with console.status(f"deleting {escape(doc_id)}…"):
            (result,) = await wait_until_done(
                self.parts, [Sent(doc_id, message_id)], lambda _: None
            )
        if result.state == DocState.DELETED:
            console.print(f"deleted {escape(doc_id)}")
            return True
        console.print(f"[red]{escape(doc_id)}: {result.state}: {escape(result.reason or '')}[/red]")
        return False


class StackDestination:
    def __init__(self, parts: LocalParts) -> None:
        self.parts = parts

    @property
    def waits(self) -> bool:
        return bool(self.parts.settings.status.table)  # the deployed indexer's records

    async def send(self, message: IndexOperation) -> str:
        from cli.destination.stack_queue import send_to_stack

        return await send_to_stack(self.parts.settings, message)

    async def settled(self, doc_id: str) -> bool:
        return True  # the same bytes as last sent: the stack has them

    async def failed_before(self, doc_ids: Sequence[str]) -> int:
        return 0  # not known here

    def say_sent(self, sent: int, deletes: int) -> None:
        console.print(f"sent {sent} document(s) to {self.parts.settings.queue.queue_url}")
        if deletes:
            console.print(f"sent {deletes} delete(s) (files gone from the folder)")

    async def wait(self, sent: Sequence[Sent], progress: Progress) -> list[DocumentResult]:
        from cli.destination.stack_wait import wait_for_stack

        task = progress.add_task("indexing", total=len(sent), detail="")
        return await wait_for_stack(self.parts.status, sent, lambda n: progress.advance(task, n))

    async def delete(self, doc_id: str) -> bool:
        await send_delete(self.parts, doc_id)
        console.print(f"delete of {escape(doc_id)} sent")
        return True


class IndexingProgress:
    """Bytes and documents finished, plus chunks written so far: a big PDF
    moves the chunk count while its bytes wait for the whole document."""

    def __init__(self, parts: LocalParts, sent: Sequence[Sent], progress: Progress) -> None:
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


CHUNK_WATCH_DOCS = 20
