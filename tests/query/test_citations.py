"""Citations: which [n] an answer used, and how the sources event lists them."""

from __future__ import annotations

import pytest

from services.query.answer.citations import build_citations, cited_numbers, excerpt
from shared.documents import Chunk, SearchHit


def hit(doc_id: str, text: str = "some text", score: float = 1.0) -> SearchHit:
    chunk = Chunk(
        chunk_id=doc_id, doc_id=doc_id, generation="g", ordinal=0, text=text, start=0, end=9
    )
    return SearchHit(chunk=chunk, score=score)


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        ("Llamas eat hay [1].", {1}),
        ("See [1][3] and [2, 3].", {1, 2, 3}),
        ("As [Source 2] says", {2}),
        ("No citation here.", set()),
        ("Out of range [7] and [0].", set()),
        ("A list [a] or [1.5] is not a citation.", set()),
    ],
)
def test_cited_numbers(answer: str, expected: set[int]) -> None:
    assert cited_numbers(answer, available=3) == expected


def test_cited_sources_come_first_with_their_numbers_unused_ones_get_null() -> None:
    sources = [hit("a", score=0.9), hit("b", score=0.8), hit("c", score=0.7)]
    citations = build_citations(sources, "B says so [2], and A agrees [1].", excerpt_chars=50)
    assert [(c.doc_id, c.n, c.cited) for c in citations] == [
        ("a", 1, True),
        ("b", 2, True),
        ("c", None, False),
    ]
    assert citations[2].score == 0.7


def test_excerpt_cuts_at_a_word_and_collapses_whitespace() -> None:
    assert excerpt("one  two\nthree four", 13) == "one two three…"
    assert excerpt("short", 10) == "short"


def test_each_citation_says_which_searches_found_it() -> None:
    """What the page shows instead of the raw fused score (≈ 0.03 for every source)."""
    from dataclasses import replace

    from services.query.answer.retrieval import reciprocal_rank_fusion

    both, words, meaning = hit("both"), hit("words"), hit("meaning")
    fused = reciprocal_rank_fusion([("knn", [both, meaning]), ("keyword", [both, words])], 60)
    citations = build_citations([*fused, replace(hit("knn-mode"))], "", excerpt_chars=50)
    found = {c.doc_id: (c.number, c.found_by) for c in citations}
    assert found == {
        "both": (1, ["keyword", "vector"]),
        "meaning": (2, ["vector"]),
        "words": (3, ["keyword"]),
        "knn-mode": (4, ["vector"]),  # a k-NN search alone records no rank sources
    }
