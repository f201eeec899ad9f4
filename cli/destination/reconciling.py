"""The indexer's own reconciler (``services.indexer.reconcile``), run in this
process on the destination's index and status table; what it re-queues goes
to the destination's queue, for whichever indexer consumes it."""

from __future__ import annotations

import json
from typing import Any

from cli.destination import Sent
from cli.local_parts import LocalParts
from services.indexer.reconcile import Reconciler, ReconcileReport


async def reconcile_here(parts: LocalParts, *, dry_run: bool) -> tuple[dict[str, Any], list[Sent]]:
    """The report, and the messages re-queued."""
    settings = parts.settings
    sent: list[Sent] = []

    async def requeue(body: str) -> None:
        message_id = await parts.queue.send(body)
        sent.append(Sent(json.loads(body)["doc_id"], message_id))

    reconciler = Reconciler(
        index=parts.index,
        status=parts.status,
        requeue=requeue,
        settle_s=settings.settle_seconds(),
        lease_s=settings.indexer.lease_s,
        requeue_limit=settings.indexer.reconcile_requeue_limit,
    )
    report: ReconcileReport = await reconciler.run(dry_run=dry_run)
    return report.as_dict(), sent
