"""Turn evaluation results into the ``--json`` object and the human report. Pure."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from cli.eval.answers import AnswerSummary
from cli.eval.runner import EvalSummary, QuestionResult, QuestionScore

METRIC_KEYS = ("recall@1", "recall@5", "recall@10", "mrr", "ndcg@10")
PASSAGE_KEYS = ("passage@3", "passage@5")
_EXCERPT = 240


@dataclass(frozen=True)
class CompareRow:
    chunk_tokens: int
    overlap_tokens: int
    chunks: int
    summary: EvalSummary


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 4)


def question_json(result: QuestionResult, score: QuestionScore, k: int) -> dict[str, Any]:
    q = result.question
    return {
        "question": q.question,
        "expected_doc_ids": q.doc_ids,
        "passage": q.passage,
        f"hit@{k}": score.hit_at_k,
        "first_relevant_rank": score.first_relevant_rank,
        "reciprocal_rank": _round(score.reciprocal_rank),
        "ndcg@10": _round(score.ndcg10),
        "passage_hit": score.passage_hit,
        "seconds": round(result.seconds, 4),
        "retrieved": [
            {
                "rank": c.rank,
                "doc_id": c.doc_id,
                "title": c.title,
                "score": c.score,
                "text": c.text,
            }
            for c in result.retrieved
        ],
    }


def summary_json(
    summary: EvalSummary, context: dict[str, Any], answers: AnswerSummary | None = None
) -> dict[str, Any]:
    out: dict[str, Any] = {key: _round(summary.metrics[key]) for key in METRIC_KEYS}
    out["passage_rate"] = _round(summary.passage_rate)
    out.update({key: _round(summary.metrics.get(key)) for key in PASSAGE_KEYS})
    out["passage_questions"] = summary.passage_questions
    out["question_count"] = len(summary.results)
    out["mode"] = summary.mode
    out["k"] = summary.k
    out["timing"] = summary.timing.as_dict()
    out.update(context)
    out["questions"] = [
        question_json(r, s, summary.k) for r, s in zip(summary.results, summary.scores, strict=True)
    ]
    if answers is not None:
        out["answers"] = answers.as_json()
    return out


def compare_json(rows: Sequence[CompareRow], context: dict[str, Any]) -> dict[str, Any]:
    return {
        **context,
        "runs": [
            {
                "chunk_tokens": row.chunk_tokens,
                "overlap_tokens": row.overlap_tokens,
                "chunks": row.chunks,
                "mode": row.summary.mode,
                **{key: _round(row.summary.metrics[key]) for key in METRIC_KEYS},
                "passage_rate": _round(row.summary.passage_rate),
                **{key: _round(row.summary.metrics.get(key)) for key in PASSAGE_KEYS},
                "mean_query_s": round(row.summary.timing.mean_s, 4),
            }
            for row in rows
        ],
    }


def _titles(result: QuestionResult, k: int) -> list[str]:
    return [f"{c.rank}. {c.title or c.doc_id} ({c.doc_id})" for c in result.retrieved[:k]]


def failures_text(summary: EvalSummary) -> list[str]:
    """One block per question whose expected documents are not in the top k."""
    lines: list[str] = []
    for result, score in zip(summary.results, summary.scores, strict=True):
        if score.hit_at_k:
            continue
        lines.append(f"✗ {result.question.question}")
        lines.append(f"    expected: {', '.join(result.question.doc_ids)}")
        found = f" (first at rank {score.first_relevant_rank})" if score.first_relevant_rank else ""
        lines.append(f"    retrieved top {summary.k}{found}:")
        lines.extend(f"      {title}" for title in _titles(result, summary.k) or ["(nothing)"])
    return lines


def passage_misses_text(summary: EvalSummary) -> list[str]:
    lines: list[str] = []
    for result, score in zip(summary.results, summary.scores, strict=True):
        if score.passage_hit is False and score.hit_at_k:
            excerpt = " | ".join(result.question.passages)[:_EXCERPT]
            lines.append(f"~ {result.question.question}")
            lines.append(f"    document found, passage not in top {summary.k}: {excerpt!r}")
    return lines


def metrics_text(summary: EvalSummary) -> list[str]:
    m = summary.metrics
    lines = [
        f"questions   {len(summary.results)}   mode {summary.mode}   k {summary.k}",
        f"recall@1    {m['recall@1']:.3f}",
        f"recall@5    {m['recall@5']:.3f}",
        f"recall@10   {m['recall@10']:.3f}",
        f"MRR         {m['mrr']:.3f}",
        f"nDCG@10     {m['ndcg@10']:.3f}",
    ]
    for key in PASSAGE_KEYS:
        if key in m:
            lines.append(f"{key:<11} {m[key]:.3f}")
    if summary.passage_rate is not None:
        lines.append(
            f"passage@{summary.k}   {summary.passage_rate:.3f}"
            f"   ({summary.passage_questions} questions give a passage)"
        )
    t = summary.timing
    lines.append(
        f"retrieval   total {t.total_s:.2f} s   mean {t.mean_s * 1000:.0f} ms"
        f"   p50 {t.p50_s * 1000:.0f} ms   p95 {t.p95_s * 1000:.0f} ms"
    )
    return lines


def settings_text(context: dict[str, Any]) -> list[str]:
    """The settings behind the numbers, e.g. ``settings  embedder=… chunk_tokens=200``.
    Chunking settings take effect at ingest: an index built under other
    settings is re-indexed when its documents are sent again."""
    pairs = " ".join(f"{key}={value}" for key, value in context.items())
    return [f"settings    {pairs}"]


def human_report(
    summary: EvalSummary,
    answers: AnswerSummary | None = None,
    context: dict[str, Any] | None = None,
) -> str:
    lines = [*(settings_text(context) if context else []), *metrics_text(summary)]
    if answers is not None:
        lines.extend(answers.text_lines())
    failures = failures_text(summary)
    if failures:
        lines.append("")
        lines.append(f"misses ({sum(not s.hit_at_k for s in summary.scores)}):")
        lines.extend(failures)
    misses = passage_misses_text(summary)
    if misses:
        lines.append("")
        lines.extend(misses)
    return "\n".join(lines)


def compare_text(rows: Sequence[CompareRow]) -> str:
    header = (
        f"{'chunk':>6} {'overlap':>7} {'chunks':>6} {'mode':<7} "
        f"{'R@1':>6} {'R@5':>6} {'R@10':>6} {'MRR':>6} {'nDCG10':>7} {'passage':>7} {'ms/q':>6}"
    )
    lines = [header, "-" * len(header)]
    for row in rows:
        m, s = row.summary.metrics, row.summary
        passage = "-" if s.passage_rate is None else f"{s.passage_rate:.3f}"
        lines.append(
            f"{row.chunk_tokens:>6} {row.overlap_tokens:>7} {row.chunks:>6} {s.mode:<7} "
            f"{m['recall@1']:>6.3f} {m['recall@5']:>6.3f} {m['recall@10']:>6.3f} "
            f"{m['mrr']:>6.3f} {m['ndcg@10']:>7.3f} {passage:>7} {s.timing.mean_s * 1000:>6.0f}"
        )
    return "\n".join(lines)
