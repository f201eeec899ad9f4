"""Back-to-back updates on the real OpenSearch node: no stale generation survives.

The measured bug (issue 17): v2 processed right after v1 asked the index which
generations existed *before* v1's chunks were searchable, deleted nothing and
never looked again, so both versions stayed in the index while the status
record said v2.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from opensearchpy import AsyncOpenSearch

from services.indexer.pipeline import IndexerPipeline
from shared.adapters.aws.dynamodb_status import DynamoDbStatusStore
from shared.adapters.opensearch.index import OpenSearchVectorIndex
from tests.indexer.conftest import make_pipeline
from tests.indexer.events import delete_body, index_body, paragraphs, queue_message
from tests.indexer.harness import eventually, opensearch_dynamodb_settings

pytestmark = [pytest.mark.opensearch, pytest.mark.sqs]
DOCS = 10


@pytest.fixture
async def real_pipeline(
    opensearch_url: str,
    opensearch_index_name: str,
    opensearch_knn_engine: str,
    sqs_endpoint_url: str,
) -> AsyncIterator[IndexerPipeline]:
    settings = await opensearch_dynamodb_settings(
        opensearch_url, opensearch_index_name, opensearch_knn_engine, sqs_endpoint_url
    )
    index = OpenSearchVectorIndex(settings)
    status = DynamoDbStatusStore(settings.status.table or "", settings)
    pipeline = make_pipeline(settings, index, status)
    await pipeline.start()
    yield pipeline
    await index.close()
    await status.close()


async def test_v2_right_after_v1_leaves_only_v2(
    real_pipeline: IndexerPipeline,
    opensearch_client: AsyncOpenSearch,
    opensearch_index_name: str,
) -> None:
    # GIVEN each document sent as v1 (5 paragraphs) then at once as v2 (2 paragraphs)
    async def v1_then_v2(i: int) -> tuple[str, dict[str, int]]:
        doc = f"doc{i}"
        v1 = await real_pipeline.process(queue_message(index_body(doc, paragraphs(f"a{i}", 5))))
        v2 = await real_pipeline.process(queue_message(index_body(doc, paragraphs(f"b{i}", 2))))
        assert v1.ok and v2.ok and v1.generation != v2.generation
        return doc, {v2.generation or "": v2.chunk_count}

    expected = dict(await asyncio.gather(*(v1_then_v2(i) for i in range(DOCS))))

    # THEN once searchable, every document holds v2's chunks only
    async def probe() -> dict[str, dict[str, int]]:
        return {d: await real_pipeline.index.generations(d) for d in expected}

    got = await eventually(opensearch_client, opensearch_index_name, probe, lambda g: g == expected)
    stale = [d for d in expected if got[d] != expected[d]]
    assert stale == [], f"{len(stale)} of {DOCS} documents kept a stale generation: {got}"


async def test_a_delete_right_after_an_index_leaves_nothing(
    real_pipeline: IndexerPipeline,
    opensearch_client: AsyncOpenSearch,
    opensearch_index_name: str,
) -> None:
    # GIVEN each document indexed, then deleted at once (its chunks not yet searchable)
    async def index_then_delete(i: int) -> str:
        doc = f"gone{i}"
        indexed = await real_pipeline.process(queue_message(index_body(doc, paragraphs(doc, 4))))
        deleted = await real_pipeline.process(queue_message(delete_body(doc)))
        assert indexed.ok and deleted.ok
        return doc

    docs = await asyncio.gather(*(index_then_delete(i) for i in range(DOCS)))

    # THEN nothing of them is left once everything is searchable
    async def probe() -> dict[str, dict[str, int]]:
        return {d: await real_pipeline.index.generations(d) for d in docs}

    got = await eventually(
        opensearch_client, opensearch_index_name, probe, lambda g: not any(g.values())
    )
    left = [d for d in docs if got[d]]
    assert left == [], f"{len(left)} of {DOCS} deleted documents kept chunks: {got}"
