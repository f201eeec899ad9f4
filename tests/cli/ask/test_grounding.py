"""rag ask/chat say plainly when the sources do not support an answer (done.grounding)."""

from __future__ import annotations

import io

from rich.console import Console

from cli.ask.asking import TerminalSink
from shared.protocol import DoneEvent, Grounding, StopReason, TokenEvent

PLAIN = "The sources do not support this answer"


async def printed(done: DoneEvent) -> str:
    buffer = io.StringIO()
    sink = TerminalSink(Console(file=buffer, width=200, color_system=None))
    await sink.send(TokenEvent(request_id="r", seq=0, text="Llamas can fly."))
    await sink.send(done)
    return buffer.getvalue()


def done(grounding: Grounding | None, share: float | None = None) -> DoneEvent:
    return DoneEvent(
        request_id="r",
        stop_reason=StopReason.END,
        prompt_tokens=1,
        completion_tokens=3,
        total_ms=10.0,
        supported_share=share,
        grounding=grounding,
    )


async def test_an_unsupported_answer_is_called_so() -> None:
    out = await printed(done(Grounding.UNSUPPORTED, 0.25))
    assert f"{PLAIN} (only 25% of its claims are backed)." in out


async def test_no_relevant_source_is_called_so() -> None:
    out = await printed(done(Grounding.NO_SOURCES))
    assert f"{PLAIN}: no indexed document is about the question." in out


async def test_a_supported_or_unchecked_answer_gets_no_warning() -> None:
    for grounding in (Grounding.SUPPORTED, Grounding.PARTLY, None):
        assert PLAIN not in await printed(done(grounding, 1.0))
