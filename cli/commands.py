"""The async bodies of the CLI commands (``main`` parses options, this does the work)."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from pathlib import Path

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from cli.asking import Asker, InProcessAsker, TerminalSink, WebSocketAsker, connect
from cli.files import SAMPLES_DIR, discover, parse_metadata
from cli.local_parts import LocalParts
from cli.submit import DocumentResult, Sent, send_delete, send_files, wait_until_done
from shared.documents import DocState, DocumentStatus
from shared.errors import ConfigurationError
from shared.settings import Settings

__all__ = ["SAMPLES_DIR", "ask", "delete", "ingest", "list_docs"]
console = Console()


def _progress() -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
    )


async def ingest(
    settings: Settings, targets: Sequence[Path], *, force: bool, meta: list[str], wait: bool
) -> int:
    """Returns how many documents failed."""
    try:
        metadata = parse_metadata(meta)
    except ValueError as exc:
        raise ConfigurationError(str(exc)) from exc
    files, skipped = discover(targets)
    for s in skipped:
        console.print(f"[yellow]skipped {escape(str(s.path))}: {escape(s.reason)}[/yellow]")
    if not files:
        raise ConfigurationError("no supported files to ingest (.txt, .md, .html, .pdf)")
    parts = LocalParts(settings)
    try:
        with _progress() as progress:
            sending = progress.add_task("sending", total=len(files))
            sent, unchanged = await send_files(
                parts,
                files,
                force=force,
                metadata=metadata,
                tick=lambda n: progress.advance(sending, n),
            )
            if unchanged:
                progress.console.print(f"{len(unchanged)} unchanged file(s) skipped")
            if not parts.embedded_queue:
                progress.console.print(
                    f"sent {len(sent)} document(s) to {settings.queue.queue_url}"
                )
                return 0
            if not sent or not wait:
                return 0
            indexing = progress.add_task("indexing", total=len(sent))
            results = await wait_until_done(
                parts, sent, tick=lambda n: progress.advance(indexing, n)
            )
        return _report(results)
    finally:
        await parts.close()


def _report(results: Sequence[DocumentResult]) -> int:
    failed = [r for r in results if r.state != DocState.INDEXED]
    indexed = len(results) - len(failed)
    chunks = sum(r.chunks for r in results)
    console.print(f"[green]{indexed} document(s) indexed[/green] ({chunks} chunks)")
    for r in failed:
        console.print(f"[red]{escape(r.doc_id)}: {r.state}: {escape(r.reason or '')}[/red]")
    return len(failed)


async def ask(
    settings: Settings,
    questions: list[str] | None,
    url: str | None,
    token: str | None,
    k: int | None,
    mode: str | None,
) -> bool:
    """One question (``questions``) or an interactive chat (None). True if all went well."""
    if url:
        async with connect(url, token) as ws:
            return await _ask_all(WebSocketAsker(ws, k, mode), questions)
    parts = LocalParts(settings)
    try:
        asker = InProcessAsker(parts, k, mode)
        await asker.check_documents()
        return await _ask_all(asker, questions)
    finally:
        await parts.close()


async def _ask_all(asker: Asker, questions: list[str] | None) -> bool:
    if questions is not None:
        ok = True
        for question in questions:
            sink = TerminalSink()
            await asker.ask(question, sink)
            ok = ok and not sink.failed
        return ok
    console.print("[dim]Ask a question (empty line or Ctrl-D to quit).[/dim]")
    while True:
        try:
            question = (await asyncio.to_thread(console.input, "[bold]you>[/bold] ")).strip()
        except EOFError:
            return True
        if not question:
            return True
        await asker.ask(question, TerminalSink())


async def list_docs(settings: Settings) -> tuple[list[DocumentStatus], int]:
    parts = LocalParts(settings)
    try:
        statuses = [s for s in await parts.status.list() if s.state != DocState.DELETED]
        queue = parts.embedded_queue
        dead = (await queue.counts()).dead if queue is not None else 0
        return statuses, dead
    finally:
        await parts.close()


async def delete(settings: Settings, doc_id: str) -> bool:
    parts = LocalParts(settings)
    try:
        if parts.embedded_queue and await parts.status.get(doc_id) is None:
            raise ConfigurationError(f"no document {doc_id!r}: see `rag docs` for the ids")
        message_id = await send_delete(parts, doc_id)
        if not parts.embedded_queue:
            console.print(f"delete of {escape(doc_id)} sent")
            return True
        with console.status(f"deleting {escape(doc_id)}…"):
            (result,) = await wait_until_done(parts, [Sent(doc_id, message_id)], lambda _: None)
        if result.state == DocState.DELETED:
            console.print(f"deleted {escape(doc_id)}")
            return True
        console.print(f"[red]{escape(doc_id)}: {result.state}: {escape(result.reason or '')}[/red]")
        return False
    finally:
        await parts.close()
