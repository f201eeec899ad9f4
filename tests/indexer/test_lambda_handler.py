"""The Lambda handler's batch logic, with SQS event factories and fakes."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from services.indexer.lambda_handler import handle_event, record_message
from services.indexer.runtime import Runtime
from shared.errors import IndexUnavailable
from shared.logs import JsonFormatter
from shared.settings import Settings
from tests.fakes.dead_letters import RecordingDeadLetters
from tests.fakes.vector_index import FakeVectorIndex
from tests.indexer.events import index_body, sqs_event, sqs_record


async def test_a_clean_batch_reports_no_failures(runtime: Runtime) -> None:
    event = sqs_event(*(sqs_record(index_body(f"d{i}", f"text {i}")) for i in range(5)))
    assert await handle_event(event, runtime) == {"batchItemFailures": []}


async def test_poison_goes_to_the_dlq_and_is_not_reported(runtime: Runtime) -> None:
    dead = RecordingDeadLetters()
    runtime.dead_letters = dead
    poison = sqs_record("{oops", message_id="poison-1", receive_count=1)
    event = sqs_event(sqs_record(index_body("good", "text")), poison)

    result = await handle_event(event, runtime)

    assert result == {"batchItemFailures": []}
    [(message, why)] = dead.sent
    assert message.message_id == "poison-1"
    assert why.error_code == "invalid_message" and why.reason


async def test_poison_without_a_dlq_is_left_to_the_redrive_policy(runtime: Runtime) -> None:
    event = sqs_event(sqs_record(index_body("good", "text")), sqs_record("[]", message_id="p"))
    assert await handle_event(event, runtime) == {"batchItemFailures": [{"itemIdentifier": "p"}]}


async def test_poison_is_reported_when_the_dlq_send_fails(runtime: Runtime) -> None:
    runtime.dead_letters = RecordingDeadLetters(fail=True)
    event = sqs_event(sqs_record("{oops", message_id="p"))
    assert await handle_event(event, runtime) == {"batchItemFailures": [{"itemIdentifier": "p"}]}


async def test_only_the_transiently_failed_message_is_reported(
    runtime: Runtime, fake_index: FakeVectorIndex
) -> None:
    fake_index.fail_writes.append(IndexUnavailable("throttled"))
    # one message at a time, so that exactly the first write meets the failure
    runtime.settings.queue.max_in_flight = 1
    event = sqs_event(
        sqs_record(index_body("first", "text one"), message_id="m1"),
        sqs_record(index_body("second", "text two"), message_id="m2"),
    )
    assert await handle_event(event, runtime) == {"batchItemFailures": [{"itemIdentifier": "m1"}]}


async def test_a_failed_start_reports_the_whole_batch(
    runtime: Runtime, fake_index: FakeVectorIndex
) -> None:
    fake_index.dimension = 999  # the index exists with another vector size
    event = sqs_event(sqs_record(index_body("a", "x"), message_id="m1"), sqs_record("{", "m2"))
    result = await handle_event(event, runtime)
    assert result == {"batchItemFailures": [{"itemIdentifier": "m1"}, {"itemIdentifier": "m2"}]}


def test_record_message_reads_the_receive_count() -> None:
    message = record_message(sqs_record("body", message_id="m", receive_count=4))
    assert (message.message_id, message.body, message.receive_count) == ("m", "body", 4)


async def test_outcomes_are_logged_as_json_with_ids_and_timings(
    runtime: Runtime, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="services.indexer")
    await handle_event(sqs_event(sqs_record(index_body("doc-9", "hello"), "mid-9")), runtime)
    [record] = [r for r in caplog.records if r.getMessage() == "message processed"]
    line = json.loads(JsonFormatter().format(record))
    assert line["doc_id"] == "doc-9" and line["message_id"] == "mid-9"
    assert line["outcome"] == "indexed" and line["level"] == "INFO"
    assert {"fetch", "chunk", "embed", "write", "total"} <= set(line["timings_ms"])


async def test_the_factory_picks_the_dead_letters_beside_the_queue(tmp_path: Path) -> None:
    from shared.adapters.aws.sqs import SqsDeadLetters
    from shared.adapters.sqlite.queue import SqliteDeadLetters
    from shared.factory import build_dead_letters

    embedded = build_dead_letters(Settings(_env_file=None, data_dir=tmp_path))
    assert isinstance(embedded, SqliteDeadLetters)
    await embedded.close()
    dlq = "http://127.0.0.1:9/000000000000/dlq"
    with_dlq = build_dead_letters(
        Settings(_env_file=None, queue={"backend": "sqs", "queue_url": dlq, "dlq_url": dlq})
    )
    assert isinstance(with_dlq, SqsDeadLetters)  # built lazily: nothing was contacted
    await with_dlq.close()
    # SQS without a DLQ URL: poison is left to the queue's redrive policy.
    assert build_dead_letters(Settings(_env_file=None, queue={"backend": "sqs"})) is None


async def test_a_scheduled_reconcile_prints_its_drift_as_an_emf_metric(
    runtime: Runtime, capsys: pytest.CaptureFixture[str]
) -> None:
    from services.indexer.lambda_handler import handle_reconcile, is_reconcile_event

    # GIVEN a document indexed, then a stray generation left in the index
    await handle_event(sqs_event(sqs_record(index_body("d", "some text"))), runtime)
    capsys.readouterr()
    index = runtime.pipeline.index
    assert isinstance(index, FakeVectorIndex)
    [row] = index.rows.values()
    stray = row.chunk.model_copy(update={"generation": "stale"})
    await index.write([type(row)(stray, row.vector)])
    # WHEN EventBridge's scheduled event arrives
    event = {"rag_task": "reconcile"}
    assert is_reconcile_event(event) and not is_reconcile_event(sqs_event())
    report = await handle_reconcile(runtime)
    # THEN the stray is gone, the report says so, and the metric line is on stdout
    assert report["drift_found"] == 1 and report["repairs"][0]["drift"] == "stray_generations"
    assert await index.generations("d") == {row.chunk.generation: 1}
    metric = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert metric["DriftFound"] == 1
    assert metric["_aws"]["CloudWatchMetrics"][0]["Namespace"] == "RAG/Indexer"


async def test_a_message_whose_document_is_leased_elsewhere_is_reported_for_retry(
    runtime: Runtime,
) -> None:
    status = runtime.pipeline.status
    assert await status.acquire_lease("held", "another-invocation", 60)
    event = sqs_event(
        sqs_record(index_body("held", "text"), message_id="busy-1"),
        sqs_record(index_body("free", "text"), message_id="ok-1"),
    )
    assert await handle_event(event, runtime) == {
        "batchItemFailures": [{"itemIdentifier": "busy-1"}]
    }


def test_busy_messages_back_off_past_a_whole_lease_within_four_receives() -> None:
    from services.indexer.disposition import busy_delay_s

    delays = [busy_delay_s(n, 2.0, 60.0) for n in range(1, 6)]
    assert delays == [2, 6, 18, 54, 60]
    assert sum(delays[:4]) > 60  # a dead holder's lease runs out first
    assert busy_delay_s(1, 0.1, 60.0) == 1  # SQS takes whole seconds


async def test_the_function_routes_the_scheduled_event_to_reconcile(runtime: Runtime) -> None:
    from services.indexer.lambda_handler import IndexerApp

    app = IndexerApp(runtime)
    await app.handle(sqs_event(sqs_record(index_body("d", "text"))), None)
    report = await app.handle({"rag_task": "reconcile", "dry_run": True}, None)
    assert (report["checked"], report["drift_found"], report["dry_run"]) == (1, 0, True)
