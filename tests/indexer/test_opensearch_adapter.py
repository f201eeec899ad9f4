"""The OpenSearch VectorIndex against a real node (scripts/opensearch)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, TypeVar

import numpy as np
import pytest
from opensearchpy import AsyncOpenSearch

from shared.access import Access
from shared.adapters.opensearch import index as opensearch
from shared.adapters.opensearch.index import OpenSearchVectorIndex
from shared.documents import Chunk, EmbeddedChunk, chunk_id_for
from shared.errors import DimensionMismatch, IndexUnavailable
from shared.settings import Settings
from tests.fakes.embedder import FakeEmbedder

pytestmark = pytest.mark.opensearch
T = TypeVar("T")
DIM = 16
POLL_LIMIT_S = 15.0

ALL = Access.everything()


def os_settings(url: str, index_name: str, engine: str) -> Settings:
    return Settings(
        _env_file=None,
        index={
            "backend": "opensearch",
            "opensearch_url": url,
            "index_name": index_name,
            "engine": engine,
            "request_timeout_s": 10,
        },
    )


async def eventually(
    client: AsyncOpenSearch,
    index: str,
    probe: Callable[[], Awaitable[T]],
    accept: Callable[[T], bool],
) -> T:
    """Poll with a bound. The test side may refresh; the product never does."""
    deadline = asyncio.get_running_loop().time() + POLL_LIMIT_S
    while True:
        if await client.indices.exists(index=index):
            await client.indices.refresh(index=index)
        value = await probe()
        if accept(value) or asyncio.get_running_loop().time() > deadline:
            return value
        await asyncio.sleep(0.2)


def embedded(doc_id: str, generation: str, texts: list[str], **meta: Any) -> list[EmbeddedChunk]:
    embedder = FakeEmbedder(dimension=DIM)
    return [
        EmbeddedChunk(
            Chunk(
                chunk_id=chunk_id_for(doc_id, generation, i),
                doc_id=doc_id,
                generation=generation,
                ordinal=i,
                text=text,
                start=0,
                end=len(text),
                metadata=dict(meta),
            ),
            embedder.vector(text),
        )
        for i, text in enumerate(texts)
    ]


@pytest.fixture
def settings(
    opensearch_url: str, opensearch_index_name: str, opensearch_knn_engine: str
) -> Settings:
    return os_settings(opensearch_url, opensearch_index_name, opensearch_knn_engine)


@pytest.fixture
async def index(settings: Settings) -> AsyncIterator[OpenSearchVectorIndex]:
    adapter = opensearch.from_settings(settings)
    yield adapter
    await adapter.close()


async def test_ensure_index_is_idempotent_and_race_safe(
    settings: Settings, opensearch_client: AsyncOpenSearch, opensearch_index_name: str
) -> None:
    workers = [opensearch.from_settings(settings) for _ in range(4)]
    try:
        await asyncio.gather(*(w.ensure_index(DIM) for w in workers))
        await workers[0].ensure_index(DIM)
        # THEN one index, with the k-NN mapping of that dimension, serves them all
        mapping = await opensearch_client.indices.get_mapping(index=opensearch_index_name)
        assert list(mapping) == [opensearch_index_name]
        vector = mapping[opensearch_index_name]["mappings"]["properties"]["vector"]
        assert vector["type"] == "knn_vector" and vector["dimension"] == DIM
        await workers[1].write(embedded("race", "g1", ["written by one"]))
        seen = await eventually(
            opensearch_client,
            opensearch_index_name,
            lambda: workers[2].generations("race"),
            bool,
        )
        assert seen == {"g1": 1}
    finally:
        for w in workers:
            await w.close()


async def test_an_existing_index_of_another_dimension_is_a_clear_error(
    index: OpenSearchVectorIndex, settings: Settings
) -> None:
    await index.ensure_index(DIM)
    other = opensearch.from_settings(settings)
    try:
        with pytest.raises(DimensionMismatch, match="16-d"):
            await other.ensure_index(DIM * 2)
    finally:
        await other.close()


async def test_write_then_search_by_vector_keywords_and_metadata(
    index: OpenSearchVectorIndex, opensearch_client: AsyncOpenSearch, opensearch_index_name: str
) -> None:
    await index.ensure_index(DIM)
    await index.write(embedded("hr", "g1", ["annual leave policy", "parental leave"], team="hr"))
    await index.write(embedded("it", "g1", ["laptop leave policy"], team="it"))
    await eventually(
        opensearch_client, opensearch_index_name, lambda: index.generations("it"), bool
    )
    query = FakeEmbedder(dimension=DIM).vector("annual leave policy")

    hits = await index.knn_search(query, 3, {}, ALL)
    assert hits[0].chunk.text == "annual leave policy"
    filtered = await index.knn_search(query, 3, {"team": "it"}, ALL)
    assert [h.chunk.doc_id for h in filtered] == ["it"]
    either = await index.knn_search(query, 3, {"team": ["it", "hr"]}, ALL)
    assert len(either) == 3
    keyword = await index.keyword_search("parental", 5, {"team": "hr"}, ALL)
    assert [h.chunk.text for h in keyword] == ["parental leave"]
    assert keyword[0].store_id and keyword[0].rank_sources == ("keyword",)


async def test_generations_and_delete_keep_only_the_current_one(
    index: OpenSearchVectorIndex,
    opensearch_client: AsyncOpenSearch,
    opensearch_index_name: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(opensearch, "_DELETE_PAGE", 2)  # exercise search_after paging
    await index.ensure_index(DIM)
    await index.write(embedded("d", "old", [f"old {i}" for i in range(5)]))
    await index.write(embedded("d", "new", ["new 0", "new 1"]))
    await index.write(embedded("other", "old", ["unrelated"]))

    def settled(g: dict[str, int]) -> bool:
        return g == {"old": 5, "new": 2}

    assert settled(
        await eventually(
            opensearch_client, opensearch_index_name, lambda: index.generations("d"), settled
        )
    )

    doomed = await index.chunk_ids("d", "new")  # over pages of _DELETE_PAGE
    assert len(doomed) == len(set(doomed)) == 5
    assert await index.delete_chunks(doomed) == 5
    after = await eventually(
        opensearch_client,
        opensearch_index_name,
        lambda: index.generations("d"),
        lambda g: g == {"new": 2},
    )
    assert after == {"new": 2}
    assert await index.delete_chunks(await index.chunk_ids("d")) == 2
    assert (
        await eventually(
            opensearch_client,
            opensearch_index_name,
            lambda: index.generations("d"),
            lambda g: not g,
        )
        == {}
    )
    assert await index.generations("other") == {"old": 1}


async def test_an_unreachable_node_is_index_unavailable(unused_tcp_port: int) -> None:
    adapter = opensearch.from_settings(
        os_settings(f"http://127.0.0.1:{unused_tcp_port}", "nowhere", "lucene")
    )
    try:
        with pytest.raises(IndexUnavailable):
            await adapter.ensure_index(DIM)
        with pytest.raises(IndexUnavailable):
            await adapter.write(embedded("d", "g", ["x"]))
    finally:
        await adapter.close()
        await adapter.close()  # closing twice is harmless


async def test_vectors_round_trip_as_float32(
    index: OpenSearchVectorIndex, opensearch_client: AsyncOpenSearch, opensearch_index_name: str
) -> None:
    # np.float32 values must serialise (the bulk body is JSON)
    await index.ensure_index(DIM)
    chunk = embedded("f", "g", ["x"])[0]
    await index.write([EmbeddedChunk(chunk.chunk, np.full(DIM, 0.25, dtype=np.float32))])
    # THEN the stored vector reads back as written (0.25 is exact in float32)
    await eventually(opensearch_client, opensearch_index_name, lambda: index.generations("f"), bool)
    found = await opensearch_client.search(
        index=opensearch_index_name, body={"query": {"term": {"doc_id": "f"}}}
    )
    (hit,) = found["hits"]["hits"]
    assert hit["_source"]["vector"] == [0.25] * DIM


async def test_an_index_from_before_access_lists_keeps_working(
    settings: Settings, opensearch_client: AsyncOpenSearch, opensearch_index_name: str
) -> None:
    """An index created (and written) without the access fields: opening it maps
    them as keywords, its old chunks read as open to everyone, and new chunks
    are scoped as usual."""
    from shared.adapters.opensearch import requests as req

    old_body = req.build_index_body(DIM, settings.index)
    for name in ("access", "groups"):
        del old_body["mappings"]["properties"][name]
    await opensearch_client.indices.create(index=opensearch_index_name, body=old_body)
    (legacy,) = embedded("old", "g1", ["legacy leave words"])
    source = legacy.chunk.model_dump(mode="json", exclude={"groups"})
    source["vector"] = [float(x) for x in legacy.vector]
    await opensearch_client.index(index=opensearch_index_name, body=source, refresh=True)

    adapter = opensearch.from_settings(settings)
    try:
        await adapter.ensure_index(DIM)
        mapping = await opensearch_client.indices.get_mapping(index=opensearch_index_name)
        props = mapping[opensearch_index_name]["mappings"]["properties"]
        assert props["access"] == {"type": "keyword"}
        (restricted,) = embedded("new", "g1", ["restricted leave words"])
        hr_only = restricted.chunk.model_copy(update={"groups": ["hr"]})
        await adapter.write([EmbeddedChunk(hr_only, restricted.vector)])
        outsider = Access.of({"it"})
        hits = await eventually(
            opensearch_client,
            opensearch_index_name,
            lambda: adapter.keyword_search("leave", 5, {}, ALL),
            lambda h: len(h) == 2,
        )
        assert {h.chunk.doc_id for h in hits} == {"old", "new"}
        assert {h.chunk.doc_id for h in await adapter.keyword_search("leave", 5, {}, outsider)} == {
            "old"
        }
        probe = FakeEmbedder(dimension=DIM).vector("leave words")
        assert {h.chunk.doc_id for h in await adapter.knn_search(probe, 5, {}, outsider)} == {"old"}
        hr = Access.of({"hr"})
        assert {h.chunk.doc_id for h in await adapter.knn_search(probe, 5, {}, hr)} == {
            "old",
            "new",
        }
    finally:
        await adapter.close()
