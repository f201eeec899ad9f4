"""The reconciler: make the index match the status records again, and say what it did.

The status record of a document says what the index must hold (generation
and chunk count; nothing for a deleted document). Drift is anything else:

- ``stray_generations``: chunks of other generations (a clean-up that never ran);
- ``orphan_chunks``: chunks of a document whose record says deleted (or never indexed);
- ``missing_chunks`` / ``extra_chunks``: the current generation is short or
  duplicated; the document is re-queued (its ingest message is kept, small
  and compressed, in the record) and rewritten whole by the indexer;
- ``unfinished_write``: a worker died mid-write (its marker is still there).

Each document is checked under its lease (never beside a live worker) and
only once its last write has settled, so a lagging search is never mistaken
for drift; documents that are busy or settling are counted and left to the
next run. Transport-free: the Lambda's scheduled run and ``rag reconcile``
call the same :class:`Reconciler`.

Chunks of a document with no status record at all are orphans too: a
writer records its marker before its first chunk, so no live worker can be
behind them.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

from services.indexer.lease import DocLease, DocumentBusy, delete_seen
from services.indexer.records import repaired_record, settled_at, unpack_message
from shared.documents import DocState, DocumentStatus
from shared.ports import StatusStore, VectorIndex

log = logging.getLogger("services.indexer")

Requeue = Callable[[str], Awaitable[Any]]
MAX_DOCUMENTS = 1_000_000


@dataclass(frozen=True)
class Repair:
    doc_id: str
    drift: str
    detail: str
    action: str


@dataclass
class ReconcileReport:
    checked: int = 0
    busy: int = 0
    settling: int = 0
    repairs: list[Repair] = field(default_factory=list)
    dry_run: bool = False

    @property
    def drift_found(self) -> int:
        return len(self.repairs)

    @property
    def requeued(self) -> int:
        return sum(1 for r in self.repairs if r.action == "re-queued")

    def as_dict(self) -> dict[str, Any]:
        return {
            "checked": self.checked,
            "drift_found": self.drift_found,
            "requeued": self.requeued,
            "busy": self.busy,
            "settling": self.settling,
            "dry_run": self.dry_run,
            "repairs": [asdict(r) for r in self.repairs],
        }


def expected_generations(record: DocumentStatus) -> dict[str, int]:
    """What the index must hold for this record."""
    if record.state is DocState.DELETED or record.generation is None:
        return {}
    return {record.generation: record.chunk_count}


@dataclass(frozen=True, kw_only=True)
class Reconciler:
    index: VectorIndex
    status: StatusStore
    requeue: Requeue | None
    settle_s: float
    lease_s: float
    requeue_limit: int = 100

    async def run(self, *, dry_run: bool = False) -> ReconcileReport:
        report = ReconcileReport(dry_run=dry_run)
        recorded = [r.doc_id for r in await self.status.list(limit=MAX_DOCUMENTS)]
        unrecorded = sorted(set(await self.index.doc_ids()) - set(recorded))
        for doc_id in recorded + unrecorded:
            report.checked += 1
            try:
                async with DocLease(self.status, doc_id, self.lease_s) as lease:
                    await self._check(doc_id, lease, report)
            except DocumentBusy:
                report.busy += 1
        log.info("reconciled", extra={"fields": report.as_dict()})
        return report

    async def _check(self, doc_id: str, lease: DocLease, report: ReconcileReport) -> None:
        record = await self.status.get(doc_id)  # fresh, under the lease
        if record is None:
            await self._orphan(doc_id, lease, report)
            return
        until = settled_at(record, lease.acquired_at, self.settle_s)
        if until is not None and until > datetime.now(UTC):
            report.settling += 1
            return
        stored = await self.index.generations(doc_id)
        expected = expected_generations(record)
        repairs: list[Repair] = []
        strays = {g: n for g, n in stored.items() if g not in expected}
        if strays:
            drift = "stray_generations" if expected else "orphan_chunks"
            detail = ", ".join(f"{g}×{n}" for g, n in sorted(strays.items()))
            action = "none (dry run)"
            if not report.dry_run:
                removed = await delete_seen(self.index, doc_id, record.generation, lease)
                action = f"deleted {removed} chunk(s)"
            repairs.append(Repair(doc_id, drift, detail, action))
        if record.writing is not None and not strays:
            repairs.append(
                Repair(doc_id, "unfinished_write", f"marker {record.writing}", "marker cleared")
            )
        for generation, want in expected.items():
            have = stored.get(generation, 0)
            if have != want:
                drift = "missing_chunks" if have < want else "extra_chunks"
                detail = f"{generation}: {have} of {want} chunk(s)"
                action = await self._requeue_doc(record, report)
                repairs.append(Repair(doc_id, drift, detail, action))
        for repair in repairs:
            log.warning("drift", extra={"fields": asdict(repair)})
        report.repairs += repairs
        if not report.dry_run and (repairs or record.cleanup_pending):
            await self._record_repaired(record, repairs, lease)

    async def _orphan(self, doc_id: str, lease: DocLease, report: ReconcileReport) -> None:
        stored = await self.index.generations(doc_id)
        if not stored:
            return
        detail = "no status record; " + ", ".join(f"{g}×{n}" for g, n in sorted(stored.items()))
        action = "none (dry run)"
        if not report.dry_run:
            action = f"deleted {await delete_seen(self.index, doc_id, None, lease)} chunk(s)"
        repair = Repair(doc_id, "orphan_chunks", detail, action)
        log.warning("drift", extra={"fields": asdict(repair)})
        report.repairs.append(repair)

    async def _requeue_doc(self, record: DocumentStatus, report: ReconcileReport) -> str:
        if report.dry_run:
            return "none (dry run)"
        if record.source_message is None:
            return "cannot re-queue: the message was too large to keep; send it again"
        if self.requeue is None:
            return "cannot re-queue: no queue configured"
        if report.requeued >= self.requeue_limit:
            return "not re-queued: this run's re-queue limit was reached"
        await self.requeue(unpack_message(record.source_message))
        return "re-queued"

    async def _record_repaired(
        self, record: DocumentStatus, repairs: list[Repair], lease: DocLease
    ) -> None:
        requeued = [r.detail for r in repairs if r.action == "re-queued"]
        record = repaired_record(record, "; ".join(requeued) if requeued else None)
        lease.check()
        await self.status.put(record, fence=lease.owner)


def drift_metric(report: ReconcileReport, namespace: str, function: str) -> dict[str, Any]:
    """A CloudWatch Embedded Metric Format record: printed to the Lambda's log,
    CloudWatch turns it into metrics (no PutMetricData permission needed)."""
    return {
        "_aws": {
            "Timestamp": int(time.time() * 1000),
            "CloudWatchMetrics": [
                {
                    "Namespace": namespace,
                    "Dimensions": [["FunctionName"]],
                    "Metrics": [
                        {"Name": "DriftFound", "Unit": "Count"},
                        {"Name": "DocumentsRequeued", "Unit": "Count"},
                        {"Name": "DocumentsChecked", "Unit": "Count"},
                    ],
                }
            ],
        },
        "FunctionName": function,
        "DriftFound": report.drift_found,
        "DocumentsRequeued": report.requeued,
        "DocumentsChecked": report.checked,
    }
