"""rag: the whole product on this machine (chat page, WebSocket API, indexer,
embedded store, local models), or a client of a deployed stack (--stack).
Start with `rag serve`, then `rag ingest --sample` and `rag ask "…"`.
"""

# Only typer and the standard library load at start: each command imports
# what it needs when it runs, so `rag --help` and `rag docs` stay quick
# (bench/cli_start.py measures them).
from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal, TypeVar

import typer

from shared.errors import RagError

if TYPE_CHECKING:
    from collections.abc import Coroutine

    from rich.console import Console

    from shared.settings import Settings

T = TypeVar("T")
app = typer.Typer(
    help=__doc__,
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    # Plain help: rich's help renderer alone costs more than the 0.3 s budget.
    rich_markup_mode=None,
)
_state = {"debug": bool(os.environ.get("RAG_DEBUG"))}

DataDir = Annotated[
    Path | None,
    typer.Option(
        "--data-dir",
        help="Local data folder (default: RAG_DATA_DIR, else the per-user folder, "
        "e.g. ~/.local/share/rag)",
    ),
]
Stack = Annotated[
    str | None,
    typer.Option("--stack", help="Use a deployed Pulumi stack's queue and bucket (e.g. dev)"),
]
Token = Annotated[str | None, typer.Option(help="Token for the deployed API", envvar="RAG_TOKEN")]
Mode = Annotated[
    Literal["knn", "hybrid"] | None,
    typer.Option("--mode", help="Search mode (default: RAG_QUERY__SEARCH_MODE)"),
]
K = Annotated[
    int | None, typer.Option("-k", "--k", min=1, max=50, help="Chunks to retrieve (1–50)")
]
ServerUrl = Annotated[
    str | None,
    typer.Option(
        help="A query server: ws://127.0.0.1:8080/ws or a stack's URL (default: the "
        "rag serve running on the data folder, else in this process)"
    ),
]
AnswerTimeout = Annotated[
    float,
    typer.Option(
        "--timeout",
        min=1,
        help="Seconds to wait while a server sends nothing about the answer "
        "(accepting the question: at most 60)",
    ),
]
StackSocket = Annotated[
    str | None,
    typer.Option(
        "--stack",
        help="A deployed Pulumi stack: its websocket_url output, with --token "
        "(or RAG_TOKEN) for the $connect authorizer",
    ),
]


def err() -> Console:
    from rich.console import Console

    return Console(stderr=True, soft_wrap=True)


def fail(message: str, code: int = 1) -> typer.Exit:
    from rich.markup import escape

    err().print(f"[red]rag: {escape(message)}[/red]")
    return typer.Exit(code)


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


def stack_outputs(stack: str | None) -> dict[str, Any]:
    if not stack:
        return {}
    from cli.stack_outputs import read_stack_outputs

    try:
        return read_stack_outputs(stack, Path.cwd())
    except RagError as exc:
        raise fail(str(exc)) from None


def settings_for(data_dir: Path | None, stack: str | None = None) -> Settings:
    """Settings for one command: --data-dir beats RAG_DATA_DIR (and .env), which
    beat the per-user data folder."""
    from cli.paths import load_cli_settings

    overrides: dict[str, Any] = {}
    if data_dir is not None:
        overrides["data_dir"] = data_dir
    if stack:
        from cli.stack_outputs import settings_overrides

        overrides.update(settings_overrides(stack_outputs(stack)))
    return load_cli_settings(**overrides)


def stack_websocket_url(url: str | None, stack: str | None) -> str | None:
    if url or not stack:
        return url
    from cli.stack_outputs import WEBSOCKET_KEYS, pick

    found = pick(stack_outputs(stack), WEBSOCKET_KEYS)
    if found is None:
        raise fail(f"stack {stack!r} has no websocket_url output")
    return found


def local_server_url(settings: Settings) -> str | None:
    """The WebSocket of a `rag serve` running on this data folder, if any."""
    from cli.announce import read_announcement

    note = read_announcement(settings.data_dir)
    if note is None:
        return None
    err().print(f"[dim]asking the rag serve on this data folder ({note.ws_url})[/dim]")
    return note.ws_url


