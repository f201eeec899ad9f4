"""The indexer Lambda: SQS event source in, ``batchItemFailures`` out.

The event source mapping must enable ``ReportBatchItemFailures``. The batch
is processed concurrently (bounded by ``RAG_QUEUE__MAX_IN_FLIGHT``), and
exactly the messages that failed transiently are reported, so only they come
back, after a back-off that grows with their receive count (``backoff``:
``ChangeMessageVisibility`` before returning, instead of the queue's whole
visibility timeout). Poison messages go to the DLQ with their reason (see ``runtime``) and
are reported as handled; should that send fail, they are reported as failed
and the queue's redrive policy remains the safety net.

A scheduled EventBridge rule invokes the same function with
``{"rag_task": "reconcile"}``: it then runs the reconciler instead
(``services.indexer.reconcile``), prints its drift figures as a CloudWatch
Embedded Metric Format record, and returns the report.

Adapters are built once per cold start and reused by warm invocations, on
one event loop kept for the life of the execution environment
(``shared.lambda_runtime``).
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
from typing import Any

from services.indexer.backoff import back_off
from services.indexer.disposition import Action, Disposition, Outcome, Verdict, disposition
from services.indexer.reconcile import drift_metric
from services.indexer.runtime import Runtime, build_reconciler, build_runtime
from shared.lambda_runtime import LambdaRuntime
from shared.logs import configure_logging
from shared.ports import Queue, QueueMessage
from shared.settings import load_settings

log = logging.getLogger("services.indexer")


def record_message(record: dict[str, Any]) -> QueueMessage:
    attributes = record.get("attributes", {})
    return QueueMessage(
        message_id=str(record["messageId"]),
        receipt=str(record.get("receiptHandle", "")),
        body=str(record.get("body", "")),
        receive_count=int(attributes.get("ApproximateReceiveCount", 1)),
    )


async def handle_message(runtime: Runtime, message: QueueMessage) -> Disposition | None:
    """Process one record; its disposition if it must be reported as a batch item failure."""
    outcome = await runtime.pipeline.process(message)
    outcome.log()
    then = disposition(outcome, message.receive_count, runtime.settings)
    if then.action is Action.ACK:
        return None
    if then.action is Action.DEAD_LETTER and await runtime.dead_letter(message, outcome):
        return None
    return then


def transient(message: QueueMessage, runtime: Runtime) -> Disposition:
    """As a transient failure of the message would be disposed of."""
    failed = Outcome(Verdict.RETRY, message.message_id)
    return disposition(failed, message.receive_count, runtime.settings)


async def handle_event(
    event: dict[str, Any], runtime: Runtime, queue: Queue | None = None
) -> dict[str, Any]:
    """``queue``: the source queue, to back failed messages off (None: no back-off)."""
    messages = [record_message(r) for r in event.get("Records", [])]
    failed = await _failed_messages(messages, runtime)
    if queue is not None and failed:
        await back_off(queue, [(m, then.delay_s) for m, then in failed])
    return {"batchItemFailures": [{"itemIdentifier": m.message_id} for m, _ in failed]}


async def _failed_messages(
    messages: list[QueueMessage], runtime: Runtime
) -> list[tuple[QueueMessage, Disposition]]:
    try:
        await runtime.start()
    except Exception as exc:
        # No index (or a wrong one): nothing in this batch can succeed; retry it all
        # (after the back-off of a first transient failure).
        log.error("indexer start-up failed", extra={"fields": {"error": repr(exc)}})
        return [(m, transient(m, runtime)) for m in messages]
    limit = asyncio.Semaphore(runtime.settings.queue.max_in_flight)

    async def bounded(message: QueueMessage) -> Disposition | None:
        async with limit:
            return await handle_message(runtime, message)

    verdicts = await asyncio.gather(*(bounded(m) for m in messages))
    return [(m, v) for m, v in zip(messages, verdicts, strict=True) if v is not None]


RECONCILE_TASK = "reconcile"


def is_reconcile_event(event: dict[str, Any]) -> bool:
    return event.get("rag_task") == RECONCILE_TASK


async def handle_reconcile(runtime: Runtime, *, dry_run: bool = False) -> dict[str, Any]:
    await runtime.start()
    report = await build_reconciler(runtime).run(dry_run=dry_run)
    function = os.environ.get("AWS_LAMBDA_FUNCTION_NAME", "local")
    metric = drift_metric(report, runtime.settings.indexer.metrics_namespace, function)
    print(json.dumps(metric), flush=True)  # EMF: one line on stdout becomes metrics
    return report.as_dict()


class IndexerApp:
    def __init__(self, runtime: Runtime, queue: Queue | None = None) -> None:
        self.runtime = runtime
        self.queue = queue  # the source queue, for the back-off of failed messages

    async def handle(self, event: dict[str, Any], context: Any) -> dict[str, Any]:
        if is_reconcile_event(event):
            return await handle_reconcile(self.runtime, dry_run=event.get("dry_run") is True)
        return await handle_event(event, self.runtime, self.queue)

    async def close(self) -> None:
        await self.runtime.close()


def build_app_from_environment() -> IndexerApp:
    settings = load_settings()
    configure_logging(settings.log_level)
    runtime = build_runtime(settings)
    # One client per queue URL: the source queue the runtime built serves both
    # the back-off of failed messages and reconcile's re-queues.
    return IndexerApp(runtime, runtime.queue)


handler = LambdaRuntime(build_app_from_environment)
