"""rag: the whole product on this machine (chat page, WebSocket API, indexer,
embedded store, local models), or a client of a deployed stack (--stack).
Start with `rag serve`, then `rag ingest --sample` and `rag ask "…"`.
"""

# Only wiring here: each command lives with its group (cli/serve, cli/documents,
# cli/ask, cli/deploy, cli/eval), whose command module loads only typer and the
# standard library; the work is imported inside each command, so `rag --help`
# and `rag docs` stay quick (bench/cli_start.py measures them).
from __future__ import annotations

import os
import sys
from typing import Annotated

import typer

from cli.ask import command as asking
from cli.deploy import command as deploying
from cli.documents import command as documents
from cli.eval import command as evaluating
from cli.options import err, fail
from cli.serve import command as serving
from shared.errors import RagError

app = typer.Typer(
    help=__doc__,
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    # Plain help: rich's help renderer alone costs more than the 0.3 s budget.
    rich_markup_mode=None,
)
_state = {"debug": bool(os.environ.get("RAG_DEBUG"))}


def _version(value: bool) -> None:
    if value:
        from importlib.metadata import PackageNotFoundError, version

        try:
            typer.echo(f"rag {version('serverless-rag')}")
        except PackageNotFoundError:
            typer.echo("rag (not installed: run scripts/bootstrap)")
        raise typer.Exit()


@app.callback()
def options(
    version: Annotated[
        bool,
        typer.Option("--version", callback=_version, is_eager=True, help="Print the version"),
    ] = False,
    debug: Annotated[
        bool, typer.Option("--debug", help="Show the full traceback of an unexpected error")
    ] = False,
) -> None:
    if debug:
        _state["debug"] = True


# In the order `rag --help` lists them.
app.command()(serving.serve)
app.command()(documents.ingest)
app.command()(asking.ask)
app.command()(asking.chat)
app.command()(documents.docs)
app.command()(documents.delete)
app.command()(documents.reconcile)
app.command()(deploying.doctor)
app.command()(deploying.smoke)
app.command("eval")(evaluating.eval_command)
app.command()(deploying.cost)


def main() -> int:
    """The `rag` entry point: an unexpected error is one line with a hint,
    unless --debug (or RAG_DEBUG=1) asks for the traceback."""
    try:
        app()
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else 0
    except KeyboardInterrupt:
        return 130
    except RagError as exc:  # raised outside `run`, e.g. while reading settings
        if _state["debug"] or "--debug" in sys.argv:
            raise
        fail(str(exc))
        return 1
    except Exception as exc:
        if _state["debug"] or "--debug" in sys.argv:
            raise
        from rich.markup import escape

        lines = str(exc).splitlines()
        detail = f": {lines[0]}" if lines else ""
        err().print(
            f"[red]rag: unexpected error: {type(exc).__name__}{escape(detail)}[/red] "
            "[dim](run again with --debug for the traceback)[/dim]"
        )
        return 1
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
