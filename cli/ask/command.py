"""``rag ask`` and ``rag chat``: the options, and where the question goes (a
server given, the stack's, the ``rag serve`` on the data folder, else this
process). The conversation itself: ``cli.ask.conversation``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from cli.options import (
    AnswerTimeout,
    DataDir,
    K,
    Mode,
    ServerUrl,
    StackSocket,
    Token,
    err,
    fail,
    run,
    settings_for,
    stack_outputs,
)

if TYPE_CHECKING:
    from pathlib import Path

    from shared.settings import Settings


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
    if not _converse([question], url, token, k, mode, data_dir, stack, timeout):
        raise typer.Exit(1)


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
    _converse(None, url, token, k, mode, data_dir, stack, timeout)


def _converse(
    questions: list[str] | None,
    url: str | None,
    token: str | None,
    k: int | None,
    mode: str | None,
    data_dir: Path | None,
    stack: str | None,
    timeout: float,
) -> bool:
    from cli.ask import conversation

    settings = settings_for(data_dir)
    url = stack_websocket_url(url, stack) or local_server_url(settings)
    return run(conversation.ask(settings, questions, url, token, k, mode, timeout))


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
