"""``rag docs``: the documents and their status. Kept free of rich (and of the
query side), so listing stays quick: plain aligned columns, coloured only on
a terminal."""

from __future__ import annotations

import sys
from collections.abc import Sequence

from cli.destination import destination_for
from cli.local_parts import LocalParts
from shared.access import readable_by
from shared.documents import DocState, DocumentStatus
from shared.settings import Settings

_COLOURS = {"indexed": "32", "failed": "31", "queued": "33"}  # ANSI green, red, yellow


async def list_docs(settings: Settings) -> tuple[list[DocumentStatus], int]:
    """(statuses, dead letters); messages held by a process that is gone are
    put back on the queue first, and the user is told."""
    parts = LocalParts(settings)
    destination = destination_for(parts)
    try:
        statuses = [s for s in await parts.status.list() if s.state != DocState.DELETED]
        taken_back = await destination.reclaim_orphans()
        if taken_back:
            print(
                f"{taken_back} message(s) held by a process that is gone were put back on "
                "the queue; the next `rag serve` or `rag ingest` indexes them",
                file=sys.stderr,
            )
        backlog = await destination.backlog()
        return statuses, backlog.dead if backlog else 0
    finally:
        await parts.close()


def _cell(text: str, width: int, colour: str | None) -> str:
    padded = text.ljust(width)
    return f"\x1b[{colour}m{padded}\x1b[0m" if colour else padded


def status_table(statuses: Sequence[DocumentStatus], colour: bool) -> str:
    """One line per document: id, state, chunks, who may read it, updated, reason."""
    header = ("document", "status", "chunks", "readable by", "updated", "reason")
    rows = [
        (
            s.doc_id,
            s.state.value,
            str(s.chunk_count),
            readable_by(s.groups),
            s.updated_at.strftime("%Y-%m-%d %H:%M:%S"),
            " ".join((s.reason or "").split()),
        )
        for s in statuses
    ]
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header) - 1)]
    lines = []
    for n, row in enumerate([header, *rows]):
        tint = _COLOURS.get(row[1]) if colour and n else None
        cells = [_cell(row[i], widths[i], tint if i == 1 else None) for i in range(len(widths))]
        lines.append("  ".join([*cells, row[-1]]).rstrip())
    return "\n".join(lines)
