"""A worker that stalls past its lease must not write or clean up after the
worker that took the document over (issue 26 item 8).

Worker A runs on its own thread and event loop, with the product's adapters on
the real servers (AOSS-like node, moto DynamoDB). At a chosen line it *stalls*:
the whole thread blocks, as in a GC pause or a frozen Lambda, so its lease
renewals stop too. The test waits until worker B takes the document over and
finishes a newer version, then resumes A. A must learn from the store that it
lost, and the index and the status record must be B's alone.

Stalled at the clean-up, the code before fencing reported "indexed", deleted
all of B's v2 chunks (its clean-up was "delete all but my generation") and
left its own record (v1) over B's. Stalled before its record it was saved by
its record's older ``updated_at`` and its timer; now the store refuses it.

Not covered (documented in docs/indexer.md): a bulk write already sent when
the stall begins may land after B's clean-up; those chunks are a stray
generation (or duplicates) that the reconciler removes, and the record stays B's.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Sequence
from typing import Any

import pytest
from opensearchpy import AsyncOpenSearch

from services.indexer.disposition import Outcome, Verdict
from shared.adapters.aws.dynamodb_status import DynamoDbStatusStore
from shared.adapters.opensearch.index import OpenSearchVectorIndex
from shared.documents import DocState, DocumentStatus
from shared.settings import Settings
from tests.fakes.embedder import FakeEmbedder
from tests.indexer.conftest import make_pipeline
from tests.indexer.events import index_body, paragraphs, queue_message
from tests.indexer.harness import INDEX_TIMING, create_status_table
from tests.indexer.scenarios import clean_ingest, index_contents, violations

pytestmark = [pytest.mark.opensearch, pytest.mark.sqs]
# Long enough that A renews on time on a loaded 2-core machine before it reaches the
# stall point (2 s lost the lease early once at load ~10); B waits this long to take over.
LEASE_S = 4.0
WAIT_LIMIT_S = 60.0


class Stall:
    """A line where worker A's whole thread stops until the test resumes it."""

    def __init__(self) -> None:
        self.armed = False
        self.reached = threading.Event()
        self.resume = threading.Event()

    def here(self) -> None:
        if self.armed:
            self.armed = False
            self.reached.set()
            # Blocks A's event loop: no renewals, no progress, as in a real pause.
            if not self.resume.wait(WAIT_LIMIT_S):
                raise RuntimeError("the test never resumed the stalled worker")


class StallingIndex(OpenSearchVectorIndex):
    stall: Stall
    at: str

    async def delete_chunks(self, store_ids: Sequence[str]) -> int:
        if self.at == "cleanup":
            self.stall.here()
        return await super().delete_chunks(store_ids)


class StallingStatus(DynamoDbStatusStore):
    stall: Stall
    at: str

    async def put(self, status: DocumentStatus, fence: str | None = None) -> None:
        if self.at == "record" and status.state is DocState.INDEXED:
            self.stall.here()
        await super().put(status, fence)


def _worker_a(settings: Settings, stall: Stall, at: str, body: str, result: list[Any]) -> None:
    async def run() -> Outcome:
        index = StallingIndex(settings)
        status = StallingStatus(settings.status.table or "", settings)
        index.stall, index.at, status.stall, status.at = stall, at, stall, at
        pipeline = make_pipeline(settings, index, status, FakeEmbedder(dimension=16))
        try:
            await pipeline.start()
            stall.armed = True
            return await pipeline.process(queue_message(body))
        finally:
            await index.close()
            await status.close()

    try:
        result.append(asyncio.run(run()))
    except BaseException as exc:  # surfaced by the test
        result.append(exc)


@pytest.mark.parametrize("at", ["cleanup", "record"])
async def test_a_worker_stalled_past_its_lease_changes_nothing_after_its_successor(
    at: str,
    opensearch_url: str,
    opensearch_index_name: str,
    opensearch_knn_engine: str,
    sqs_endpoint_url: str,
    opensearch_client: AsyncOpenSearch,
) -> None:
    settings = Settings(
        _env_file=None,
        aws={"endpoint_url": sqs_endpoint_url},
        index={
            "backend": "opensearch",
            "opensearch_url": opensearch_url,
            "index_name": opensearch_index_name,
            "engine": opensearch_knn_engine,
            **INDEX_TIMING,
        },
        status={"backend": "dynamodb", "table": await create_status_table(sqs_endpoint_url)},
        indexer={"lease_s": LEASE_S, "busy_retry_s": 0.2},
    )
    v0, v1, v2 = (index_body("doc", paragraphs(f"v{n}", 3 + n)) for n in range(3))
    index_b = OpenSearchVectorIndex(settings)
    status_b = DynamoDbStatusStore(settings.status.table or "", settings)
    worker_b = make_pipeline(settings, index_b, status_b, FakeEmbedder(dimension=16))
    await worker_b.start()
    # GIVEN doc indexed at v0
    assert (await worker_b.process(queue_message(v0))).verdict is Verdict.INDEXED
    # WHEN worker A, writing v1, stalls (at the clean-up, or before its record)
    stall, result = Stall(), list[Any]()
    thread = threading.Thread(target=_worker_a, args=(settings, stall, at, v1, result))
    thread.start()
    reached = await asyncio.to_thread(stall.reached.wait, WAIT_LIMIT_S)
    assert reached, f"worker A never reached the stall point: {result}"
    # AND its lease runs out, and worker B takes the document and indexes v2
    loop = asyncio.get_running_loop()
    deadline = loop.time() + WAIT_LIMIT_S
    b = await worker_b.process(queue_message(v2))
    while b.verdict is Verdict.BUSY and loop.time() < deadline:
        await asyncio.sleep(0.2)
        b = await worker_b.process(queue_message(v2))
    assert b.verdict is Verdict.INDEXED, b.log_fields()
    # (and v2's chunks are searchable: a stale "delete all but mine" would now see them)
    await opensearch_client.indices.refresh(index=opensearch_index_name)
    # AND worker A then resumes
    stall.resume.set()
    await asyncio.to_thread(thread.join, WAIT_LIMIT_S)
    a = result[0]
    assert isinstance(a, Outcome), a
    # THEN A learned from the store that it lost the document
    assert a.verdict is Verdict.RETRY and a.error is not None, a.log_fields()
    assert a.error.code == "lease_lost", a.log_fields()
    # AND the record and the index are B's (v2) alone
    record = await status_b.get("doc")
    assert record is not None and record.generation == b.generation
    assert record.state is DocState.INDEXED and not record.cleanup_pending
    expected = await clean_ingest(settings, {"doc": v2})
    found = violations(expected, await index_contents(opensearch_client, opensearch_index_name))
    assert found == [], found
    await index_b.close()
    await status_b.close()
