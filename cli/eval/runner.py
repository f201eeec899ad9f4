"""Run the questions through the query service's own retrieval and score them.

Retrieval is ``services.query.answer.retrieval.Retriever`` unchanged (same settings,
same filters, same de-duplication and per-document cap), so the numbers
describe what the chat model would be given. Scoring is pure
(``score_question``, ``summarise``); only ``run_retrieval`` does I/O.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from cli.eval.metrics import (
    mean,
    ndcg_at_k,
    passage_hit,
    recall_at_k,
    reciprocal_rank,
)
from cli.eval.questions import EvalQuestion
from services.query.answer.retrieval import Retriever, SearchMode
from shared.access import Access
from shared.documents import SearchHit

CUTOFFS = (1, 5, 10)
# "Passage in top n": one of the first n chunks is from an expected document
# and holds a key string. Reported at 3 and 5 besides --k.
PASSAGE_CUTOFFS = (3, 5)
# Ranking metrics look at the first 10 chunks whatever --k is.
MIN_DEPTH = 10


@dataclass(frozen=True)
class RetrievedChunk:
    rank: int
    doc_id: str
    title: str | None
    score: float
    text: str

    @classmethod
    def from_hit(cls, rank: int, hit: SearchHit) -> RetrievedChunk:
        chunk = hit.chunk
        return cls(rank, chunk.doc_id, chunk.title, hit.score, chunk.text)


@dataclass(frozen=True)
class QuestionResult:
    question: EvalQuestion
    retrieved: tuple[RetrievedChunk, ...]
    seconds: float


@dataclass(frozen=True)
class QuestionScore:
    recall: dict[int, float]
    reciprocal_rank: float
    ndcg10: float
    first_relevant_rank: int | None
    passage_hit: bool | None  # at k; None when the question gives no passage
    hit_at_k: bool
    passage_at: dict[int, bool] | None = None  # at PASSAGE_CUTOFFS


@dataclass(frozen=True)
class Timing:
    total_s: float
    mean_s: float
    p50_s: float
    p95_s: float

    def as_dict(self) -> dict[str, float]:
        return {k: round(v, 4) for k, v in vars(self).items()}


@dataclass(frozen=True)
class EvalSummary:
    mode: str
    k: int
    metrics: dict[str, float]
    passage_rate: float | None
    passage_questions: int
    scores: tuple[QuestionScore, ...]
    results: tuple[QuestionResult, ...]
    timing: Timing

    def metric_row(self) -> dict[str, Any]:
        row: dict[str, Any] = dict(self.metrics)
        row["passage_rate"] = self.passage_rate
        return row


def retrieval_depth(k: int) -> int:
    return max(k, MIN_DEPTH)


def score_question(result: QuestionResult, k: int) -> QuestionScore:
    ranked = [chunk.doc_id for chunk in result.retrieved]
    expected = set(result.question.doc_ids)
    rr = reciprocal_rank(ranked, expected)
    passages = result.question.passages

    def found_within(n: int) -> bool:
        top = [c.text for c in result.retrieved[:n] if c.doc_id in expected]
        return passage_hit(top, passages)

    return QuestionScore(
        recall={cut: recall_at_k(ranked, expected, cut) for cut in CUTOFFS},
        reciprocal_rank=rr,
        ndcg10=ndcg_at_k(ranked, expected, 10),
        first_relevant_rank=round(1 / rr) if rr else None,
        passage_hit=found_within(k) if passages else None,
        hit_at_k=bool(recall_at_k(ranked, expected, k)),
        passage_at={n: found_within(n) for n in PASSAGE_CUTOFFS} if passages else None,
    )


def percentile(values: Sequence[float], fraction: float) -> float:
    """Nearest-rank percentile (no interpolation); 0.0 for no values."""
    if not values:
        return 0.0
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(fraction * len(ordered) + 0.5) - 1))
    return ordered[index]


def summarise(results: Sequence[QuestionResult], mode: str, k: int) -> EvalSummary:
    scores = [score_question(result, k) for result in results]
    metrics = {f"recall@{cut}": mean(s.recall[cut] for s in scores) for cut in CUTOFFS}
    metrics["mrr"] = mean(s.reciprocal_rank for s in scores)
    metrics["ndcg@10"] = mean(s.ndcg10 for s in scores)
    with_passage = [s.passage_hit for s in scores if s.passage_hit is not None]
    for n in PASSAGE_CUTOFFS:
        at_n = [s.passage_at[n] for s in scores if s.passage_at is not None]
        if at_n:
            metrics[f"passage@{n}"] = mean(float(hit) for hit in at_n)
    seconds = [r.seconds for r in results]
    return EvalSummary(
        mode=mode,
        k=k,
        metrics=metrics,
        passage_rate=mean(float(hit) for hit in with_passage) if with_passage else None,
        passage_questions=len(with_passage),
        scores=tuple(scores),
        results=tuple(results),
        timing=Timing(
            total_s=sum(seconds),
            mean_s=mean(seconds),
            p50_s=percentile(seconds, 0.5),
            p95_s=percentile(seconds, 0.95),
        ),
    )


async def run_retrieval(
    questions: Sequence[EvalQuestion], retriever: Retriever, mode: SearchMode, k: int
) -> list[QuestionResult]:
    """One retrieval per question, exactly as the query service asks for it."""
    depth = retrieval_depth(k)
    results: list[QuestionResult] = []
    for question in questions:
        started = time.perf_counter()
        hits = await retriever.retrieve(
            question.question, depth, dict(question.filters), mode, Access.everything()
        )
        elapsed = time.perf_counter() - started
        chunks = tuple(RetrievedChunk.from_hit(rank, hit) for rank, hit in enumerate(hits, 1))
        results.append(QuestionResult(question, chunks, elapsed))
    return results
