"""The work of ``rag ingest`` and ``rag delete`` (``command`` parses their
options): files found, sent to the destination, waited for, reported."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from rich.console import Console
from rich.markup import escape

from cli.destination import Destination, DocumentResult, Sent, destination_for, send_delete
from cli.documents.submit import send_files, vanished
from cli.files import (
    SUPPORTED,
    SourceFile,
    discover,
    parse_groups,
    parse_metadata,
)
from cli.local_parts import LocalParts
from cli.manifest import Manifest
from shared.documents import DocState
from shared.errors import ConfigurationError
from shared.ingest import MetadataValue
from shared.settings import Settings

if TYPE_CHECKING:
    from rich.progress import Progress

__all__ = ["delete", "ingest"]
# Results are not wrapped: piped into a file or grep, a line stays one line.
console = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)


def _progress() -> Progress:
    # On stderr, so `rag ingest … > results.txt` keeps only the results.
    from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeElapsedColumn

    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TextColumn("{task.fields[detail]}"),
        TimeElapsedColumn(),
        console=err,
    )


async def ingest(
    settings: Settings,
    targets: Sequence[Path],
    *,
    force: bool,
    meta: list[str],
    wait: bool,
    id_prefix: str = "",
    sync: bool = False,
    groups: str | None = None,
) -> int:
    """Returns how many documents failed. Progress, warnings and errors go to
    stderr; the results (what was indexed, skipped, deleted) to stdout."""
    parts = LocalParts(settings)
    destination = destination_for(parts)
    try:
        if (note := destination.indexer_note()) is not None:
            err.print(f"[dim]{note}[/dim]")
        return await _ingest(
            destination,
            targets,
            force=force,
            meta=meta,
            wait=wait,
            id_prefix=id_prefix,
            sync=sync,
            groups=groups,
        )
    finally:
        await parts.close()


async def _ingest(
    destination: Destination,
    targets: Sequence[Path],
    *,
    force: bool,
    meta: list[str],
    wait: bool,
    id_prefix: str,
    sync: bool,
    groups: str | None,
) -> int:
    try:
        metadata = parse_metadata(meta)
        access = parse_groups(groups)
    except ValueError as exc:
        raise ConfigurationError(str(exc)) from exc
    missing = [t for t in targets if not t.exists()]
    if missing and len(missing) == len(targets):
        raise ConfigurationError(f"no such file or folder: {', '.join(map(str, missing))}")
    files, skipped = discover(targets, id_prefix)
    for s in skipped:
        err.print(f"[yellow]skipped {escape(str(s.path))}: {escape(s.reason)}[/yellow]")
    sync_folders = [t for t in targets if t.is_dir()] if sync else []
    if not files and not sync_folders:
        raise ConfigurationError(f"no supported files to ingest (supported: {SUPPORTED})")
    with _progress() as progress:
        sent, unchanged = await _send(
            destination, files, progress, force=force, metadata=metadata, groups=access
        )
        deletes = [
            Sent(doc_id, await send_delete(destination, doc_id))
            for doc_id in vanished(Manifest.load(destination.parts.settings.data_dir), sync_folders)
        ]
    await _say_unchanged(destination, unchanged)
    for line in destination.sent_lines(len(sent), len(deletes)):
        console.print(line)
    if not (sent or deletes) or not wait or not destination.waits:
        return 0
    with _progress() as progress:
        results = await destination.wait([*sent, *deletes], progress)
    return _report(results)


async def _send(
    destination: Destination,
    files: Sequence[SourceFile],
    progress: Progress,
    *,
    force: bool,
    metadata: dict[str, MetadataValue],
    groups: list[str] | None = None,
) -> tuple[list[Sent], list[str]]:
    total = sum(f.path.stat().st_size for f in files)
    task = progress.add_task("sending", total=total, detail=f"0/{len(files)} files")
    count = 0

    def tick(size: int) -> None:
        nonlocal count
        count += 1
        progress.update(task, advance=size, detail=f"{count}/{len(files)} files")

    return await send_files(
        destination, files, force=force, metadata=metadata, groups=groups, tick=tick
    )


async def _say_unchanged(destination: Destination, unchanged: Sequence[str]) -> None:
    """One summary line each for unchanged files and for unchanged files that
    failed before (not re-sent: they would fail again)."""
    failed_before = await destination.failed_before(unchanged)
    if len(unchanged) > failed_before:
        console.print(f"{len(unchanged) - failed_before} unchanged file(s) skipped")
    if failed_before:
        console.print(
            f"{failed_before} unchanged file(s) that failed before skipped "
            "(reasons: `rag docs`; --force re-sends them)"
        )


def _report(results: Sequence[DocumentResult]) -> int:
    failed = [r for r in results if r.state not in (DocState.INDEXED, DocState.DELETED)]
    indexed = [r for r in results if r.state == DocState.INDEXED]
    deleted = len(results) - len(failed) - len(indexed)
    chunks = sum(r.chunks for r in indexed)
    line = f"[green]{len(indexed)} document(s) indexed[/green] ({chunks} chunks)"
    if deleted:
        line += f", {deleted} deleted (files gone)"
    if failed:
        line += f", [red]{len(failed)} failed[/red]"
    console.print(line)
    for r in failed:
        err.print(f"[red]{escape(r.doc_id)}: {r.state}: {escape(r.reason or '')}[/red]")
    return len(failed)


async def delete(settings: Settings, doc_id: str) -> bool:
    """Delete one document and say what became of it; False if it failed."""
    parts = LocalParts(settings)
    try:
        with console.status(f"deleting {escape(doc_id)}…"):
            result = await destination_for(parts).delete(doc_id)
    finally:
        await parts.close()
    if result is None:
        console.print(f"delete of {escape(doc_id)} sent")
    elif result.state == DocState.DELETED:
        console.print(f"deleted {escape(doc_id)}")
    else:
        console.print(f"[red]{escape(doc_id)}: {result.state}: {escape(result.reason or '')}[/red]")
        return False
    return True
