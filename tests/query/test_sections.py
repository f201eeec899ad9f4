"""Page ranking by section path (services/query/answer/sections.py)."""

from __future__ import annotations

import pytest

from services.query.answer.retrieval import Retriever, reciprocal_rank_fusion
from services.query.answer.sections import (
    SectionRanker,
    add_ranking,
    as_rank_scores,
    section_header,
)
from shared.access import Access
from shared.documents import Chunk, EmbeddedChunk, SearchHit
from shared.settings import QuerySettings
from tests.fakes.embedder import FakeEmbedder
from tests.fakes.vector_index import FakeVectorIndex


def hit(
    chunk_id: str,
    title: str | None = None,
    section: str | None = None,
    score: float = 1.0,
    text: str | None = None,
) -> SearchHit:
    chunk = Chunk(
        chunk_id=chunk_id,
        doc_id=f"doc-{chunk_id}",
        generation="g",
        ordinal=0,
        text=text or f"text of {chunk_id}",
        start=0,
        end=1,
        title=title,
        section=section,
    )
    return SearchHit(chunk=chunk, score=score)


def ids(hits: list[SearchHit]) -> list[str]:
    return [h.chunk.chunk_id for h in hits]


def test_section_header_is_the_context_header_without_a_repeated_title() -> None:
    chunk = hit("a", "shlex — Simple lexical analysis", "shlex > Functions¶ > split").chunk
    assert section_header(chunk) == "shlex — Simple lexical analysis › Functions › split"
    assert section_header(hit("b").chunk) == ""
    assert len(section_header(hit("c", "T" * 500).chunk)) == 200


def test_add_ranking_adds_a_weighted_reciprocal_rank_and_resorts() -> None:
    knn = [hit("a"), hit("b"), hit("c")]
    keyword = [hit("b"), hit("a")]
    fused = reciprocal_rank_fusion([("knn", knn), ("keyword", keyword)], 60)
    assert ids(fused) == ["a", "b", "c"]  # a and b tie; a came first
    out = add_ranking(fused, [hit("c"), hit("b"), hit("a")], 60, 1.0)
    # Equal to a three-way fusion, which is what the weight means.
    three = reciprocal_rank_fusion(
        [("knn", knn), ("keyword", keyword), ("section", [hit("c"), hit("b"), hit("a")])], 60
    )
    assert ids(out) == ids(three) == ["b", "a", "c"]
    assert [h.score for h in out] == pytest.approx([h.score for h in three])
    assert out[0].rank_sources == ("knn", "keyword", "section")
    # Weight 0 changes no order; a hit missing from the ranking keeps its score.
    assert ids(add_ranking(fused, [hit("c")], 60, 0.0)) == ids(fused)
    assert add_ranking(fused, [hit("c")], 60, 1.0)[0].score == fused[0].score


def test_as_rank_scores_keeps_the_order() -> None:
    hits = [hit("a", score=0.9), hit("b", score=0.2)]
    out = as_rank_scores(hits, 60)
    assert ids(out) == ["a", "b"] and [h.score for h in out] == [1 / 61, 1 / 62]


async def test_ranker_orders_by_header_similarity_and_caches_headers() -> None:
    embedder = FakeEmbedder()
    ranker = SectionRanker(embedder, cache_size=2)
    hits = [
        hit("1", "argparse", "Parser > add_argument"),
        hit("2", "shlex", "split shell string"),
        hit("3", "argparse", "Parser > add_argument"),  # same header: embedded once
        hit("4"),  # no header: last
    ]
    question = embedder.vector("split a shell string")
    ranked = await ranker.ranked(question, hits)
    assert ids(ranked)[0] == "2" and ids(ranked)[-1] == "4"
    assert len(embedder.calls) == 1 and len(embedder.calls[0]) == 2
    await ranker.ranked(question, hits[:2])
    assert len(embedder.calls) == 1  # both cached
    await ranker.ranked(question, [hit("5", "new")])
    await ranker.ranked(question, hits[:1])  # evicted by the bound of 2: embedded again
    assert len(embedder.calls) == 3


async def test_retriever_moves_the_page_the_question_names_up() -> None:
    # Two chunks of equal body; only the header says which page is about the question.
    embedder = FakeEmbedder()
    index = FakeVectorIndex()
    await index.ensure_index(embedder.dimension)
    body = "the function returns a list of tokens from the string"
    chunks = [
        hit("p", "argparse", "Parser", text=body).chunk,
        hit("q", "shlex", "split a shell like string", text=body + " token").chunk,
    ]
    vectors = await embedder.embed_documents([c.text for c in chunks])
    await index.write([EmbeddedChunk(c, v) for c, v in zip(chunks, vectors, strict=True)])
    question = "split a shell like string into tokens"
    for mode in ("knn", "hybrid"):
        off = Retriever(embedder, index, QuerySettings(section_weight=0.0))
        on = Retriever(embedder, index, QuerySettings(section_weight=2.0))
        before = await off.retrieve(question, 2, {}, mode, Access.everything())
        after = await on.retrieve(question, 2, {}, mode, Access.everything())
        assert ids(before) == ["p", "q"], mode  # the body alone prefers p
        assert ids(after)[0] == "q", mode
