"""``rag eval --answers``: generate answers through the query service's own
pipeline (``AnswerService``: retrieval, prompt fitting, the configured chat
model, citation parsing) and measure how often the cited sources include an
expected document.

An answer that cites nothing counts as a miss; ``uncited`` says how many did
so, because a model that never cites is a different problem from one that
cites the wrong sources.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from cli.eval.metrics import mean
from cli.eval.questions import EvalQuestion
from services.query.core import AnswerService
from shared.protocol import AskAction, ErrorEvent, ServerEvent, SourcesEvent, TokenEvent


class CollectingSink:
    """A ConnectionSink that keeps every event of one answer."""

    def __init__(self) -> None:
        self.events: list[ServerEvent] = []

    async def send(self, event: ServerEvent) -> None:
        self.events.append(event)


@dataclass(frozen=True)
class AnswerResult:
    question: EvalQuestion
    answer: str
    cited_doc_ids: tuple[str, ...]
    error: str | None
    seconds: float

    @property
    def cites_expected(self) -> bool:
        return any(doc in self.question.doc_ids for doc in self.cited_doc_ids)


@dataclass(frozen=True)
class AnswerSummary:
    results: tuple[AnswerResult, ...]
    citation_rate: float = field(init=False)
    uncited: int = field(init=False)
    errors: int = field(init=False)

    def __post_init__(self) -> None:
        ok = [r for r in self.results if r.error is None]
        object.__setattr__(self, "citation_rate", mean(float(r.cites_expected) for r in ok))
        object.__setattr__(self, "uncited", sum(not r.cited_doc_ids for r in ok))
        object.__setattr__(self, "errors", len(self.results) - len(ok))

    def as_json(self) -> dict[str, Any]:
        return {
            "citation_rate": round(self.citation_rate, 4),
            "uncited": self.uncited,
            "errors": self.errors,
            "mean_answer_s": round(mean(r.seconds for r in self.results), 3),
            "items": [
                {
                    "question": r.question.question,
                    "answer": r.answer,
                    "cited_doc_ids": list(r.cited_doc_ids),
                    "cites_expected": r.cites_expected,
                    "error": r.error,
                    "seconds": round(r.seconds, 3),
                }
                for r in self.results
            ],
        }

    def text_lines(self) -> list[str]:
        answered = len(self.results) - self.errors
        return [
            f"answers     {answered} generated, {self.errors} failed, "
            f"mean {mean(r.seconds for r in self.results):.1f} s",
            f"cited expected doc  {self.citation_rate:.3f}   ({self.uncited} answers cite nothing)",
        ]


def read_answer(events: Sequence[ServerEvent]) -> tuple[str, tuple[str, ...], str | None]:
    """(answer text, cited doc ids in citation order, error message)."""
    text = "".join(e.text for e in events if isinstance(e, TokenEvent))
    cited: list[str] = []
    for event in events:
        if isinstance(event, SourcesEvent):
            cited.extend(c.doc_id for c in event.citations if c.cited and c.doc_id not in cited)
    errors = [e for e in events if isinstance(e, ErrorEvent)]
    return text, tuple(cited), (f"{errors[0].code}: {errors[0].message}" if errors else None)


async def run_answers(
    questions: Sequence[EvalQuestion], service: AnswerService, mode: str, k: int
) -> AnswerSummary:
    results: list[AnswerResult] = []
    for question in questions:
        ask = AskAction.model_validate(
            {
                "action": "ask",
                "question": question.question,
                "k": k,
                "mode": mode,
                "filters": question.filters,
            }
        )
        sink = CollectingSink()
        started = time.perf_counter()
        await service.answer(service.accept(ask), sink, asyncio.Event())
        text, cited, error = read_answer(sink.events)
        results.append(AnswerResult(question, text, cited, error, time.perf_counter() - started))
    return AnswerSummary(tuple(results))
