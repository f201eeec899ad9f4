"""Pure retrieval steps: reciprocal-rank fusion, near-duplicates, per-doc cap, context fit."""

from __future__ import annotations

import pytest

from services.query.answer.context import fit_prompt
from services.query.answer.prompts import Turn
from services.query.answer.retrieval import (
    cap_per_document,
    drop_near_duplicates,
    reciprocal_rank_fusion,
)
from shared.documents import Chunk, SearchHit


def hit(chunk_id: str, doc_id: str = "d", text: str | None = None, score: float = 1.0) -> SearchHit:
    chunk = Chunk(
        chunk_id=chunk_id,
        doc_id=doc_id,
        generation="g",
        ordinal=0,
        text=text if text is not None else f"text of {chunk_id}",
        start=0,
        end=1,
    )
    return SearchHit(chunk=chunk, score=score)


def test_rrf_rewards_agreement_between_retrievers() -> None:
    knn = [hit("a"), hit("b"), hit("c")]
    keyword = [hit("c"), hit("d"), hit("b")]
    fused = reciprocal_rank_fusion([("knn", knn), ("keyword", keyword)], rrf_k=60)
    assert [h.chunk.chunk_id for h in fused] == ["c", "b", "a", "d"]
    assert fused[0].score == pytest.approx(1 / 63 + 1 / 61)
    assert fused[0].rank_sources == ("knn", "keyword")
    assert fused[2].rank_sources == ("knn",)


def test_near_duplicates_keep_the_better_ranked_copy() -> None:
    hits = [
        hit("a", "x", "Employees get twenty five vacation days per year."),
        hit("b", "y", "Employees get twenty-five vacation days per year!"),
        hit("c", "x", "Employees get twenty five vacation days per year, plus holidays."),
    ]
    kept = drop_near_duplicates(hits, threshold=0.95)
    assert [h.chunk.chunk_id for h in kept] == ["a", "c"]


def test_cap_per_document_keeps_rank_order() -> None:
    hits = [hit("1", "x"), hit("2", "x"), hit("3", "y"), hit("4", "x")]
    assert [h.chunk.chunk_id for h in cap_per_document(hits, 2)] == ["1", "2", "3"]


def words(text: str) -> int:
    return len(text.split())


def test_fit_prompt_adds_sources_in_rank_order_while_they_fit() -> None:
    long = hit("long", text="word " * 80)
    short = hit("short", text="tiny text")
    fitted = fit_prompt(
        family="llama2",
        system="sys",
        history=[],
        question="q?",
        hits=[hit("a", text="alpha beta"), long, short],
        context_tokens=60,
        max_new_tokens=20,
        count=words,
    )
    assert [h.chunk.chunk_id for h in fitted.sources] == ["a", "short"]
    assert "[1]\nalpha beta" in fitted.prompt
    assert "[2]\ntiny text" in fitted.prompt
    assert words(fitted.prompt) <= 40


def test_fit_prompt_drops_oldest_history_when_the_question_alone_overflows() -> None:
    history = [Turn("old " * 30, "answer " * 30), Turn("recent?", "yes.")]
    fitted = fit_prompt(
        family="llama2",
        system="sys",
        history=history,
        question="q?",
        hits=[],
        context_tokens=40,
        max_new_tokens=10,
        count=words,
    )
    assert fitted.history == [Turn("recent?", "yes.")]
    assert "recent? [/INST] yes. </s>" in fitted.prompt
