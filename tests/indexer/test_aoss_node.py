"""The AOSS-like test node, and the adapter on AOSS's terms (issue 26 items 6 and the node).

The node must refuse what AWS documents AOSS vector collections refuse (else
it proves nothing), and the adapter must keep to what they accept: re-labels
rewrite chunks on AOSS (partial updates by ``_id`` are listed for search
collections only) and fall back to that when a managed node refuses them.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import numpy as np
import pytest
from opensearchpy import AsyncOpenSearch

from shared.access import Access
from shared.adapters.opensearch.index import OpenSearchVectorIndex
from shared.settings import Settings
from tests.fakes.embedder import FakeEmbedder
from tests.indexer.aoss_node import AossLikeNode, refusal, route, with_refresh
from tests.indexer.conftest import AOSS_TEST_REFRESH_S
from tests.indexer.test_opensearch_adapter import DIM, embedded, eventually

HR = Access.of(["hr"])
FINANCE = Access.of(["finance"])


def _bulk(*actions: dict[str, object]) -> bytes:
    return "".join(json.dumps(a) + "\n" for a in actions).encode()


@pytest.mark.parametrize(
    ("method", "path", "params", "body", "why"),
    [
        ("POST", "/idx/_refresh", {}, b"", "refresh"),
        ("POST", "/_bulk", {"refresh": "true"}, b"", "refresh"),
        ("POST", "/_bulk", {}, _bulk({"index": {"_index": "i", "_id": "x"}}, {}), "Document ID"),
        ("POST", "/_bulk", {}, _bulk({"create": {"_index": "i", "_id": "x"}}, {}), "Document ID"),
        ("POST", "/_bulk", {}, _bulk({"update": {"_index": "i", "_id": "x"}}, {}), "update"),
        ("PUT", "/idx/_doc/x", {}, b"{}", "not among"),
        ("POST", "/idx/_update/x", {}, b"{}", "not among"),
        ("POST", "/idx/_delete_by_query", {}, b"{}", "not among"),
        ("POST", "/idx/_update_by_query", {}, b"{}", "not among"),
        ("GET", "/_cluster/health", {}, b"", "not among"),
        ("POST", "/_search/scroll", {}, b"{}", "not among"),
        ("PUT", "/idx", {}, b'{"settings": {"index": {"number_of_shards": 2}}}', "shards"),
    ],
)
def test_the_node_refuses_what_aoss_refuses(
    method: str, path: str, params: dict[str, str], body: bytes, why: str
) -> None:
    reason = refusal(method, path, params, body, {})
    assert reason is not None and why in reason


def test_the_node_refuses_filters_on_nmslib_fields_only() -> None:
    query = {"query": {"knn": {"vector": {"vector": [0.0], "k": 1, "filter": {"term": {}}}}}}
    body = json.dumps(query).encode()
    reason = refusal("POST", "/idx/_search", {}, body, {"idx": {"vector": "nmslib"}})
    assert reason is not None and "nmslib" in reason
    assert refusal("POST", "/idx/_search", {}, body, {"idx": {"vector": "faiss"}}) is None


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("PUT", "/idx", b"{}"),
        ("HEAD", "/idx", b""),
        ("GET", "/idx/_mapping", b""),
        ("PUT", "/idx/_mapping", b"{}"),
        ("POST", "/idx/_search", b"{}"),
        ("POST", "/idx/_count", b"{}"),
        ("DELETE", "/idx/_doc/abc", b""),
        ("POST", "/idx/_doc", b"{}"),
        ("POST", "/_bulk", _bulk({"index": {"_index": "i"}}, {}, {"delete": {"_id": "a"}})),
    ],
)
def test_the_node_accepts_what_aoss_lists(method: str, path: str, body: bytes) -> None:
    assert route(method, path) is not None
    assert refusal(method, path, {}, body, {}) is None


def test_the_node_imposes_its_refresh_interval_on_new_indexes() -> None:
    body = json.dumps({"settings": {"index": {"knn": True, "refresh_interval": "1s"}}}).encode()
    index = json.loads(with_refresh(body, 2.0))["settings"]["index"]
    assert index == {"knn": True, "refresh_interval": "2000ms"}


@pytest.mark.opensearch
async def test_the_node_lags_as_aoss_does(
    opensearch_url: str,
    opensearch_index_name: str,
    opensearch_knn_engine: str,
    opensearch_client: AsyncOpenSearch,
) -> None:
    # GIVEN the product's index created through the node (on managed, the
    # product would ask for a 1 s interval of its own)
    settings = _settings(opensearch_url, opensearch_index_name, "classic", opensearch_knn_engine)
    index = OpenSearchVectorIndex(settings)
    await index.ensure_index(DIM)
    await index.close()
    # THEN the real node refreshes it at the collection's (scaled) interval
    found = await opensearch_client.indices.get_settings(index=opensearch_index_name)
    interval = found[opensearch_index_name]["settings"]["index"]["refresh_interval"]
    assert interval == f"{round(AOSS_TEST_REFRESH_S * 1000)}ms"


def _settings(url: str, name: str, kind: str, engine: str) -> Settings:
    timing = {"refresh_s": AOSS_TEST_REFRESH_S} if kind == "managed" else {}
    return Settings(
        _env_file=None,
        index={
            "backend": "opensearch",
            "opensearch_url": url,
            "index_name": name,
            # The node's engine: its k-NN build may lack faiss's native
            # libraries, and then a faiss write kills it (scripts/opensearch).
            "engine": engine,
            "collection_kind": kind,
            "request_timeout_s": 10,
            **timing,
        },
    )


@pytest.fixture
async def written(
    opensearch_url: str,
    opensearch_index_name: str,
    opensearch_knn_engine: str,
    opensearch_client: AsyncOpenSearch,
) -> AsyncIterator[list[str]]:
    """Three chunks of hr.md labelled hr, searchable."""
    index = OpenSearchVectorIndex(
        _settings(opensearch_url, opensearch_index_name, "classic", opensearch_knn_engine)
    )
    await index.ensure_index(DIM)
    texts = ["salary bands", "leave policy", "pension scheme"]
    await index.write(embedded("hr.md", "g1", texts))
    await index.close()
    await opensearch_client.indices.refresh(index=opensearch_index_name)
    yield texts


async def _relabel_and_check(
    index: OpenSearchVectorIndex,
    client: AsyncOpenSearch,
    name: str,
    texts: list[str],
) -> None:
    # WHEN hr.md is re-labelled from hr to finance
    assert await index.set_groups("hr.md", ["finance"]) == len(texts)
    # THEN (once searchable) finance reads all three chunks, hr none, vectors intact
    query = FakeEmbedder(dimension=DIM).vector(texts[1])

    async def seen() -> tuple[int, int, list[str]]:
        fin = await index.knn_search(np.asarray(query), 10, {}, FINANCE)
        hr = await index.knn_search(np.asarray(query), 10, {}, HR)
        return len(fin), len(hr), [h.chunk.text for h in fin[:1]]

    got = await eventually(client, name, seen, lambda v: v[:2] == (len(texts), 0))
    assert got == (len(texts), 0, [texts[1]])
    assert await index.generations("hr.md") == {"g1": len(texts)}


@pytest.mark.opensearch
async def test_on_aoss_a_relabel_rewrites_chunks_without_partial_updates(
    opensearch_url: str,
    opensearch_knn_engine: str,
    opensearch_index_name: str,
    opensearch_client: AsyncOpenSearch,
    written: list[str],
    aoss_node: AossLikeNode,
) -> None:
    # GIVEN the adapter on a classic collection (the node refuses updates by _id)
    index = OpenSearchVectorIndex(
        _settings(opensearch_url, opensearch_index_name, "classic", opensearch_knn_engine)
    )
    await _relabel_and_check(index, opensearch_client, opensearch_index_name, written)
    await index.close()
    assert aoss_node.refused == []  # it never asked for a partial update


@pytest.mark.opensearch
@pytest.mark.aoss_refusals
async def test_a_refused_partial_update_falls_back_to_the_rewrite(
    opensearch_url: str,
    opensearch_knn_engine: str,
    opensearch_index_name: str,
    opensearch_client: AsyncOpenSearch,
    written: list[str],
    aoss_node: AossLikeNode,
) -> None:
    # GIVEN the adapter told "managed" but talking to a node that refuses updates
    index = OpenSearchVectorIndex(
        _settings(opensearch_url, opensearch_index_name, "managed", opensearch_knn_engine)
    )
    await _relabel_and_check(index, opensearch_client, opensearch_index_name, written)
    refused = [r for r in aoss_node.refused if "update" in r]
    assert len(refused) == 1, aoss_node.refused
    # AND the next re-label goes straight to the rewrite
    await index.set_groups("hr.md", ["hr"])
    assert len([r for r in aoss_node.refused if "update" in r]) == 1
    await index.close()


@pytest.mark.opensearch
async def test_on_managed_opensearch_a_relabel_updates_in_place(
    opensearch_index_name: str,
    opensearch_knn_engine: str,
    opensearch_client: AsyncOpenSearch,
    written: list[str],
    aoss_node: AossLikeNode,
) -> None:
    # GIVEN the adapter on the real node itself (self-managed OpenSearch)
    settings = _settings(
        aoss_node.upstream, opensearch_index_name, "managed", opensearch_knn_engine
    )
    index = OpenSearchVectorIndex(settings)
    before = await opensearch_client.search(index=opensearch_index_name, body={"_source": False})
    await _relabel_and_check(index, opensearch_client, opensearch_index_name, written)
    after = await opensearch_client.search(index=opensearch_index_name, body={"_source": False})
    # THEN the chunks kept their store ids (updated, not rewritten)
    ids = sorted(h["_id"] for h in before["hits"]["hits"])
    assert sorted(h["_id"] for h in after["hits"]["hits"]) == ids
    await index.close()
