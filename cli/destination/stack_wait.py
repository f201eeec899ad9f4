"""``rag ingest --stack``: wait until the deployed indexer has handled what we sent.

The deployed indexer writes one status record per document (DynamoDB), with
the id of the message it handled. A document is done when its record carries
our message id and says indexed (or deleted), or failed for a reason a retry
won't fix. A failure with a transient error code means SQS will deliver the
message again: keep waiting. The wait is bounded; what is still pending then
is reported with what to check, never as indexed.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence

from cli.destination import DocumentResult, Sent, Tick
from shared.documents import DocState, DocumentStatus
from shared.errors import (
    IndexUnavailable,
    ModelUnavailable,
    QueueUnavailable,
    RagError,
    TransientError,
)
from shared.ports import StatusStore

# Error codes of failures SQS retries (the indexer reports them as batch item failures).
RETRIED_CODES = frozenset(
    {TransientError.code, IndexUnavailable.code, QueueUnavailable.code, ModelUnavailable.code}
)
STACK_WAIT_S = 900.0
POLL_S = 2.0
PENDING = "pending"


def settled(status: DocumentStatus | None, message_id: str) -> DocumentResult | None:
    """The final result for our message, or None while it is still on its way."""
    if status is None or status.message_id != message_id:
        return None
    if status.state in (DocState.INDEXED, DocState.DELETED):
        return DocumentResult(status.doc_id, status.state.value, status.chunk_count)
    if status.state == DocState.FAILED and status.error_code not in RETRIED_CODES:
        return DocumentResult(status.doc_id, status.state.value, 0, status.reason)
    return None


async def wait_for_stack(
    status: StatusStore,
    sent: Sequence[Sent],
    tick: Tick,
    timeout_s: float = STACK_WAIT_S,
    poll_s: float = POLL_S,
    clock: Callable[[], float] = time.monotonic,
) -> list[DocumentResult]:
    pending = {s.doc_id: s.message_id for s in sent}
    results: dict[str, DocumentResult] = {}
    last_seen: dict[str, DocumentStatus | None] = {}
    deadline = clock() + timeout_s
    while pending:
        for doc_id, message_id in list(pending.items()):
            try:
                last_seen[doc_id] = await status.get(doc_id)
            except RagError:
                continue  # a read that failed is retried on the next round
            result = settled(last_seen[doc_id], message_id)
            if result is not None:
                results[doc_id] = result
                del pending[doc_id]
                tick(1)
        if not pending or clock() >= deadline:
            break
        await asyncio.sleep(poll_s)
    for doc_id in pending:
        results[doc_id] = _still_pending(doc_id, last_seen.get(doc_id), timeout_s)
    return [results[s.doc_id] for s in sent]


def _still_pending(doc_id: str, seen: DocumentStatus | None, timeout_s: float) -> DocumentResult:
    if seen is not None and seen.state == DocState.FAILED:
        reason = f"still failing after {timeout_s:.0f} s (SQS retries it): {seen.reason}"
    else:
        reason = (
            f"not handled within {timeout_s:.0f} s: the indexer may be behind (see the queue's "
            "age alarm), or the content was unchanged; check `rag docs --stack NAME` later"
        )
    return DocumentResult(doc_id, PENDING, 0, reason)
