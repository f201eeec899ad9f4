"""``rag ask`` / ``rag chat``: stream answers to the terminal.

In-process (the local data folder, the local models) or over a WebSocket to a
running server (``--url ws://127.0.0.1:8080/ws`` or the deployed API).
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import re
import uuid
from collections.abc import AsyncIterator
from typing import Protocol

from rich.cells import cell_len
from rich.console import Console
from rich.markup import escape
from rich.text import Text

from cli.chat_socket import ChatSocket, with_token
from cli.local_parts import LocalParts
from services.query.answer.parts import build_query_deps
from services.query.answer.service import AnswerService
from services.query.transports.inprocess import InProcessConnection
from shared.errors import ConfigurationError
from shared.ports import ServerEvent
from shared.protocol import (
    AnswerSentence,
    Citation,
    DoneEvent,
    ErrorEvent,
    Grounding,
    SentenceSupport,
    SourcesEvent,
    StatusEvent,
    TokenEvent,
    ends_request,
    parse_server_event,
)

__all__ = ["InProcessAsker", "TerminalSink", "WebSocketAsker", "with_token"]
# Never wrapped: piped into a file or a narrow pipe, a command in a message
# (`rag ingest PATH`) stays whole and a line stays one line.
console = Console(soft_wrap=True)
NO_DOCUMENTS = "no documents indexed yet: run `rag ingest --sample` (or `rag ingest PATH…`)"


class TerminalSink:
    """Prints the answer once, with each sentence's verdict in it (as the page
    shows it), then the sources, then a one-line summary.

    On a terminal the tokens stream as they come; when the verdicts arrive the
    streamed text is erased and printed again with its marks, if it is still
    all on the screen (else the marks are summarised below it). Into a pipe or
    a file, where nobody watches it stream, the answer is written once, marked.
    """

    def __init__(self, out: Console = console) -> None:
        self.out = out
        self.finished = asyncio.Event()
        self.failed = False
        self._answer: list[str] = []
        self._printed = False  # the answer is on the output (streamed or marked)

    async def send(self, event: ServerEvent) -> None:
        if isinstance(event, TokenEvent):
            self._answer.append(event.text)
            if self.out.is_terminal:
                self._printed = True
                self.out.file.write(event.text)
                self.out.file.flush()
        elif isinstance(event, SourcesEvent):
            self._show_answer(event.sentences)
            self._sources(event)
        elif isinstance(event, StatusEvent):  # a stack scaled to zero is waking
            waited = f" (waited {event.elapsed_s:.0f} s)" if event.elapsed_s else ""
            self.out.print(f"[yellow]{escape(event.message)}{waited}[/yellow]")
        elif isinstance(event, ErrorEvent):
            self.failed = True
            self._show_answer(None)
            self.out.print(f"\n[red]error ({event.code}): {escape(event.message)}[/red]")
        elif isinstance(event, DoneEvent):
            self._show_answer(None)
            if (verdict := grounding_line(event)) is not None:
                self.out.print(verdict)
            self.out.print(
                f"[dim]{event.completion_tokens} tokens, {event.total_ms / 1000:.1f} s, "
                f"{event.stop_reason}[/dim]"
            )
            self.finished.set()
            self._answer = []
            self._printed = False

    def _show_answer(self, sentences: list[AnswerSentence] | None) -> None:
        """Put the answer on the output once, marked when ``sentences`` says how."""
        answer = "".join(self._answer)
        if not sentences:
            if not self._printed and answer:
                self.out.print(Text(answer), soft_wrap=True)
            elif self._printed and answer:
                self.out.file.write("\n")
            self._printed = self._printed or bool(answer)
            return
        if self._printed and not self._erase_streamed(answer):
            self.out.file.write("\n")  # it scrolled away: keep it, list what is unbacked
            self.out.print(checked_summary(sentences))
            for line in checked_lines(answer, sentences):
                self.out.print(line)
            return
        self.out.print(marked_answer(answer, sentences), soft_wrap=True)
        self.out.print(checked_summary(sentences))
        self._printed = True

    def _erase_streamed(self, answer: str) -> bool:
        """Move back over the streamed answer and clear it; False if it no longer
        fits on the screen (a terminal cannot move above its top row)."""
        rows = terminal_rows(answer, self.out.width)
        if rows >= self.out.height:
            return False
        up = f"\x1b[{rows - 1}A" if rows > 1 else ""
        self.out.file.write(f"\r{up}\x1b[J")
        return True

    def _sources(self, event: SourcesEvent) -> None:
        if not event.citations:
            return
        self.out.print("\n[bold]Sources[/bold]")
        for c in sorted(event.citations, key=lambda c: (c.n is None, c.n or 0)):
            marker = f"[{c.n}]" if c.n is not None else "[-]"
            where = f", page {c.page}" if c.page else ""
            title = f"{c.title} ({c.doc_id})" if c.title and c.title != c.doc_id else c.doc_id
            note = "" if c.cited else " (retrieved; supports no sentence)"
            self.out.print(
                f" {escape(marker)} {escape(title)}{escape(where)} "
                f"[dim]{escape(rank_note(c, len(event.citations)))}{note}[/dim]"
            )
            excerpt = " ".join(c.excerpt.split())
            self.out.print(f"     [dim]{escape(excerpt[:240])}[/dim]")


def terminal_rows(text: str, width: int) -> int:
    """How many terminal rows ``text`` takes when written from column 0."""
    return sum(
        max(1, math.ceil(cell_len(line.expandtabs()) / max(1, width))) for line in text.split("\n")
    )


FOUND_BY = {"keyword": "words", "vector": "meaning"}


def rank_note(citation: Citation, total: int) -> str:
    """``match 2 of 5, found by words + meaning``: the source's rank among those
    the model was given (the raw retrieval score, ~0.03 in hybrid mode, tells a
    reader nothing; docs/protocol.md)."""
    n = citation.number
    rank = "" if n is None else "best match" if n == 1 else f"match {n}"
    rank += f" of {total}" if rank else ""
    found = " + ".join(FOUND_BY[f] for f in citation.found_by)
    return ", ".join(part for part in (rank, f"found by {found}" if found else "") if part)


def marked_answer(answer: str, sentences: list[AnswerSentence]) -> Text:
    """The answer with its verdicts, as the page shows them: after a supported
    sentence a green ``✓`` and the sources that back it that the model did not
    cite itself; an unsupported sentence in yellow, its unbacked ``[n]`` struck
    and a ``?`` after it; sentences that claim nothing as they are."""
    text = Text()
    at = 0
    for sentence in sorted(sentences, key=lambda s: s.start):
        text.append(answer[at : sentence.start])
        body = answer[sentence.start : sentence.end]
        if sentence.support == SentenceSupport.SUPPORTED:
            text.append(body)
            extra = [n for n in sentence.sources if n not in sentence.markers]
            text.append("✓" + "".join(f"[{n}]" for n in extra), style="green")
        elif sentence.support == SentenceSupport.UNSUPPORTED:
            text.append(_struck(body, sentence.unsupported_markers))
            text.append("?", style="bold yellow")
        else:
            text.append(body)
        at = max(at, sentence.end)
    text.append(answer[at:])
    return text


def _struck(body: str, markers: list[int]) -> Text:
    part = Text(body, style="yellow")
    for n in markers:
        for match in re.finditer(rf"\[{n}\]", body):
            part.stylize("strike", match.start(), match.end())
    return part


def grounding_line(done: DoneEvent) -> Text | None:
    """The answer-level verdict, said plainly when the sources do not back the
    answer (most claims unbacked, or nothing relevant was found)."""
    if done.grounding == Grounding.NO_SOURCES:
        return Text(
            "The sources do not support this answer: no indexed document is about the question.",
            "bold yellow",
        )
    if done.grounding == Grounding.UNSUPPORTED:
        share = f" (only {done.supported_share:.0%} of its claims are backed)"
        return Text(
            "The sources do not support this answer"
            + (share if done.supported_share is not None else "")
            + ".",
            "bold yellow",
        )
    return None


def checked_summary(sentences: list[AnswerSentence]) -> Text:
    """One line under the marked answer: how many claims the sources back, and
    what the marks mean."""
    claims = [s for s in sentences if s.support != SentenceSupport.NO_CLAIM]
    backed = sum(1 for s in claims if s.support == SentenceSupport.SUPPORTED)
    line = Text(f"Checked against the sources: {backed} of {len(claims)} sentences backed", "dim")
    line.append(" (✓[n]: also in source n; ?: no source says this, check it)", "dim")
    return line


SENTENCE_WIDTH = 100


def checked_lines(answer: str, sentences: list[AnswerSentence]) -> list[str]:
    """Rich markup lines, one per unsupported sentence: what no source backs
    (for an answer that scrolled off the screen before its marks came)."""
    lines = []
    for sentence in sentences:
        if sentence.support != SentenceSupport.UNSUPPORTED:
            continue
        text = " ".join(answer[sentence.start : sentence.end].split())
        if len(text) > SENTENCE_WIDTH:
            text = text[: SENTENCE_WIDTH - 1] + "…"
        note = "not supported by the sources"
        if sentence.unsupported_markers:
            cited = ", ".join(f"[{n}]" for n in sentence.unsupported_markers)
            note += f"; {cited} does not say this"
        lines.append(f" [yellow]? {escape(text)}[/yellow] [dim]({escape(note)})[/dim]")
    return lines


class Asker(Protocol):
    async def ask(self, question: str, sink: TerminalSink) -> None: ...


class InProcessAsker:
    """The query service in this process, on the local data folder, asked
    through its front door like any client (``InProcessConnection``)."""

    def __init__(
        self,
        parts: LocalParts,
        k: int | None,
        mode: str | None,
        service: AnswerService | None = None,
    ) -> None:
        self._parts = parts
        self._k = k
        self._mode = mode
        self._conversation_id = uuid.uuid4().hex
        self._service = service  # built on the first question unless given
        self._connection: InProcessConnection | None = None

    async def check_documents(self) -> None:
        index = self._parts.embedded_index
        if index is not None and not await index.document_ids():
            raise ConfigurationError(NO_DOCUMENTS)

    def _connect(self) -> InProcessConnection:
        if self._connection is None:
            if self._service is None:
                with console.status("loading the chat model…"):
                    parts = self._parts
                    deps = build_query_deps(
                        parts.settings,
                        embedder=parts.embedder,
                        index=parts.index,
                        model=parts.model,
                    )
                    self._service = AnswerService(parts.settings, deps)
            self._connection = InProcessConnection(self._service)
        return self._connection

    async def ask(self, question: str, sink: TerminalSink) -> None:
        frame: dict[str, object] = {"question": question}
        frame["conversation_id"] = self._conversation_id
        frame |= {"k": self._k} if self._k else {}
        frame |= {"mode": self._mode} if self._mode else {}
        await self._connect().ask(frame, sink)

    async def close(self) -> None:
        if self._connection is not None:
            await self._connection.close()


# Every wait for the server is bounded. The ``accepted`` comes at once from a
# healthy server (a cold Lambda: seconds); after it, the longest silence is a
# model waking or a long prefill on a slow CPU, and API Gateway drops a
# connection idle for 10 minutes anyway, so waiting longer would be moot.
ACCEPT_TIMEOUT_S = 60.0
ANSWER_TIMEOUT_S = 600.0


class AnswerTimeout(ConfigurationError):
    """The server sent nothing about a question for too long."""


class WebSocketAsker:
    """Speaks the protocol to a server over one chat socket (which keeps
    itself alive and reconnects: ``cli/chat_socket.py``)."""

    def __init__(
        self,
        socket: ChatSocket,
        k: int | None,
        mode: str | None,
        *,
        accept_timeout_s: float = ACCEPT_TIMEOUT_S,
        answer_timeout_s: float = ANSWER_TIMEOUT_S,
    ):
        self._socket = socket
        self._k = k
        self._mode = mode
        self._conversation_id: str | None = None
        self._accept_timeout_s = accept_timeout_s
        self._answer_timeout_s = answer_timeout_s

    async def ask(self, question: str, sink: TerminalSink) -> None:
        """Stream one answer into ``sink``; returns after its ``done`` (or the
        error that ends it); raises AnswerTimeout if the server goes quiet."""
        request_id = uuid.uuid4().hex
        frame: dict[str, object] = {"action": "ask", "question": question, "request_id": request_id}
        if self._k:
            frame["k"] = self._k
        if self._mode:
            frame["mode"] = self._mode
        if self._conversation_id:
            frame["conversation_id"] = self._conversation_id
        await self._socket.send(frame)
        frames = self._socket.frames()
        accepted = False
        while True:
            wait_s = self._answer_timeout_s if accepted else self._accept_timeout_s
            data = await self._next(frames, wait_s, request_id, accepted)
            event = parse_server_event(data)
            if isinstance(event, ErrorEvent) and event.request_id is None and not accepted:
                # An older server could not tie the refusal to our id; it was ours.
                await sink.send(event)
                return
            if getattr(event, "request_id", None) != request_id:
                continue  # pongs of the keep-alive, other answers
            if event.event == "accepted":
                accepted = True
                if event.conversation_id:
                    self._conversation_id = event.conversation_id
            await sink.send(event)
            if ends_request(event):
                return

    async def _next(
        self, frames: AsyncIterator[str], wait_s: float, request_id: str, accepted: bool
    ) -> str:
        try:
            async with asyncio.timeout(wait_s):
                return await anext(frames)
        except TimeoutError:
            if accepted:  # stop the answer nobody waits for any more
                with contextlib.suppress(ConfigurationError):
                    await self._socket.send({"action": "cancel", "request_id": request_id})
            what = "the rest of the answer" if accepted else "the server to accept the question"
            raise AnswerTimeout(
                f"waited {wait_s:g} s for {what} from {self._socket.url} and heard nothing; "
                "the server may be overloaded or stuck: try again (or raise --timeout)"
            ) from None
