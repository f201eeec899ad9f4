"""``rag ask`` / ``rag chat`` show each sentence's verdict after the answer."""

from __future__ import annotations

import io

from rich.console import Console

from cli.asking import TerminalSink, checked_lines
from shared.protocol import (
    AnswerSentence,
    Citation,
    DoneEvent,
    SentenceSupport,
    SourcesEvent,
    StopReason,
    TokenEvent,
)

ANSWER = "Use web.WebSocketResponse() [1]. Set socket.GMT_FOO [2]. Here is how:"


def sentence(
    start: int, end: int, support: SentenceSupport, sources: list[int], markers: list[int]
) -> AnswerSentence:
    return AnswerSentence(
        start=start,
        end=end,
        support=support,
        sources=sources,
        markers=markers,
        unsupported_markers=[n for n in markers if n not in sources],
    )


SENTENCES = [
    sentence(0, 32, SentenceSupport.SUPPORTED, [1, 3], [1]),
    sentence(33, 56, SentenceSupport.UNSUPPORTED, [], [2]),
    sentence(57, 69, SentenceSupport.NO_CLAIM, [], []),
]


def plain(lines: list[str]) -> list[str]:
    console = Console(file=io.StringIO(), width=200, color_system=None)
    for line in lines:
        console.print(line)
    out = console.file.getvalue()  # type: ignore[attr-defined]
    return [line.rstrip() for line in out.splitlines()]


def test_supported_sentences_get_their_sources_unsupported_ones_a_mark() -> None:
    assert plain(checked_lines(ANSWER, SENTENCES)) == [
        " ✓ Use web.WebSocketResponse() [1]. [1][3]",
        " ? Set socket.GMT_FOO [2]. (not supported by the sources; [2] does not say this)",
        "   Here is how:",
    ]


def test_brackets_in_model_text_are_not_taken_as_markup() -> None:
    answer = "[bold red]x[/bold red] is a claim made here."
    lines = checked_lines(answer, [sentence(0, len(answer), SentenceSupport.UNSUPPORTED, [], [])])
    assert "[bold red]x[/bold red]" in plain(lines)[0]


async def test_the_terminal_sink_prints_the_checked_block_after_the_answer() -> None:
    buffer = io.StringIO()
    sink = TerminalSink(Console(file=buffer, width=200, color_system=None))
    await sink.send(TokenEvent(request_id="r", seq=0, text=ANSWER))
    citation = Citation(n=1, cited=True, doc_id="a.txt", excerpt="e", score=0.5, number=1)
    await sink.send(SourcesEvent(request_id="r", citations=[citation], sentences=SENTENCES))
    done = DoneEvent(
        request_id="r", stop_reason=StopReason.END, prompt_tokens=1, completion_tokens=1, total_ms=1
    )
    await sink.send(done)
    out = buffer.getvalue()
    assert "Checked against the sources" in out
    assert out.index("✓ Use web.WebSocketResponse()") < out.index("Sources")
