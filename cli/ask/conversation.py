"""The conversation of ``rag ask`` / ``rag chat``: over a WebSocket to a
server, or through the query service's front door in this process (the local
data folder, the local models)."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from rich.console import Console
from rich.markup import escape

from cli.local_parts import LocalParts
from shared.errors import RagError
from shared.settings import Settings

if TYPE_CHECKING:
    from cli.ask.asking import Asker

# Results are not wrapped: piped into a file or grep, a line stays one line.
console = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)


async def ask(
    settings: Settings,
    questions: list[str] | None,
    url: str | None,
    token: str | None,
    k: int | None,
    mode: str | None,
    timeout_s: float = 600.0,
) -> bool:
    """One question (``questions``) or an interactive chat (None). True if all
    went well. ``timeout_s``: the longest silence from a server mid-answer."""
    from cli.ask.asking import ACCEPT_TIMEOUT_S, InProcessAsker, WebSocketAsker
    from cli.chat_socket import ChatSocket

    if url:
        async with ChatSocket(url, token) as socket:
            remote = WebSocketAsker(
                socket,
                k,
                mode,
                accept_timeout_s=min(ACCEPT_TIMEOUT_S, timeout_s),
                answer_timeout_s=timeout_s,
            )
            return await _ask_all(remote, questions)
    from services.query.answer.audit import AUDIT_FILE, audit_to_file

    # stdout is the answer (`rag ask … > answer.txt`): the audit line goes to a file.
    audit_to_file(settings.data_dir / AUDIT_FILE)
    parts = LocalParts(settings)
    asker = InProcessAsker(parts, k, mode)
    try:
        await asker.check_documents()
        return await _ask_all(asker, questions)
    finally:
        await asker.close()
        await parts.close()


async def _ask_all(asker: Asker, questions: list[str] | None) -> bool:
    from cli.ask.asking import TerminalSink

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
        try:
            await asker.ask(question, TerminalSink())
        except RagError as exc:  # e.g. the connection dropped: say so, keep chatting
            err.print(f"[red]rag: {escape(str(exc))}[/red]")
