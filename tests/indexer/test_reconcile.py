"""The reconciler on the real OpenSearch node and DynamoDB (moto), each kind of
drift made by hand: stray generation, orphan chunks (of a deleted document and
of one with no record), missing chunks, duplicated chunks, a dead worker's
half-written generation."""

from __future__ import annotations

from collections.abc import AsyncIterator

import numpy as np
import pytest
from opensearchpy import AsyncOpenSearch

from services.indexer.pipeline import IndexerPipeline
from services.indexer.reconcile import Reconciler, drift_metric
from shared.adapters.aws.dynamodb_status import DynamoDbStatusStore
from shared.adapters.opensearch.index import OpenSearchVectorIndex
from shared.documents import Chunk, DocState, EmbeddedChunk
from shared.settings import Settings
from tests.indexer.conftest import make_pipeline
from tests.indexer.events import delete_body, index_body, paragraphs, queue_message
from tests.indexer.harness import opensearch_dynamodb_settings
from tests.indexer.scenarios import clean_ingest, index_contents, violations

pytestmark = [pytest.mark.opensearch, pytest.mark.sqs]
DOCS = ["stray", "orphan", "missing", "extra", "crashed", "fine"]


@pytest.fixture
async def settings(
    opensearch_url: str,
    opensearch_index_name: str,
    opensearch_knn_engine: str,
    sqs_endpoint_url: str,
) -> Settings:
    return await opensearch_dynamodb_settings(
        opensearch_url, opensearch_index_name, opensearch_knn_engine, sqs_endpoint_url
    )


@pytest.fixture
async def pipeline(settings: Settings) -> AsyncIterator[IndexerPipeline]:
    index = OpenSearchVectorIndex(settings)
    status = DynamoDbStatusStore(settings.status.table or "", settings)
    pipeline = make_pipeline(settings, index, status)
    await pipeline.start()
    yield pipeline
    await index.close()
    await status.close()


def bodies() -> dict[str, str]:
    return {doc: index_body(doc, paragraphs(doc, 3)) for doc in DOCS}


def stray_chunk(doc_id: str, generation: str, ordinal: int) -> EmbeddedChunk:
    chunk = Chunk(
        chunk_id=f"{doc_id}-{generation}-{ordinal}",
        doc_id=doc_id,
        generation=generation,
        ordinal=ordinal,
        text=f"left over {ordinal}",
        start=0,
        end=1,
    )
    return EmbeddedChunk(chunk, np.ones(16, dtype=np.float32) / 4.0)


async def make_drift(
    pipeline: IndexerPipeline, client: AsyncOpenSearch, index: str
) -> dict[str, str]:
    """Index every document, then break each but 'fine' in its own way."""
    sent = bodies()
    for body in sent.values():
        assert (await pipeline.process(queue_message(body))).ok
    assert (await pipeline.process(queue_message(delete_body("orphan")))).ok
    await client.indices.refresh(index=index)
    # a clean-up that never ran, chunks that survived a delete
    await pipeline.index.write([stray_chunk("stray", "oldgeneration", i) for i in range(2)])
    record = await pipeline.status.get("orphan")
    assert record is not None and record.state is DocState.DELETED
    await pipeline.index.write([stray_chunk("orphan", "gone", 0)])
    # a lost chunk, a duplicated chunk
    found = await client.search(
        index=index,
        body={
            "query": {
                "bool": {"filter": [{"term": {"doc_id": "missing"}}, {"term": {"ordinal": 0}}]}
            }
        },
    )
    for hit in found["hits"]["hits"]:
        await client.delete(index=index, id=hit["_id"])
    extra = await pipeline.status.get("extra")
    assert extra is not None and extra.generation is not None
    await pipeline.index.write([stray_chunk("extra", extra.generation, 1)])
    # a worker that died half-way through writing a new generation
    crashed = await pipeline.status.get("crashed")
    assert crashed is not None
    await pipeline.status.put(crashed.model_copy(update={"writing": "halfwritten"}))
    await pipeline.index.write([stray_chunk("crashed", "halfwritten", 0)])
    # chunks of a document the status store has never heard of
    await pipeline.index.write([stray_chunk("unknown", "whoknows", i) for i in range(3)])
    await client.indices.refresh(index=index)
    return sent


async def test_each_kind_of_drift_is_found_repaired_and_reported(
    pipeline: IndexerPipeline,
    settings: Settings,
    opensearch_client: AsyncOpenSearch,
    opensearch_index_name: str,
) -> None:
    # GIVEN six documents, five of them drifted by hand
    sent = await make_drift(pipeline, opensearch_client, opensearch_index_name)
    requeued: list[str] = []

    async def requeue(body: str) -> None:
        requeued.append(body)

    reconciler = Reconciler(
        index=pipeline.index,
        status=pipeline.status,
        requeue=requeue,
        settle_s=0.0,  # the test refreshed the index: searches are complete
        lease_s=30,
    )
    # WHEN the reconciler runs
    report = await reconciler.run()

    # THEN it names each drift and what it did about it
    found = {(r.doc_id, r.drift) for r in report.repairs}
    assert found == {
        ("stray", "stray_generations"),
        ("orphan", "orphan_chunks"),
        ("missing", "missing_chunks"),
        ("extra", "extra_chunks"),
        ("crashed", "stray_generations"),
        ("unknown", "orphan_chunks"),
    }
    assert report.checked == len(DOCS) + 1 and report.drift_found == 6 and report.requeued == 2
    assert sorted(requeued) == sorted([sent["missing"], sent["extra"]])
    metric = drift_metric(report, "RAG/Indexer", "fn")
    assert metric["DriftFound"] == 6 and metric["DocumentsRequeued"] == 2

    # AND once the re-queued messages are processed, the index is a clean ingest again
    for body in requeued:
        assert (await pipeline.process(queue_message(body))).ok
    expected = await clean_ingest(
        settings, {d: (None if d == "orphan" else b) for d, b in sent.items()}
    )
    actual = await index_contents(opensearch_client, opensearch_index_name)
    assert violations(expected, actual) == []
    again = await reconciler.run()
    assert (again.drift_found, again.checked) == (0, len(DOCS))


async def test_a_dry_run_reports_and_changes_nothing(
    pipeline: IndexerPipeline, opensearch_client: AsyncOpenSearch, opensearch_index_name: str
) -> None:
    await make_drift(pipeline, opensearch_client, opensearch_index_name)
    before = await index_contents(opensearch_client, opensearch_index_name)
    reconciler = Reconciler(
        index=pipeline.index, status=pipeline.status, requeue=None, settle_s=0.0, lease_s=30
    )
    report = await reconciler.run(dry_run=True)
    assert report.drift_found == 6
    assert await index_contents(opensearch_client, opensearch_index_name) == before


async def test_busy_and_unsettled_documents_are_left_for_the_next_run(
    pipeline: IndexerPipeline,
) -> None:
    await pipeline.process(queue_message(index_body("held", "text")))
    await pipeline.process(queue_message(index_body("recent", "text")))
    assert await pipeline.status.acquire_lease("held", "a-live-worker", 30)
    reconciler = Reconciler(
        index=pipeline.index, status=pipeline.status, requeue=None, settle_s=60.0, lease_s=30
    )
    report = await reconciler.run()
    assert (report.busy, report.settling, report.drift_found) == (1, 1, 0)
