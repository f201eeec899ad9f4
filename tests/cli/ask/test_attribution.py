"""``rag ask`` / ``rag chat`` show the answer once, each sentence's verdict marked in it
(as the page does), on a real terminal (tmux) and into a file."""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from rich.console import Console

from cli.ask.asking import TerminalSink, checked_lines, marked_answer, terminal_rows
from shared.protocol import (
    AnswerSentence,
    Citation,
    DoneEvent,
    SentenceSupport,
    SourcesEvent,
    StopReason,
    TokenEvent,
)
from tests.local.conftest import REPO

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


def test_the_marked_answer_carries_each_verdict_after_its_sentence() -> None:
    marked = marked_answer(ANSWER, SENTENCES)
    assert marked.plain == (
        "Use web.WebSocketResponse() [1].✓[3] Set socket.GMT_FOO [2].? Here is how:"
    )
    struck = [
        marked.plain[span.start : span.end] for span in marked.spans if "strike" in str(span.style)
    ]
    assert struck == ["[2]"]  # the marker its source does not back


def test_unsupported_sentences_are_listed_when_the_answer_scrolled_away() -> None:
    assert plain(checked_lines(ANSWER, SENTENCES)) == [
        " ? Set socket.GMT_FOO [2]. (not supported by the sources; [2] does not say this)",
    ]


def test_brackets_in_model_text_are_not_taken_as_markup() -> None:
    answer = "[bold red]x[/bold red] is a claim made here."
    lines = checked_lines(answer, [sentence(0, len(answer), SentenceSupport.UNSUPPORTED, [], [])])
    assert "[bold red]x[/bold red]" in plain(lines)[0]


async def feed(sink: TerminalSink, answer: str, sentences: list[AnswerSentence]) -> None:
    for i in range(0, len(answer), 5):
        await sink.send(TokenEvent(request_id="r", seq=i, text=answer[i : i + 5]))
    citation = Citation(
        n=1,
        cited=True,
        doc_id="a.txt",
        excerpt="e",
        score=0.0328,
        number=1,
        found_by=["keyword", "vector"],
    )
    await sink.send(SourcesEvent(request_id="r", citations=[citation], sentences=sentences))
    done = DoneEvent(
        request_id="r", stop_reason=StopReason.END, prompt_tokens=1, completion_tokens=1, total_ms=1
    )
    await sink.send(done)


async def test_into_a_file_the_answer_is_written_once_with_its_marks() -> None:
    buffer = io.StringIO()
    await feed(TerminalSink(Console(file=buffer, width=200, color_system=None)), ANSWER, SENTENCES)
    out = buffer.getvalue()
    assert out.count("Use web.WebSocketResponse()") == 1
    assert out.count("Set socket.GMT_FOO") == 1
    assert "[1].✓[3] Set socket.GMT_FOO [2].? Here is how:" in out
    assert "Checked against the sources: 1 of 2 sentences backed" in out
    assert out.index("Checked against") < out.index("Sources")
    # Sources say their rank and how they were found, not the raw fused score.
    assert " [1] a.txt best match of 1, found by words + meaning" in out
    assert "score" not in out


def test_rows_count_the_terminal_wrapping() -> None:
    assert terminal_rows("abc", 80) == 1
    assert terminal_rows("a" * 80, 80) == 1
    assert terminal_rows("a" * 81 + "\n\nb", 80) == 4
    assert terminal_rows("🙂" * 41, 80) == 2  # wide characters take two cells


SINK_SCRIPT = """
import asyncio, sys
from rich.console import Console
from tests.cli.ask.test_attribution import ANSWER, LONG, SENTENCES, feed, long_sentences
from cli.ask.asking import TerminalSink
answer, sentences = (LONG, long_sentences()) if sys.argv[1] == "long" else (ANSWER, SENTENCES)
asyncio.run(feed(TerminalSink(Console(force_terminal=True)), answer, sentences))
print("END-OF-RUN")
"""
LONG = "\n".join(f"Line {i} says a thing." for i in range(40)) + " Made up [2]."


def long_sentences() -> list[AnswerSentence]:
    start = LONG.index("Made up")
    return [sentence(start, len(LONG), SentenceSupport.UNSUPPORTED, [], [2])]


def terminal_screen(tmp_path: Path, which: str) -> list[str]:
    """Run a TerminalSink in a real terminal (tmux, 80x24); its screen afterwards."""
    script = tmp_path / "sink.py"
    script.write_text(SINK_SCRIPT)
    server = ["tmux", "-L", f"rag-test-{os.getpid()}-{which}"]
    command = f"cd {REPO} && PYTHONPATH={REPO} {sys.executable} {script} {which}; sleep 30"
    subprocess.run([*server, "new-session", "-d", "-x", "80", "-y", "24", command], check=True)
    try:
        for _ in range(300):  # bounded: 30 s
            screen = subprocess.run(
                [*server, "capture-pane", "-p"], capture_output=True, text=True, check=True
            ).stdout
            if "END-OF-RUN" in screen:
                return screen.splitlines()
            time.sleep(0.1)
        raise AssertionError(f"the sink did not finish in the terminal:\n{screen}")
    finally:
        subprocess.run([*server, "kill-server"], check=False)


@pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux (a real terminal) is not installed")
def test_on_a_terminal_the_streamed_answer_is_replaced_by_the_marked_one(tmp_path: Path) -> None:
    screen = "\n".join(terminal_screen(tmp_path, "short"))
    assert screen.count("Use web.WebSocketResponse()") == 1, screen
    assert "[1].✓[3] Set socket.GMT_FOO [2].? Here is how:" in screen
    assert screen.index("Checked against the sources") < screen.index("Sources")


@pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux (a real terminal) is not installed")
def test_an_answer_taller_than_the_terminal_stays_and_its_unbacked_claims_are_listed(
    tmp_path: Path,
) -> None:
    screen = terminal_screen(tmp_path, "long")
    assert "Line 39 says a thing. Made up [2]." in screen  # the streamed text, kept
    assert any(line.startswith(" ? Made up [2].") for line in screen)
    assert any(line.startswith("Checked against the sources: 0 of 1") for line in screen)
