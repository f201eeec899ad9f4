"""``rag eval --answers``: generate answers through the query service's own
pipeline (``AnswerService``: retrieval, prompt fitting, the configured chat
model, sentence attribution) and measure the answers, not only retrieval:

- citation precision: of the documents an answer cites (with attribution:
  the documents that support one of its sentences), the share that are
  expected documents; summed over all answers (micro average).
- citation recall: the share of answers citing at least one expected
  document (any one of ``doc_ids`` counts, as in retrieval). An answer that
  cites nothing is a miss; ``uncited`` says how many did so.
- supported sentences: supported / (supported + unsupported) over the
  answers' distinct sentences (a sentence repeated in one answer counts
  once, so a looping model does not inflate it); ``no_claim`` sentences
  ("Here is how:") are left out. ``repeated`` beside it: the share of checked
  sentences that repeat an earlier one of the same answer.
- key string: the share of answers holding the question's expected key
  string (its ``passage``, or one of its alternatives), compared like
  passages (case-insensitive, whitespace collapsed); questions without one
  are left out.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from cli.eval.metrics import mean
from cli.eval.questions import EvalQuestion
from services.query.answer.attribution import distinct_claims
from services.query.answer.service import AnswerService
from services.query.transports.inprocess import InProcessConnection
from shared.access import Principal
from shared.protocol import (
    AnswerSentence,
    DoneEvent,
    ErrorEvent,
    SentenceSupport,
    ServerEvent,
    SourcesEvent,
    TokenEvent,
)


class CollectingSink:
    """A ConnectionSink that keeps every event of one answer."""

    def __init__(self) -> None:
        self.events: list[ServerEvent] = []

    async def send(self, event: ServerEvent) -> None:
        self.events.append(event)


def _normalised(text: str) -> str:
    return " ".join(text.split()).casefold()


def holds_key(answer: str, keys: Sequence[str]) -> bool:
    text = _normalised(answer)
    return any(_normalised(key) in text for key in keys)


@dataclass(frozen=True)
class AnswerResult:
    question: EvalQuestion
    answer: str
    cited_doc_ids: tuple[str, ...]
    error: str | None
    seconds: float
    sentences: tuple[AnswerSentence, ...] | None = None
    attribution_ms: float | None = None

    @property
    def cites_expected(self) -> bool:
        return any(doc in self.question.doc_ids for doc in self.cited_doc_ids)

    @property
    def expected_cited(self) -> int:
        return sum(doc in self.question.doc_ids for doc in self.cited_doc_ids)

    def count(self, support: SentenceSupport) -> int:
        return sum(s.support == support for s in self.sentences or ())

    @property
    def holds_key(self) -> bool | None:
        keys = self.question.passages
        return holds_key(self.answer, keys) if keys else None


def _ratio(part: int, whole: int) -> float:
    return part / whole if whole else 0.0


@dataclass(frozen=True)
class AnswerSummary:
    results: tuple[AnswerResult, ...]
    citation_precision: float = field(init=False)
    citation_recall: float = field(init=False)
    supported_share: float = field(init=False)
    repeated_share: float = field(init=False)
    key_rate: float | None = field(init=False)
    key_questions: int = field(init=False)
    uncited: int = field(init=False)
    errors: int = field(init=False)
    sentences: int = field(init=False)

    def __post_init__(self) -> None:
        ok = [r for r in self.results if r.error is None]
        cited = sum(len(r.cited_doc_ids) for r in ok)
        claims = [distinct_claims(r.answer, r.sentences or ()) for r in ok]
        supported = sum(sum(c.values()) for c in claims)
        checked = sum(len(c) for c in claims)
        written = sum(
            r.count(SentenceSupport.SUPPORTED) + r.count(SentenceSupport.UNSUPPORTED) for r in ok
        )
        keyed = [r.holds_key for r in ok if r.holds_key is not None]
        values = {
            "citation_precision": _ratio(sum(r.expected_cited for r in ok), cited),
            "citation_recall": mean(float(r.cites_expected) for r in ok),
            "supported_share": _ratio(supported, checked),
            "repeated_share": _ratio(written - checked, written),
            "key_rate": mean(float(k) for k in keyed) if keyed else None,
            "key_questions": len(keyed),
            "uncited": sum(not r.cited_doc_ids for r in ok),
            "errors": len(self.results) - len(ok),
            "sentences": sum(len(r.sentences or ()) for r in ok),
        }
        for name, value in values.items():
            object.__setattr__(self, name, value)

    @property
    def citation_rate(self) -> float:
        """The earlier name of citation recall."""
        return self.citation_recall

    def _attribution_ms(self) -> float | None:
        times = [r.attribution_ms for r in self.results if r.attribution_ms is not None]
        return mean(times) if times else None

    def as_json(self) -> dict[str, Any]:
        attribution_ms = self._attribution_ms()
        return {
            "citation_precision": round(self.citation_precision, 4),
            "citation_recall": round(self.citation_recall, 4),
            "citation_rate": round(self.citation_recall, 4),
            "supported_sentences": round(self.supported_share, 4),
            "repeated_sentences": round(self.repeated_share, 4),
            "key_string_rate": None if self.key_rate is None else round(self.key_rate, 4),
            "key_string_questions": self.key_questions,
            "uncited": self.uncited,
            "errors": self.errors,
            "sentences": self.sentences,
            "mean_answer_s": round(mean(r.seconds for r in self.results), 3),
            "mean_attribution_ms": None if attribution_ms is None else round(attribution_ms, 1),
            "items": [
                {
                    "question": r.question.question,
                    "answer": r.answer,
                    "cited_doc_ids": list(r.cited_doc_ids),
                    "cites_expected": r.cites_expected,
                    "holds_key": r.holds_key,
                    "supported": r.count(SentenceSupport.SUPPORTED),
                    "unsupported": r.count(SentenceSupport.UNSUPPORTED),
                    "error": r.error,
                    "seconds": round(r.seconds, 3),
                }
                for r in self.results
            ],
        }

    def text_lines(self) -> list[str]:
        answered = len(self.results) - self.errors
        key = "-" if self.key_rate is None else f"{self.key_rate:.3f}"
        attribution_ms = self._attribution_ms()
        timing = "" if attribution_ms is None else f", attribution {attribution_ms:.0f} ms"
        return [
            f"answers     {answered} generated, {self.errors} failed, "
            f"mean {mean(r.seconds for r in self.results):.1f} s{timing}",
            f"citation precision  {self.citation_precision:.3f}"
            f"   recall {self.citation_recall:.3f}   ({self.uncited} answers cite nothing)",
            f"supported sentences {self.supported_share:.3f}   ({self.sentences} sentences, "
            f"{self.repeated_share:.1%} repeated)",
            f"key string          {key}   ({self.key_questions} questions give one)",
        ]


@dataclass(frozen=True)
class ReadAnswer:
    text: str
    cited_doc_ids: tuple[str, ...]
    error: str | None
    sentences: tuple[AnswerSentence, ...] | None
    attribution_ms: float | None


def read_answer(events: Sequence[ServerEvent]) -> ReadAnswer:
    """The answer text, cited doc ids in citation order, error, attribution."""
    text = "".join(e.text for e in events if isinstance(e, TokenEvent))
    cited: list[str] = []
    sentences: tuple[AnswerSentence, ...] | None = None
    for event in events:
        if isinstance(event, SourcesEvent):
            cited.extend(c.doc_id for c in event.citations if c.cited and c.doc_id not in cited)
            if event.sentences is not None:
                sentences = tuple(event.sentences)
    errors = [e for e in events if isinstance(e, ErrorEvent)]
    error = f"{errors[0].code}: {errors[0].message}" if errors else None
    done = [e for e in events if isinstance(e, DoneEvent)]
    attribution_ms = done[-1].attribution_ms if done else None
    return ReadAnswer(text, tuple(cited), error, sentences, attribution_ms)


async def run_answers(
    questions: Sequence[EvalQuestion], service: AnswerService, mode: str, k: int
) -> AnswerSummary:
    results: list[AnswerResult] = []
    # Through the front door, as any client: a question the service refuses
    # (a bad filter in the set) is an answer with its error, not a crash.
    # The evaluation is an operator's tool: it reads the whole corpus.
    connection = InProcessConnection(service, Principal.single_user())
    for question in questions:
        frame = {"question": question.question, "k": k, "mode": mode, "filters": question.filters}
        sink = CollectingSink()
        started = time.perf_counter()
        await connection.ask(frame, sink)
        read = read_answer(sink.events)
        results.append(
            AnswerResult(
                question,
                read.text,
                read.cited_doc_ids,
                read.error,
                time.perf_counter() - started,
                read.sentences,
                read.attribution_ms,
            )
        )
    return AnswerSummary(tuple(results))
