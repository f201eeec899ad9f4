"""Retrieval metrics on hand-computed cases."""

from __future__ import annotations

import math

import pytest

from cli.eval.metrics import (
    mean,
    ndcg_at_k,
    passage_hit,
    recall_at_k,
    reciprocal_rank,
)


def test_recall_counts_a_hit_only_inside_the_cutoff() -> None:
    ranked = ["a", "b", "c", "d"]
    assert recall_at_k(ranked, {"c"}, 1) == 0.0
    assert recall_at_k(ranked, {"c"}, 2) == 0.0
    assert recall_at_k(ranked, {"c"}, 3) == 1.0
    assert recall_at_k(ranked, {"c"}, 10) == 1.0


def test_recall_is_any_expected_document() -> None:
    assert recall_at_k(["x", "b"], {"a", "b"}, 2) == 1.0
    assert recall_at_k(["x", "y"], {"a", "b"}, 2) == 0.0
    assert recall_at_k([], {"a"}, 5) == 0.0


def test_reciprocal_rank_uses_the_first_relevant_chunk() -> None:
    assert reciprocal_rank(["a", "b"], {"a"}) == 1.0
    assert reciprocal_rank(["x", "x", "b", "a"], {"a", "b"}) == pytest.approx(1 / 3)
    assert reciprocal_rank(["x", "y"], {"a"}) == 0.0


def test_ndcg_single_relevant_document_at_rank_three() -> None:
    # DCG = 1/log2(4) = 0.5; ideal = 1/log2(2) = 1
    assert ndcg_at_k(["x", "y", "a"], {"a"}, 10) == pytest.approx(0.5)


def test_ndcg_counts_each_document_once() -> None:
    # a at 1 and again at 2 (duplicate earns nothing), b at 3.
    # DCG = 1 + 1/log2(4) = 1.5; ideal for two docs = 1 + 1/log2(3)
    expected = 1.5 / (1 + 1 / math.log2(3))
    assert ndcg_at_k(["a", "a", "b"], {"a", "b"}, 10) == pytest.approx(expected)
    # Three chunks of the one relevant document never exceed the ideal.
    assert ndcg_at_k(["a", "a", "a"], {"a"}, 10) == pytest.approx(1.0)


def test_ndcg_ideal_is_capped_at_k() -> None:
    # Three relevant docs, k=2: ideal = 1 + 1/log2(3); both slots relevant -> 1.0
    assert ndcg_at_k(["a", "b", "c"], {"a", "b", "c"}, 2) == pytest.approx(1.0)
    # Relevant doc beyond k earns nothing.
    assert ndcg_at_k(["x", "y", "a"], {"a"}, 2) == 0.0


def test_ndcg_partial_multi_document() -> None:
    # Only b found, at rank 2: DCG = 1/log2(3); ideal = 1 + 1/log2(3)
    expected = (1 / math.log2(3)) / (1 + 1 / math.log2(3))
    assert ndcg_at_k(["x", "b"], {"a", "b"}, 10) == pytest.approx(expected)
    assert ndcg_at_k(["x"], set(), 10) == 0.0


def test_passage_hit_ignores_case_and_reflowed_whitespace() -> None:
    chunks = ["first chunk", "The quick\n  brown FOX jumps"]
    assert passage_hit(chunks, "quick brown fox")
    assert not passage_hit(chunks, "quick red fox")
    assert not passage_hit([], "anything")


def test_mean_of_nothing_is_zero() -> None:
    assert mean([]) == 0.0
    assert mean([1.0, 0.0, 0.5]) == pytest.approx(0.5)


def test_passage_hit_accepts_any_of_its_alternatives() -> None:
    chunks = ["use shlex.split(s) to split"]
    assert passage_hit(chunks, ["str.split(", "shlex.split("])
    assert not passage_hit(chunks, ["str.split(", "re.split("])


def test_passage_in_top_n_counts_only_chunks_of_expected_documents() -> None:
    from cli.eval.questions import EvalQuestion
    from cli.eval.runner import QuestionResult, RetrievedChunk, score_question, summarise

    question = EvalQuestion(question="q?", doc_ids=["right.html"], passage=["key("])
    retrieved = (
        RetrievedChunk(1, "other.html", None, 0.9, "mentions key( too"),
        RetrievedChunk(2, "right.html", None, 0.8, "the attribute table"),
        RetrievedChunk(3, "right.html", None, 0.7, "more table"),
        RetrievedChunk(4, "right.html", None, 0.6, "key(x) returns the key"),
    )
    result = QuestionResult(question, retrieved, 0.01)
    score = score_question(result, k=5)
    # The unrelated page's chunk does not count; the answer is 4th.
    assert score.passage_at == {3: False, 5: True}
    assert score.passage_hit is True
    summary = summarise([result], "knn", 5)
    assert summary.metrics["passage@3"] == 0.0
    assert summary.metrics["passage@5"] == 1.0
    assert summary.metrics["mrr"] == 0.5
