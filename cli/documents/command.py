"""``rag ingest``, ``rag docs``, ``rag delete`` and ``rag reconcile``: their
options and output; the work in ``ingest``, ``listing``, ``reconcile``."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from cli.options import DataDir, Stack, fail, run, settings_for, stack_outputs
from cli.paths import SAMPLES_DIR


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
    groups: Annotated[
        str | None,
        typer.Option(
            help="Groups allowed to read these documents, comma-separated (hr,finance); "
            '"" = admins only; without it every authenticated user may read them'
        ),
    ] = None,
    data_dir: DataDir = None,
    stack: Stack = None,
) -> None:
    """Index files and folders (id: the path relative to the folder given)."""
    from cli.documents import ingest as ingesting

    targets = list(paths or [])
    if sample:
        targets.append(SAMPLES_DIR)
    if not targets:
        raise fail("nothing to ingest: give files or folders, or --sample", 2)
    failed = run(
        ingesting.ingest(
            settings_for(data_dir, stack),
            targets,
            force=force,
            meta=meta or [],
            wait=wait,
            id_prefix=id_prefix,
            sync=sync,
            groups=groups,
        )
    )
    if failed:
        raise typer.Exit(1)


def docs(
    data_dir: DataDir = None,
    stack: Stack = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print one JSON object (documents, dead letters)")
    ] = False,
) -> None:
    """List documents with their status (and the reason when one failed)."""
    from cli.documents.listing import list_docs, status_table

    statuses, dead = run(list_docs(settings_for(data_dir, stack)))
    if as_json:
        import json

        documents = [s.model_dump(mode="json") for s in statuses]
        typer.echo(json.dumps({"documents": documents, "dead_letters": dead}))
        return
    if not statuses:
        typer.echo("no documents yet: run `rag ingest --sample` or `rag ingest PATH…`")
        return
    typer.echo(status_table(statuses, colour=sys.stdout.isatty()))
    if dead:
        typer.secho(f"{dead} message(s) in the dead-letter table", fg="red")


def delete(
    doc_id: Annotated[str, typer.Argument(help="Document id")], data_dir: DataDir = None
) -> None:
    """Remove a document from the index."""
    from cli.documents import ingest as ingesting

    ok = run(ingesting.delete(settings_for(data_dir), doc_id))
    if not ok:
        raise typer.Exit(1)


def reconcile(
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Report drift only (exit 1 if any was found)")
    ] = False,
    data_dir: DataDir = None,
    stack: Stack = None,
) -> None:
    """Compare every document's status with the index; remove strays, re-index what's missing."""
    from cli.documents.reconcile import reconcile as reconciling

    function = _indexer_function(stack)
    report = run(reconciling(settings_for(data_dir, stack), function, dry_run=dry_run))
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    console = Console()
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


def _indexer_function(stack: str | None) -> str | None:
    """The deployed indexer function that reconciles for ``--stack``."""
    if not stack:
        return None
    from cli.destination.stack import FUNCTION_KEYS
    from cli.stack_outputs import pick

    function = pick(stack_outputs(stack), FUNCTION_KEYS)
    if function is None:
        raise fail(f"stack {stack!r} has no indexer_function output")
    return function
