"""The VectorIndex contract: every adapter behaves the same on these."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import numpy as np
import pytest

from shared.access import Access
from shared.documents import Chunk, EmbeddedChunk, SearchHit, Vector, chunk_id_for
from shared.errors import DimensionMismatch, NoDocumentsIndexed
from shared.ingest import MetadataValue
from shared.ports import VectorIndex
from tests.contract.conftest import IndexUnderTest

DIM = 8

ALL = Access.everything()


def unit(*weights: float) -> Vector:
    v = np.zeros(DIM, dtype=np.float32)
    v[: len(weights)] = weights
    return (v / np.linalg.norm(v)).astype(np.float32)


def make_chunk(
    doc_id: str,
    generation: str,
    ordinal: int,
    vector: Vector,
    text: str = "plain filler words",
    metadata: dict[str, MetadataValue] | None = None,
) -> EmbeddedChunk:
    chunk = Chunk(
        chunk_id=chunk_id_for(doc_id, generation, ordinal),
        doc_id=doc_id,
        generation=generation,
        ordinal=ordinal,
        text=text,
        start=0,
        end=len(text),
        title=f"Title of {doc_id}",
        metadata=metadata or {},
    )
    return EmbeddedChunk(chunk=chunk, vector=vector)


@pytest.fixture(autouse=True)
async def _close_opened(under_test: IndexUnderTest) -> AsyncIterator[None]:
    yield
    for index in under_test.opened:
        await index.close()


def ids(hits: list[SearchHit]) -> list[str]:
    return [h.chunk.chunk_id for h in hits]


async def test_ensure_index_is_idempotent(under_test: IndexUnderTest, index: VectorIndex) -> None:
    await index.ensure_index(DIM)
    await index.write([make_chunk("kept.md", "g", 0, unit(1), "kept words")])
    await under_test.eventually(lambda: index.generations("kept.md"), bool)
    await index.ensure_index(DIM)  # THEN the second call keeps the index as it was
    assert await index.generations("kept.md") == {"g": 1}
    with pytest.raises(DimensionMismatch):
        await index.ensure_index(DIM + 1)


async def test_ensure_index_with_another_dimension_raises(index: VectorIndex) -> None:
    await index.ensure_index(DIM)
    with pytest.raises(DimensionMismatch):
        await index.ensure_index(DIM * 2)


async def test_a_second_adapter_sees_the_dimension(under_test: IndexUnderTest) -> None:
    await under_test.new().ensure_index(DIM)
    with pytest.raises(DimensionMismatch):
        await under_test.new().ensure_index(DIM + 1)


async def test_documents_with_chunks_are_listed(
    under_test: IndexUnderTest, index: VectorIndex
) -> None:
    await index.ensure_index(DIM)
    await index.write([make_chunk(d, "g1", 0, unit(1, 0)) for d in ("b.md", "a.md", "c.md")])
    await index.write([make_chunk("a.md", "g2", 1, unit(1, 1))])
    listed = await under_test.eventually(index.doc_ids, lambda ids: len(ids) == 3)
    assert listed == ["a.md", "b.md", "c.md"]
    await index.delete_chunks(await index.chunk_ids("b.md"))
    after = await under_test.eventually(index.doc_ids, lambda ids: len(ids) == 2)
    assert after == ["a.md", "c.md"]


async def test_written_generations_are_counted(
    under_test: IndexUnderTest, index: VectorIndex
) -> None:
    await index.ensure_index(DIM)
    await index.write([make_chunk("a.md", "g1", i, unit(1, i)) for i in range(3)])
    gens = await under_test.eventually(lambda: index.generations("a.md"), lambda g: g == {"g1": 3})
    assert gens == {"g1": 3}
    assert await index.generations("missing.md") == {}


async def test_the_chunks_but_one_generations_are_listed_and_deleted_by_id(
    under_test: IndexUnderTest, index: VectorIndex
) -> None:
    await index.ensure_index(DIM)
    old = [make_chunk("a.md", "old", i, unit(1, i)) for i in range(3)]
    new = [make_chunk("a.md", "new", i, unit(i, 1)) for i in range(2)]
    other = [make_chunk("b.md", "old", 0, unit(0, 0, 1))]
    await index.write(old + new + other)
    await under_test.eventually(lambda: index.generations("a.md"), lambda g: len(g) == 2)

    doomed = await index.chunk_ids("a.md", "new")
    assert len(set(doomed)) == 3
    assert await index.delete_chunks(doomed) == 3

    gens = await under_test.eventually(lambda: index.generations("a.md"), lambda g: len(g) == 1)
    assert gens == {"new": 2}
    assert await under_test.eventually(lambda: index.generations("b.md"), bool) == {"old": 1}


async def test_deleting_ids_already_gone_is_fine(
    under_test: IndexUnderTest, index: VectorIndex
) -> None:
    await index.ensure_index(DIM)
    await index.write(
        [make_chunk("a.md", "g1", 0, unit(1)), make_chunk("a.md", "g2", 0, unit(0, 1))]
    )
    await under_test.eventually(lambda: index.generations("a.md"), lambda g: len(g) == 2)
    ids = await index.chunk_ids("a.md")
    assert len(set(ids)) == 2

    await index.delete_chunks(ids)
    await index.delete_chunks(ids)  # a redelivered clean-up deletes them again

    assert await under_test.eventually(lambda: index.generations("a.md"), lambda g: not g) == {}
    assert await index.chunk_ids("a.md") == []


async def test_knn_ranks_by_similarity(under_test: IndexUnderTest, index: VectorIndex) -> None:
    await index.ensure_index(DIM)
    near = make_chunk("near.md", "g", 0, unit(1, 0.1))
    middle = make_chunk("middle.md", "g", 0, unit(1, 1))
    far = make_chunk("far.md", "g", 0, unit(0, 0, 1))
    await index.write([far, near, middle])

    hits = await under_test.eventually(
        lambda: index.knn_search(unit(1), 3, {}, ALL), lambda h: len(h) == 3
    )

    assert ids(hits) == [near.chunk.chunk_id, middle.chunk.chunk_id, far.chunk.chunk_id]
    assert hits[0].score > hits[1].score > hits[2].score
    assert hits[0].chunk == near.chunk
    assert all(h.store_id for h in hits)


async def test_knn_filters_before_ranking(under_test: IndexUnderTest, index: VectorIndex) -> None:
    """A selective filter still yields k hits, not the few that survive a post-filter."""
    await index.ensure_index(DIM)
    crowd = [
        make_chunk(f"hr{i}.md", "g", 0, unit(1, i / 100), metadata={"team": "hr"})
        for i in range(40)
    ]
    rare = [
        make_chunk(f"it{i}.md", "g", 0, unit(0, 1, i / 10), metadata={"team": "it"})
        for i in range(4)
    ]
    await index.write(crowd + rare)
    await under_test.eventually(
        lambda: index.knn_search(unit(1), 50, {}, ALL), lambda h: len(h) == 44
    )

    hits = await index.knn_search(unit(1), 3, {"team": "it"}, ALL)

    assert len(hits) == 3
    assert {h.chunk.metadata["team"] for h in hits} == {"it"}


async def test_knn_filter_values_and_multivalued_metadata(
    under_test: IndexUnderTest, index: VectorIndex
) -> None:
    await index.ensure_index(DIM)
    chunks = [
        make_chunk("a.md", "g", 0, unit(1), metadata={"team": "hr", "tags": ["x", "y"]}),
        make_chunk("b.md", "g", 0, unit(1, 0.2), metadata={"team": "it", "tags": ["y"]}),
        make_chunk("c.md", "g", 0, unit(1, 0.4), metadata={"team": "ops", "year": 2024}),
    ]
    await index.write(chunks)
    await under_test.eventually(
        lambda: index.knn_search(unit(1), 5, {}, ALL), lambda h: len(h) == 3
    )

    async def docs(filters: dict[str, object]) -> set[str]:
        return {h.chunk.doc_id for h in await index.knn_search(unit(1), 5, filters, ALL)}  # type: ignore[arg-type]

    assert await docs({"team": ["hr", "ops"]}) == {"a.md", "c.md"}
    assert await docs({"tags": "x"}) == {"a.md"}
    assert await docs({"tags": "y", "team": "it"}) == {"b.md"}
    assert await docs({"year": 2024}) == {"c.md"}
    assert await docs({"team": "nobody"}) == set()


async def test_metadata_keys_are_those_some_chunk_carries(
    under_test: IndexUnderTest, index: VectorIndex
) -> None:
    # GIVEN no index yet: no keys (and no error)
    assert await index.metadata_keys() == frozenset()
    await index.ensure_index(DIM)
    await index.write(
        [
            make_chunk("a.md", "g", 0, unit(1), metadata={"team": "hr", "tags": ["x"]}),
            make_chunk("b.md", "g", 0, unit(1, 0.2), metadata={"year": 2024}),
            make_chunk("c.md", "g", 0, unit(1, 0.4)),
        ]
    )
    await under_test.eventually(
        lambda: index.knn_search(unit(1), 5, {}, ALL), lambda h: len(h) == 3
    )
    # THEN the union of the chunks' metadata keys; doc_id and title are not metadata
    assert await index.metadata_keys() == {"team", "tags", "year"}


async def test_keyword_search_ranks_by_bm25_and_filters(
    under_test: IndexUnderTest, index: VectorIndex
) -> None:
    await index.ensure_index(DIM)
    chunks = [
        make_chunk(
            "leave.md", "g", 0, unit(1), "Parental leave lasts sixteen weeks.", {"team": "hr"}
        ),
        make_chunk(
            "vpn.md", "g", 0, unit(0, 1), "Connect to the VPN before the wiki.", {"team": "it"}
        ),
        make_chunk("misc.md", "g", 0, unit(0, 0, 1), "Leave the kitchen tidy.", {"team": "it"}),
    ]
    await index.write(chunks)
    await under_test.eventually(
        lambda: index.keyword_search("wiki", 5, {}, ALL), lambda h: len(h) == 1
    )

    hits = await index.keyword_search("parental leave weeks", 5, {}, ALL)
    assert [h.chunk.doc_id for h in hits][:2] == ["leave.md", "misc.md"]
    assert hits[0].score > hits[1].score > 0

    filtered = await index.keyword_search("leave", 5, {"team": "it"}, ALL)
    assert [h.chunk.doc_id for h in filtered] == ["misc.md"]
    assert await index.keyword_search("zeppelin", 5, {}, ALL) == []


async def test_keyword_expansion_reaches_chunks_without_the_question_words(
    under_test: IndexUnderTest, index: VectorIndex
) -> None:
    """Pseudo-relevance feedback's second search: added words reach a chunk the
    question's words miss, ranked below chunks that match the question, and
    filters and access still hold."""
    await index.ensure_index(DIM)
    chunks = [
        make_chunk("agg.md", "g", 0, unit(1), "string_agg joins values with a delimiter."),
        make_chunk("rows.md", "g", 0, unit(0, 1), "Collapse many rows into one string per group."),
        make_chunk("other.md", "g", 0, unit(0, 0, 1), "Vacuum reclaims storage.", {"team": "x"}),
    ]
    await index.write(chunks)
    question = "collapse rows into one line per group"
    plain = await under_test.eventually(
        lambda: index.keyword_search(question, 5, {}, ALL), lambda h: len(h) == 1
    )
    assert [h.chunk.doc_id for h in plain] == ["rows.md"]

    added = [("string_agg", 0.5), ("delimiter", 0.3), ("vacuum", 0.1)]
    hits = await index.keyword_search(question, 5, {}, ALL, added)
    assert [h.chunk.doc_id for h in hits] == ["rows.md", "agg.md", "other.md"]
    assert hits[0].score > hits[1].score > hits[2].score > 0

    only_x = await index.keyword_search(question, 5, {"team": "x"}, ALL, added)
    assert [h.chunk.doc_id for h in only_x] == ["other.md"]
    assert await index.keyword_search("zeppelin", 5, {}, ALL, [("airship", 1.0)]) == []


async def test_a_heavier_added_word_ranks_its_chunk_higher(
    under_test: IndexUnderTest, index: VectorIndex
) -> None:
    await index.ensure_index(DIM)
    await index.write(
        [
            make_chunk("a.md", "g", 0, unit(1), "Install the alpha package."),
            make_chunk("b.md", "g", 0, unit(0, 1), "Install the beta package."),
        ]
    )
    await under_test.eventually(
        lambda: index.keyword_search("package", 5, {}, ALL), lambda h: len(h) == 2
    )
    for heavy, light in (("alpha", "beta"), ("beta", "alpha")):
        hits = await index.keyword_search("package", 5, {}, ALL, [(heavy, 2.0), (light, 0.2)])
        assert hits[0].chunk.doc_id == f"{heavy[0]}.md"


async def test_keyword_search_treats_operators_as_words(
    under_test: IndexUnderTest, index: VectorIndex
) -> None:
    await index.ensure_index(DIM)
    await index.write([make_chunk("q.md", "g", 0, unit(1), "What does NEAR mean here?")])
    hits = await under_test.eventually(
        lambda: index.keyword_search('NEAR( "mean" OR * -', 5, {}, ALL), lambda h: len(h) == 1
    )
    assert [h.chunk.doc_id for h in hits] == ["q.md"]


async def test_data_survives_reopening(under_test: IndexUnderTest) -> None:
    first = under_test.new()
    await first.ensure_index(DIM)
    await first.write([make_chunk("keep.md", "g", 0, unit(1), "durable words")])
    await under_test.eventually(lambda: first.generations("keep.md"), bool)
    await first.close()

    second = under_test.new()
    await second.ensure_index(DIM)
    assert await second.generations("keep.md") == {"g": 1}
    hits = await second.keyword_search("durable", 3, {}, ALL)
    assert [h.chunk.doc_id for h in hits] == ["keep.md"]
    with pytest.raises(DimensionMismatch):
        await second.ensure_index(DIM + 2)


async def test_search_before_the_first_document_says_nothing_is_indexed(
    under_test: IndexUnderTest,
) -> None:
    # GIVEN an index that was never created, then one created but still empty
    index = under_test.new()
    for step in ("missing", "empty"):
        if step == "empty":
            await index.ensure_index(DIM)
            await under_test.refresh()
        # WHEN a client searches, THEN the answer is "nothing indexed", not a failure
        with pytest.raises(NoDocumentsIndexed):
            await index.knn_search(unit(1), 3, {}, ALL)
        with pytest.raises(NoDocumentsIndexed):
            await index.keyword_search("anything", 3, {}, ALL)
    # AND once a document is there, a search that matches nothing is just empty
    chunk = make_chunk("a.md", "g1", 0, unit(1), text="alpha beta", metadata={"team": "hr"})
    await index.write([chunk])
    await under_test.eventually(
        lambda: index.knn_search(unit(1), 3, {}, ALL), lambda h: len(h) == 1
    )
    assert await index.knn_search(unit(1), 3, {"team": "it"}, ALL) == []
    assert await index.keyword_search("zeppelin", 3, {}, ALL) == []


async def test_concurrent_first_starts_create_the_index_once(under_test: IndexUnderTest) -> None:
    # Two cold starts racing to create the index both succeed with the same mapping.
    first, second = under_test.new(), under_test.new()
    await asyncio.gather(first.ensure_index(DIM), second.ensure_index(DIM))
    with pytest.raises(DimensionMismatch):
        await under_test.new().ensure_index(DIM + 1)


async def test_reads_before_the_index_exists_find_nothing(under_test: IndexUnderTest) -> None:
    """`rag ingest` reads generations before the indexer has created the index
    (issue #24 item 4: OpenSearch answered 404 and the command failed)."""
    index = under_test.new()  # GIVEN an index name never written to
    assert await index.generations("a.md") == {}
    assert await index.doc_ids() == []
