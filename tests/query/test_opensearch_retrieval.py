"""Retrieval against the real OpenSearch node: k-NN, hybrid (BM25 + k-NN by RRF),
metadata filters, de-duplication, all through the answer pipeline."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import pytest
from opensearchpy import AsyncOpenSearch

from services.query.answer.parts import build_query_deps
from services.query.answer.service import AnswerService
from services.query.transports.session import ConnectionSession
from shared.access import Principal
from shared.adapters.opensearch.index import OpenSearchVectorIndex
from shared.protocol import SourcesEvent
from shared.settings import IndexSettings, Settings
from tests.fakes.chat_model import FakeChatModel, Script
from tests.fakes.embedder import FakeEmbedder
from tests.fakes.sink import RecordingSink
from tests.query.corpus import corpus_chunks

pytestmark = pytest.mark.opensearch


@pytest.fixture
async def os_index(
    settings: Settings,
    opensearch_url: str,
    opensearch_index_name: str,
    opensearch_knn_engine: str,
    opensearch_client: AsyncOpenSearch,
    embedder: FakeEmbedder,
) -> AsyncIterator[OpenSearchVectorIndex]:
    index_settings = IndexSettings(
        backend="opensearch",
        opensearch_url=opensearch_url,
        index_name=opensearch_index_name,
        engine=opensearch_knn_engine,
        space_type="innerproduct" if opensearch_knn_engine == "faiss" else "cosinesimil",
    )
    index = OpenSearchVectorIndex(settings.model_copy(update={"index": index_settings}))
    await index.ensure_index(embedder.dimension)
    await index.write(corpus_chunks(embedder))
    # AOSS forbids refresh, so the adapter never does it; the test side may.
    await opensearch_client.indices.refresh(index=opensearch_index_name)
    yield index
    await index.close()


async def sources_for(
    settings: Settings, index: OpenSearchVectorIndex, embedder: FakeEmbedder, **ask: object
) -> SourcesEvent:
    model = FakeChatModel(Script(tokens=["ok [1]"]))
    deps = build_query_deps(settings, embedder=embedder, index=index, model=model)
    sink = RecordingSink()
    session = ConnectionSession(AnswerService(settings, deps), sink, 1, Principal.single_user())
    await session.handle_frame(json.dumps({"action": "ask", **ask}))
    await session.wait_idle()
    assert sink.kinds()[-2:] == ["sources", "done"], sink.events
    (sources,) = sink.of("sources")
    assert isinstance(sources, SourcesEvent)
    return sources


async def test_knn_finds_the_topic_and_drops_the_duplicate_copy(
    settings: Settings, os_index: OpenSearchVectorIndex, embedder: FakeEmbedder
) -> None:
    sources = await sources_for(
        settings, os_index, embedder, question="How many vacation days do employees get?", k=4
    )
    texts = [c.excerpt for c in sources.citations]
    assert sources.citations[0].doc_id in {"vacation", "vacation-copy"}
    assert texts.count("Employees get twenty five vacation days per year.") == 1


async def test_filters_apply_in_opensearch(
    settings: Settings, os_index: OpenSearchVectorIndex, embedder: FakeEmbedder
) -> None:
    sources = await sources_for(
        settings, os_index, embedder, question="What do llamas eat?", filters={"team": "it"}
    )
    assert {c.doc_id for c in sources.citations} == {"servers"}


async def test_hybrid_fuses_keyword_and_vector_results(
    settings: Settings, os_index: OpenSearchVectorIndex, embedder: FakeEmbedder
) -> None:
    sources = await sources_for(
        settings, os_index, embedder, question="server room locked", mode="hybrid", k=2
    )
    assert sources.citations[0].doc_id == "servers"
    assert sources.citations[0].number == 1  # "ok [1]" supports nothing: retrieval order
