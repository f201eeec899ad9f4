"""rag: the whole product on this machine, or a deployed stack (--stack).

rag serve                     the chat page, WebSocket API and indexer on one data folder
rag ingest PATH… | --sample   index files and folders (unchanged files are skipped)
rag ask "question"            stream an answer, then its sources
rag chat                      ask follow-up questions in one conversation
rag docs                      every document with its status (and why it failed)
rag delete DOC_ID             remove a document
rag reconcile                 repair drift between status records and the index
rag eval QUESTIONS.jsonl      measure retrieval quality (recall@k, MRR, nDCG@10)
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Coroutine
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from cli import commands
from cli.eval import command as eval_command
from shared.errors import RagError
from shared.settings import Settings, load_settings

T = TypeVar("T")
app = typer.Typer(help=__doc__, no_args_is_help=True, add_completion=False)
console = Console()
err = Console(stderr=True)

DataDir = Annotated[
    Path | None,
    typer.Option("--data-dir", help="Local data folder (default: RAG_DATA_DIR or .rag-data)"),
]
Stack = Annotated[
    str | None,
    typer.Option("--stack", help="Use a deployed Pulumi stack's queue and bucket (e.g. dev)"),
]
Token = Annotated[str | None, typer.Option(help="Token for the deployed API")]
ChunkCount = Annotated[int | None, typer.Option(help="Chunks to retrieve")]
SearchMode = Annotated[str | None, typer.Option(help="knn or hybrid")]


def stack_outputs(stack: str | None) -> dict[str, Any]:
    if not stack:
        return {}
    from cli.stack_outputs import read_stack_outputs

    try:
        return read_stack_outputs(stack, Path.cwd())
    except RagError as exc:
        err.print(f"[red]rag: {escape(str(exc))}[/red]")
        raise typer.Exit(1) from None


def settings_for(data_dir: Path | None, stack: str | None = None) -> Settings:
    overrides: dict[str, Any] = {}
    if data_dir is not None:
        overrides["data_dir"] = data_dir
    if stack:
        from cli.stack_outputs import settings_overrides

        overrides.update(settings_overrides(stack_outputs(stack)))
    return load_settings(**overrides)


def stack_websocket_url(url: str | None, stack: str | None) -> str | None:
    if url or not stack:
        return url
    from cli.stack_outputs import WEBSOCKET_KEYS, pick

    found = pick(stack_outputs(stack), WEBSOCKET_KEYS)
    if found is None:
        err.print(f"[red]rag: stack {stack!r} has no websocket_url output[/red]")
        raise typer.Exit(1)
    return found


def run(coro: Coroutine[Any, Any, T]) -> T:
    """Run a command; product errors become a clear message and exit code 1."""
    try:
        return asyncio.run(coro)
    except RagError as exc:
        err.print(f"[red]rag: {escape(str(exc))}[/red]")
        raise typer.Exit(1) from None
    except KeyboardInterrupt:
        err.print("[yellow](stopped)[/yellow]")
        raise typer.Exit(130) from None


@app.command()
def serve(
    port: Annotated[int, typer.Option(help="Port to listen on")] = 8080,
    host: Annotated[str, typer.Option(help="Interface to bind (local only by default)")] = (
        "127.0.0.1"
    ),
    data_dir: DataDir = None,
) -> None:
    """Run the chat page, WebSocket API (/ws) and indexer in one process."""
    from cli.serve import serve as run_server

    try:
        run_server(settings_for(data_dir), host, port)
    except OSError as exc:
        err.print(f"[red]rag: can't listen on {host}:{port} ({exc.strerror}): use --port[/red]")
        raise typer.Exit(1) from None


@app.command()
def ingest(
    paths: Annotated[list[Path] | None, typer.Argument(help="Files and folders")] = None,
    sample: Annotated[bool, typer.Option("--sample", help="Ingest samples/corpus/")] = False,
    force: Annotated[bool, typer.Option(help="Re-send files even if unchanged")] = False,
    meta: Annotated[
        list[str] | None, typer.Option("--meta", help="Metadata key=value for every file")
    ] = None,
    wait: Annotated[bool, typer.Option(help="Wait until every document is indexed")] = True,
    id_prefix: Annotated[
        str,
        typer.Option(
            "--id-prefix",
            help="Put this before every document id (e.g. team-a/) to keep apart "
            "files that would share an id",
        ),
    ] = "",
    sync: Annotated[
        bool,
        typer.Option(
            "--sync", help="Also delete the documents of files gone from the folders given"
        ),
    ] = False,
    data_dir: DataDir = None,
    stack: Stack = None,
) -> None:
    """Index files and folders (recursive; doc id = path relative to the folder given)."""
    targets = list(paths or [])
    if sample:
        targets.append(commands.SAMPLES_DIR)
    if not targets:
        err.print("[red]rag: nothing to ingest: give files or folders, or --sample[/red]")
        raise typer.Exit(2)
    settings = settings_for(data_dir, stack)
    failed = run(
        commands.ingest(
            settings,
            targets,
            force=force,
            meta=meta or [],
            wait=wait,
            id_prefix=id_prefix,
            sync=sync,
        )
    )
    if failed:
        raise typer.Exit(1)


@app.command()
def ask(
    question: Annotated[str, typer.Argument(help="The question")],
    url: Annotated[
        str | None, typer.Option(help="Ask a server: ws://127.0.0.1:8080/ws or the stack's URL")
    ] = None,
    token: Token = None,
    k: ChunkCount = None,
    mode: SearchMode = None,
    data_dir: DataDir = None,
    stack: Stack = None,
) -> None:
    """Stream the answer to one question, then its sources."""
    settings = settings_for(data_dir)
    url = stack_websocket_url(url, stack)
    ok = run(commands.ask(settings, [question], url, token, k, _mode(mode)))
    if not ok:
        raise typer.Exit(1)


@app.command()
def chat(
    url: Annotated[str | None, typer.Option(help="Chat with a server instead")] = None,
    token: Token = None,
    k: ChunkCount = None,
    mode: SearchMode = None,
    data_dir: DataDir = None,
    stack: Stack = None,
) -> None:
    """Interactive questions in one conversation (empty line or Ctrl-D to quit)."""
    settings = settings_for(data_dir)
    url = stack_websocket_url(url, stack)
    run(commands.ask(settings, None, url, token, k, _mode(mode)))


@app.command()
def docs(data_dir: DataDir = None, stack: Stack = None) -> None:
    """List documents with their status (and the reason when one failed)."""
    statuses, dead = run(commands.list_docs(settings_for(data_dir, stack)))
    if not statuses:
        console.print("no documents yet: run `rag ingest --sample` or `rag ingest PATH…`")
        return
    table = Table("document", "status", "chunks", "updated", "reason")
    for s in statuses:
        colour = {"indexed": "green", "failed": "red", "queued": "yellow"}.get(s.state, "dim")
        table.add_row(
            escape(s.doc_id),
            f"[{colour}]{s.state}[/{colour}]",
            str(s.chunk_count),
            s.updated_at.strftime("%Y-%m-%d %H:%M:%S"),
            escape(s.reason or ""),
        )
    console.print(table)
    if dead:
        console.print(f"[red]{dead} message(s) in the dead-letter table[/red]")


@app.command()
def delete(
    doc_id: Annotated[str, typer.Argument(help="Document id")], data_dir: DataDir = None
) -> None:
    """Remove a document from the index."""
    ok = run(commands.delete(settings_for(data_dir), doc_id))
    if not ok:
        raise typer.Exit(1)


@app.command()
def reconcile(
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Report drift only (exit 1 if any was found)")
    ] = False,
    data_dir: DataDir = None,
    stack: Stack = None,
) -> None:
    """Compare every document's status with the index; remove strays, re-index what's missing."""
    from cli import reconcile as reconciling
    from cli.stack_outputs import pick

    if stack:
        function = pick(stack_outputs(stack), reconciling.FUNCTION_KEYS)
        if function is None:
            err.print(f"[red]rag: stack {stack!r} has no indexer_function output[/red]")
            raise typer.Exit(1)
        report = run(
            reconciling.reconcile_stack(settings_for(None, stack), function, dry_run=dry_run)
        )
    else:
        report = run(reconciling.reconcile_local(settings_for(data_dir), dry_run=dry_run))
    if report["repairs"]:
        table = Table("document", "drift", "found", "done")
        for repair in report["repairs"]:
            table.add_row(
                escape(repair["doc_id"]),
                repair["drift"],
                escape(repair["detail"]),
                escape(repair["action"]),
            )
        console.print(table)
    console.print(
        f"checked {report['checked']} document(s): drift in {report['drift_found']}, "
        f"re-queued {report['requeued']}, busy {report['busy']}, settling {report['settling']}"
        + (" (dry run: nothing changed)" if dry_run else "")
    )
    if dry_run and report["drift_found"]:
        raise typer.Exit(1)


def _mode(mode: str | None) -> Literal["knn", "hybrid"] | None:
    if mode in (None, "knn", "hybrid"):
        return mode  # type: ignore[return-value]
    err.print("[red]rag: --mode must be knn or hybrid[/red]")
    raise typer.Exit(2)


# `rag eval` lives in its own module (owned by the evaluation work).
eval_command.register(app)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(app())
