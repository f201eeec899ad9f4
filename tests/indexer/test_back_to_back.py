"""Back-to-back updates on the real OpenSearch node: no stale generation survives.

The measured bug (issue 17): v2 processed right after v1 asked the index which
generations existed *before* v1's chunks were searchable, deleted nothing and
never looked again, so both versions stayed in the index while the status
record said v2.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from opensearchpy import AsyncOpenSearch

from services.indexer.pipeline import IndexerPipeline
from shared.adapters.aws.dynamodb_status import DynamoDbStatusStore
from shared.adapters.opensearch.index import OpenSearchVectorIndex
from tests.indexer.conftest import make_pipeline
from tests.indexer.events import delete_body, index_body, paragraphs, queue_message
from tests.indexer.harness import (
    Servers,
    create_status_table,
    eventually,
    opensearch_dynamodb_settings,
    real_runtime,
)
from tests.indexer.scenarios import clean_ingest, index_contents, violations, winners
from tests.indexer.test_concurrency import run_two_pollers
from tests.servers import unique_name

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


async def test_two_pollers_v1_then_v2_on_aoss_timing_leave_only_v2(
    opensearch_url: str,
    opensearch_index_name: str,
    opensearch_knn_engine: str,
    sqs_endpoint_url: str,
    sqs_client: Any,
    opensearch_client: AsyncOpenSearch,
) -> None:
    """Issue 26 item 1, the owners' measurement: the index refreshes at AOSS's
    classic interval (scaled), and the indexer's settle time must cover it."""
    name = unique_name("b2b")
    url = (await sqs_client.create_queue(QueueName=name))["QueueUrl"]
    dlq = (await sqs_client.create_queue(QueueName=f"{name}-dlq"))["QueueUrl"]
    table = await create_status_table(sqs_endpoint_url)
    servers = Servers(
        opensearch_url,
        opensearch_index_name,
        opensearch_knn_engine,
        sqs_endpoint_url,
        url,
        dlq,
        table,
    )
    # GIVEN v1 then v2 of ten documents, sent back to back
    v1 = [index_body(f"doc{d}", paragraphs(f"d{d}v1", 5), doc_version=1) for d in range(DOCS)]
    v2 = [index_body(f"doc{d}", paragraphs(f"d{d}v2", 2), doc_version=2) for d in range(DOCS)]
    try:
        for body in v1 + v2:
            await sqs_client.send_message(QueueUrl=url, MessageBody=body)
        # WHEN two pollers consume the queue
        pollers = await run_two_pollers(servers, len(v1 + v2))
        assert sum(p.processed for p in pollers) == len(v1 + v2)
        # THEN the status table says v2, and the index holds v2's chunks only
        status = real_runtime(servers.settings())
        records = [await status.pipeline.status.get(f"doc{d}") for d in range(DOCS)]
        await status.close()
        assert [r.doc_version if r else None for r in records] == [2] * DOCS
        expected = await clean_ingest(servers.settings(), winners(v1 + v2))
        actual = await index_contents(opensearch_client, opensearch_index_name)
        found = violations(expected, actual)
        assert found == [], f"{len(found)} of {DOCS} documents hold more than v2: {found}"
    finally:
        await sqs_client.delete_queue(QueueUrl=url)
        await sqs_client.delete_queue(QueueUrl=dlq)


@pytest.mark.aoss_refusals  # the first re-label's partial update, then the rewrite
async def test_new_content_and_a_new_access_list_back_to_back_leave_only_v2_labels(
    real_pipeline: IndexerPipeline,
    opensearch_client: AsyncOpenSearch,
    opensearch_index_name: str,
) -> None:
    # GIVEN each document sent as v1 for hr, then at once as v2 (new text) for finance
    async def v1_then_v2(i: int) -> str:
        doc = f"acl{i}"
        v1 = index_body(doc, paragraphs(f"h{i}", 4), groups=["hr"])
        v2 = index_body(doc, paragraphs(f"f{i}", 2), groups=["finance"])
        assert (await real_pipeline.process(queue_message(v1))).ok
        assert (await real_pipeline.process(queue_message(v2))).ok
        return doc

    docs = await asyncio.gather(*(v1_then_v2(i) for i in range(DOCS)))

    # THEN every chunk left is v2's and labelled finance only
    async def labels() -> dict[str, set[tuple[str, str]]]:
        body = {"size": 1000, "_source": ["doc_id", "text", "groups"]}
        hits = (await opensearch_client.search(index=opensearch_index_name, body=body))["hits"]
        found: dict[str, set[tuple[str, str]]] = {d: set() for d in docs}
        for hit in hits["hits"]:
            source = hit["_source"]
            found[source["doc_id"]].add((source["text"].split()[3][:1], str(source["groups"])))
        return found

    want = {d: {("f", "['finance']")} for d in docs}
    got = await eventually(opensearch_client, opensearch_index_name, labels, lambda g: g == want)
    assert got == want
