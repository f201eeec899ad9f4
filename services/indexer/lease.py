"""A per-document lease, held while one message of that document is worked on.

Two workers (two pollers, two Lambda invocations) must never write
generations of the same document at once: each could decide the other's
chunks are missing, stale or duplicated. The lease is a conditional put in
the status store (``acquire_lease``) with an expiry, renewed every third of
its time while the work goes on, so a worker that dies frees the document
after at most ``lease_s``. The loser of a race does not wait in place: its
message goes back to the queue for a short, growing delay (``Verdict.BUSY``).

``lease_s`` must exceed the longest single request a worker may have in
flight (an OpenSearch bulk with its retries): a worker that finds a crashed
worker's marker relies on the crashed worker's writes having landed by the
time its lease ran out.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from types import TracebackType

from shared.errors import LeaseLost
from shared.ports import StatusStore, VectorIndex

log = logging.getLogger("services.indexer")


class DocumentBusy(Exception):
    """Another worker holds the document's lease."""


class DocLease:
    def __init__(self, status: StatusStore, doc_id: str, ttl_s: float) -> None:
        self._status = status
        self.doc_id = doc_id
        # Also the fencing token: status writes pass it (``StatusStore.put(fence=)``)
        # so that a worker that stalled past its lease cannot overwrite the
        # record of the worker that took the document over.
        self.owner = uuid.uuid4().hex
        self._ttl_s = ttl_s
        self._valid_until = 0.0
        self._renewing: asyncio.Task[None] | None = None
        self.acquired_at = 0.0  # wall clock (time.time) when taken

    async def __aenter__(self) -> DocLease:
        start = time.monotonic()
        if not await self._status.acquire_lease(self.doc_id, self.owner, self._ttl_s):
            raise DocumentBusy(self.doc_id)
        self.acquired_at = time.time()
        self._valid_until = start + self._ttl_s
        self._renewing = asyncio.create_task(self._renew())
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._renewing is not None:
            self._renewing.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._renewing
        try:
            await self._status.release_lease(self.doc_id, self.owner)
        except Exception as error:  # it expires by itself
            log.warning(
                "could not release a document lease",
                extra={"fields": {"doc_id": self.doc_id, "error": repr(error)}},
            )

    def check(self) -> None:
        """Raise LeaseLost unless the lease is certainly still ours (call before writes)."""
        if time.monotonic() >= self._valid_until:
            raise LeaseLost(f"the lease on {self.doc_id!r} ran out before the work was done")

    async def confirm(self) -> None:
        """``check`` and ask the store too (before index writes and deletes,
        which cannot be made conditional): a worker that was paused — GC,
        throttled network — past its lease learns it lost from the store."""
        self.check()
        if not await self._extend():
            raise LeaseLost(f"the lease on {self.doc_id!r} was taken by another worker")

    async def _renew(self) -> None:
        while True:
            await asyncio.sleep(self._ttl_s / 3)
            try:
                if not await self._extend():
                    return  # taken over: stop at the next check()
            except Exception as error:  # try again; check() stops writes once it expires
                log.warning(
                    "could not renew a document lease",
                    extra={"fields": {"doc_id": self.doc_id, "error": repr(error)}},
                )

    async def _extend(self) -> bool:
        """Renew the lease in the store for another ``ttl_s``, counted from
        before the request; False (and expired here) once it is not ours."""
        start = time.monotonic()
        if not await self._status.renew_lease(self.doc_id, self.owner, self._ttl_s):
            self._valid_until = 0.0
            return False
        self._valid_until = start + self._ttl_s
        return True


async def delete_seen(index: VectorIndex, doc_id: str, keep: str | None, lease: DocLease) -> int:
    """Delete the chunks searchable now (but ``keep``'s) by id, after asking the
    store that the lease is still ours: a worker or reconcile run that stalled
    past its lease never deletes what its successor wrote meanwhile."""
    doomed = await index.chunk_ids(doc_id, keep)
    await lease.confirm()
    return await index.delete_chunks(doomed)
