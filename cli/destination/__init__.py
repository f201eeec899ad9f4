"""Where documents go, and how the CLI learns what became of them: one
:class:`Destination`, two kinds, chosen once per command by :func:`destination_for`.

    EmbeddedDestination  (embedded.py) this machine's embedded queue and status
                         table; the ``rag serve`` on the data folder indexes,
                         else this process does while it waits
    StackDestination     (stack.py) a deployed stack's SQS queue (``--stack`` or
                         the ``RAG_QUEUE__*`` settings); its indexer writes the
                         status table we read, when there is one

The commands (ingest, delete, docs, reconcile, serve and its document
endpoints) ask the destination for whatever differs between the two instead of
checking which kind it is: only ``embedded.py`` reads the embedded queue
(``tests/test_layout.py`` checks it). It says nothing itself: the commands
word what it returns, and a wait reports to a :class:`ProgressBoard` (rich's
``Progress`` in the terminal). Kept free of rich, and of the services at
import, so ``rag docs`` stays quick.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from cli.manifest import Manifest
from shared.documents import DocState
from shared.ingest import DeleteOperation, IndexOperation

if TYPE_CHECKING:
    from cli.local_parts import LocalParts


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


@dataclass(frozen=True)
class Backlog:
    """The queue as this machine sees it: messages waiting, being indexed,
    dead-lettered (the newest few, with their reasons)."""

    visible: int
    in_flight: int
    dead: int
    dead_letters: list[tuple[str, str]]  # (message id, reason)


Tick = Callable[[int], None]


class ProgressBoard(Protocol):
    """Where a wait shows how far it has got: the part of rich's ``Progress``
    the destinations use (the terminal is the command's business)."""

    def add_task(self, description: str, *, total: float | None, detail: str) -> Any: ...

    def update(self, task_id: Any, *, advance: float | None = None, detail: str = "") -> None: ...

    def advance(self, task_id: Any, advance: float = 1) -> None: ...


# An unchanged file in one of these states is not sent again (a failed one
# would only fail again: `--force` re-sends it).
SETTLED = (DocState.INDEXED, DocState.FAILED)


class Destination(Protocol):
    parts: LocalParts

    @property
    def waits(self) -> bool:
        """Whether the outcome of what was sent can be waited for."""
        ...

    def indexer_note(self) -> str | None:
        """Who indexes what is sent, when the user should know (a ``rag serve``)."""
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

    def sent_lines(self, sent: int, deletes: int) -> list[str]:
        """What the user is told once everything is sent."""
        ...

    async def wait(self, sent: Sequence[Sent], progress: ProgressBoard) -> list[DocumentResult]:
        """Wait (bounded) for the outcome of every message sent."""
        ...

    async def delete(self, doc_id: str) -> DocumentResult | None:
        """Delete one document: what became of it, or None where the delete is
        only sent (a stack's indexer carries it out later)."""
        ...

    async def reclaim_orphans(self) -> int:
        """Put back messages held by a process that is gone; how many."""
        ...

    async def backlog(self, letters: int = 0) -> Backlog | None:
        """The queue's counts and its newest ``letters`` dead letters (None:
        not known from here)."""
        ...

    async def reconcile(self, *, dry_run: bool) -> dict[str, Any]:
        """Repair drift between the status records and the index; the report."""
        ...

    async def index_until(self, stop: asyncio.Event, consumer_id: str) -> None:
        """Index what is sent until ``stop``, where this process is the indexer
        (``rag serve``); return at once where another one is."""
        ...


def destination_for(parts: LocalParts, indexer_function: str | None = None) -> Destination:
    """The embedded queue of the settings, else the stack's (its indexer
    function, when given, reconciles)."""
    if indexer_function is None and parts.settings.queue.backend == "embedded":
        from cli.destination.embedded import EmbeddedDestination

        return EmbeddedDestination(parts)
    from cli.destination.stack import StackDestination

    return StackDestination(parts, indexer_function)


async def send_delete(destination: Destination, doc_id: str) -> str:
    """Queue a delete and forget the file's digest, so a later ingest re-sends it."""
    parts = destination.parts
    message_id = await parts.queue.send(DeleteOperation(doc_id=doc_id).model_dump_json())
    manifest = Manifest.load(parts.settings.data_dir)
    manifest.forget(doc_id)
    manifest.save()
    return message_id
