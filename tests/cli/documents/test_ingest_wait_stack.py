"""``rag ingest --stack`` waits for the deployed indexer (status table), as local mode does.

The stack is stood in by real parts: the moto server's SQS queue and DynamoDB
status table, and the product's indexer (the poller transport, same pipeline
as the Lambda) over an embedded index with the fake embedder.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from cli.destination import Sent
from cli.destination.stack_wait import settled, wait_for_stack
from cli.documents import ingest as ingesting
from services.indexer.poller import Poller
from services.indexer.runtime import Runtime
from shared.adapters.aws import dynamodb_status
from shared.adapters.aws.sqs import SqsQueue
from shared.adapters.sqlite.store import SqliteVectorIndex
from shared.documents import DocState, DocumentStatus
from shared.settings import AwsSettings, QueueSettings, Settings, StatusSettings
from tests.fakes.embedder import FakeEmbedder
from tests.fakes.status_store import FakeStatusStore
from tests.indexer.conftest import make_pipeline
from tests.indexer.harness import create_status_table

pytestmark = pytest.mark.sqs


@pytest.fixture(autouse=True)
def aws_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "test")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "test")


async def test_ingest_waits_until_the_stack_indexed_its_documents(
    tmp_path: Path, sqs_endpoint_url: str, sqs_queue: Any
) -> None:
    # GIVEN a stack: its queue, its status table and its indexer running
    table = await create_status_table(sqs_endpoint_url)
    settings = Settings(
        data_dir=tmp_path / "cli-data",
        aws=AwsSettings(region="us-east-1", endpoint_url=sqs_endpoint_url),
        queue=QueueSettings(
            backend="sqs", queue_url=sqs_queue.url, wait_seconds=1, visibility_timeout_s=30
        ),
        status=StatusSettings(backend="dynamodb", table=table),
    )
    index = SqliteVectorIndex(tmp_path / "stack-index.db")
    status = dynamodb_status.from_settings(settings)
    runtime = Runtime(settings, make_pipeline(settings, index, status, FakeEmbedder()))
    queue = SqsQueue(sqs_queue.url, settings)
    stop = asyncio.Event()
    indexer = asyncio.create_task(Poller(queue, runtime, idle_pause_s=0.1).run(stop))
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "a.md").write_text("# Alpha\n\nThe alpha document.")
    (docs / "b.txt").write_text("The beta document.")
    (docs / "empty.md").write_text("   \n")  # the indexer refuses it (empty document)
    try:
        # WHEN the documents are ingested with --stack (its outputs -> these settings)
        failed = await ingesting.ingest(settings, [docs], force=False, meta=[], wait=True)
    finally:
        stop.set()
        await indexer
        await queue.close()
        await status.close()
        await index.close()
    # THEN the command returned only after the indexer recorded each one
    check = dynamodb_status.from_settings(settings)
    try:
        states = {d: (await check.get(d)) for d in ("a.md", "b.txt", "empty.md")}
    finally:
        await check.close()
    assert {d: s.state if s else None for d, s in states.items()} == {
        "a.md": DocState.INDEXED,
        "b.txt": DocState.INDEXED,
        "empty.md": DocState.FAILED,
    }
    assert failed == 1  # the empty document, reported with its reason


def status(
    doc_id: str, state: DocState, message_id: str, code: str | None = None
) -> DocumentStatus:
    return DocumentStatus(
        doc_id=doc_id, state=state, message_id=message_id, error_code=code, reason="why"
    )


def test_only_our_message_settles_a_document() -> None:
    assert settled(None, "m1") is None
    assert settled(status("a", DocState.INDEXED, "older"), "m1") is None  # a previous send
    assert settled(status("a", DocState.INDEXED, "m1"), "m1") is not None
    # a transient failure is retried by SQS: keep waiting
    assert settled(status("a", DocState.FAILED, "m1", "index_unavailable"), "m1") is None
    final = settled(status("a", DocState.FAILED, "m1", "empty_document"), "m1")
    assert final is not None and final.state == "failed" and final.reason == "why"


async def test_what_is_not_handled_in_time_is_reported_pending() -> None:
    store = FakeStatusStore()
    await store.put(status("a", DocState.INDEXED, "m1"))
    await store.put(status("b", DocState.FAILED, "m2", "index_unavailable"))
    now = [0.0]

    def clock() -> float:
        now[0] += 10.0
        return now[0]

    ticks: list[int] = []
    results = await wait_for_stack(
        store, [Sent("a", "m1"), Sent("b", "m2"), Sent("c", "m3")], ticks.append, 30, 0, clock
    )
    assert [(r.doc_id, r.state) for r in results] == [
        ("a", "indexed"),
        ("b", "pending"),
        ("c", "pending"),
    ]
    assert "still failing" in (results[1].reason or "")
    assert "rag docs --stack" in (results[2].reason or "")
    assert ticks == [1]