def run(coro: Coroutine[Any, Any, T]) -> T:
    """Run a command; product errors become a clear message and exit code 1."""
    import asyncio

    try:
        return asyncio.run(coro)
    except RagError as exc:
        raise fail(str(exc)) from None
    except KeyboardInterrupt:
        err().print("[yellow](stopped)[/yellow]")
        raise typer.Exit(130) from None


@app.command()
def serve(
    port: Annotated[int, typer.Option(help="Port to listen on")] = 8080,
    host: Annotated[str, typer.Option(help="Interface to bind (local only by default)")] = (
        "127.0.0.1"
    ),
    tokens: Annotated[
        Path | None,
        typer.Option(
            help='Tokens file {"<token>": {"principal": "alice", "groups": ["hr"]}}: '
            "each connection needs a token and reads what its groups allow "
            "(without it: single user, reads everything)",
            exists=True,
            dir_okay=False,
        ),
    ] = None,
    data_dir: DataDir = None,
    model_url: Annotated[
        str | None,
        typer.Option(
            "--model-url",
            help="Answer with an OpenAI-compatible server you run instead of the tiny packaged "
            "model: Ollama http://127.0.0.1:11434, llama.cpp's server http://127.0.0.1:8081, "
            "vLLM http://127.0.0.1:8000 (sets RAG_MODEL__BACKEND=openai and its URL)",
        ),
    ] = None,
    model: Annotated[
        str | None,
        typer.Option(
            "--model",
            help="With --model-url: the server's model to use (default: its only one)",
        ),
    ] = None,
) -> None:
    """Run the chat page, WebSocket API (/ws) and indexer in one process."""
    from cli.serve.port_check import port_problem

    # Before loading anything: a busy port is known in milliseconds, not after the model.
    problem = port_problem(host, port)
    if problem is not None:
        raise fail(f"{problem}: stop it, or pick another port with --port")
    if model and not model_url:
        raise fail("--model names a model on the server given by --model-url", 2)
    from cli.serve.server import serve as run_server

    settings = settings_for(data_dir)
    if model_url:
        from cli.serve.model_url import use_model_server

        settings = run(use_model_server(settings, model_url, model))
    try:
        run_server(settings, host, port, tokens)
    except RagError as exc:  # e.g. an unreadable or invalid tokens file
        raise fail(str(exc)) from None
    except OSError as exc:
        raise fail(f"can't listen on {host}:{port} ({exc.strerror}): use --port") from None


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
    from cli.documents import commands

    targets = list(paths or [])
    if sample:
        targets.append(commands.SAMPLES_DIR)
    if not targets:
        raise fail("nothing to ingest: give files or folders, or --sample", 2)
    settings = settings_for(data_dir, stack)
    if not stack:
        from cli.announce import read_announcement

        note = read_announcement(settings.data_dir)
        if note is not None:
            err().print(f"[dim]the rag serve at {note.http_url} (pid {note.pid}) indexes[/dim]")
    failed = run(
        commands.ingest(
            settings,
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


@app.command()
def ask(
    question: Annotated[str, typer.Argument(help="The question")],
    url: ServerUrl = None,
    token: Token = None,
    k: K = None,
    mode: Mode = None,
    data_dir: DataDir = None,
    stack: StackSocket = None,
    timeout: AnswerTimeout = 600.0,
) -> None:
    """Stream the answer to one question, then its sources."""
    from cli.documents import commands

    settings = settings_for(data_dir)
    url = stack_websocket_url(url, stack) or local_server_url(settings)
    ok = run(commands.ask(settings, [question], url, token, k, mode, timeout))
    if not ok:
        raise typer.Exit(1)


@app.command()
def chat(
    url: ServerUrl = None,
    token: Token = None,
    k: K = None,
    mode: Mode = None,
    data_dir: DataDir = None,
    stack: StackSocket = None,
    timeout: AnswerTimeout = 600.0,
) -> None:
    """Follow-up questions in one conversation (empty line or Ctrl-D quits)."""
    from cli.documents import commands

    settings = settings_for(data_dir)
    url = stack_websocket_url(url, stack) or local_server_url(settings)
    run(commands.ask(settings, None, url, token, k, mode, timeout))


@app.command()
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


@app.command()
def delete(
    doc_id: Annotated[str, typer.Argument(help="Document id")], data_dir: DataDir = None
) -> None:
    """Remove a document from the index."""
    from cli.documents import commands

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
    from cli.documents import reconcile as reconciling
    from cli.stack_outputs import pick

    if stack:
        function = pick(stack_outputs(stack), reconciling.FUNCTION_KEYS)
        if function is None:
            raise fail(f"stack {stack!r} has no indexer_function output")
        report = run(
            reconciling.reconcile_stack(settings_for(None, stack), function, dry_run=dry_run)
        )
    else:
        report = run(reconciling.reconcile_local(settings_for(data_dir), dry_run=dry_run))
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


@app.command()
def doctor(
    stack: Annotated[str, typer.Option("--stack", help="The Pulumi stack to check (e.g. dev)")],
) -> None:
    """Check credentials, quotas, model access and config before `pulumi up`
    (exit 1: a check failed; 2: a check could not run, so the stack is unchecked)."""
    from rich.console import Console
    from rich.markup import escape

    from cli.deploy.doctor import diagnose, exit_code, verdict
    from shared.settings import load_settings

    endpoint = load_settings().aws.endpoint_url
    checks = run(diagnose(stack, Path.cwd(), {"*": endpoint}))
    console = Console(soft_wrap=True)
    marks = {
        "ok": "[green]ok  [/green]",
        "warn": "[yellow]warn[/yellow]",
        "fail": "[red]FAIL[/red]",
        "unchecked": "[yellow]????[/yellow]",
    }
    for check in checks:
        label = "unchecked: " if check.status == "unchecked" else ""
        console.print(f"{marks[check.status]} {check.name}: {label}{escape(check.detail)}")
        if check.fix:
            console.print(f"     fix: {escape(check.fix)}")
    code = exit_code(checks)
    colour = ("green", "red", "yellow")[code]
    console.print(f"[{colour}]{escape(verdict(stack, checks))}[/{colour}]")
    raise typer.Exit(code)


@app.command()
def smoke(
    stack: Annotated[str, typer.Option("--stack", help="The deployed Pulumi stack (e.g. dev)")],
    token: Annotated[
        str | None,
        typer.Option(
            envvar="RAG_TOKEN",
            help="$connect token (default: the stack's rag:staticToken; or a Cognito ID token)",
        ),
    ] = None,
    timeout: Annotated[float, typer.Option(help="Seconds to wait for each step")] = 600.0,
) -> None:
    """Send a document through the stack, ask about it, check its citation, delete it."""
    from rich.console import Console
    from rich.markup import escape

    from cli.deploy.smoke import SmokeTarget, exit_code, run_smoke, stack_token

    outputs = stack_outputs(stack)
    try:
        target = SmokeTarget.from_outputs(outputs)
    except RagError as exc:
        raise fail(str(exc)) from None
    token = token or stack_token(stack, Path.cwd())
    steps = run(run_smoke(settings_for(None, stack), target, token, timeout))
    console = Console(soft_wrap=True)
    for step in steps:
        mark = "[green]ok  [/green]" if step.ok else "[red]FAIL[/red]"
        console.print(f"{mark} {step.name} ({step.seconds:.1f} s): {escape(step.detail)}")
    raise typer.Exit(exit_code(steps))


def register_eval() -> None:
    # `rag eval` lives in its own module (owned by the evaluation work).
    from cli.eval import command as eval_command

    eval_command.register(app)


register_eval()


def register_cost() -> None:
    # `rag cost` lives in its own module (cli/cost.py: typer only at import).
    from cli.deploy import cost

    cost.register(app)


register_cost()


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
