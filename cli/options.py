"""What every command shares: its options' types, its settings, its errors.

Typer and the standard library only at import (``rag --help`` loads this);
settings, rich and the stack's outputs load inside the functions.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal, TypeVar

import typer

from shared.errors import RagError

if TYPE_CHECKING:
    from collections.abc import Coroutine

    from rich.console import Console

    from shared.settings import Settings

T = TypeVar("T")

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
