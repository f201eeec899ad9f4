"""Citations: which [n] an answer used, and how the sources event lists them."""

from __future__ import annotations

import pytest

from services.query.citations import build_citations, cited_numbers, excerpt
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
