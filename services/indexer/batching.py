"""Cross-message embedding batches.

Most ingest messages are small: one or two chunks. Embedding each on its own
wastes the model's batch throughput (a forward pass over 32 texts costs far
less than 32 passes over one). This wrapper lets the messages in flight share
batches without adding latency: while the model is busy, requests queue up;
as soon as it is free, everything waiting (up to ``max_batch`` texts) goes in
one call. A lone request is embedded at once.

No call carries more than ``max_batch`` texts: a large request (a document's
write group, 256 chunks) is embedded in pieces. A local embedder runs each
call in a thread that nothing can stop, and the interpreter waits for it at
exit; in pieces, a request whose caller gave up (a cancelled message, a
stopping ``rag serve`` or poller) stops after the piece under way instead of
running on for minutes.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from shared.documents import Vector
from shared.ports import Embedder


@dataclass
class _Request:
    texts: list[str]
    result: asyncio.Future[Vector]


class BatchingEmbedder:
    def __init__(self, inner: Embedder, max_batch: int = 64) -> None:
        self._inner = inner
        self._max_batch = max_batch
        self._waiting: list[_Request] = []
        self._runner: asyncio.Task[None] | None = None
        self.calls = 0  # forward calls made (for the benchmark's report)

    @property
    def model_id(self) -> str:
        return self._inner.model_id

    @property
    def dimension(self) -> int:
        return self._inner.dimension

    async def embed_query(self, text: str) -> Vector:
        return await self._inner.embed_query(text)

    async def embed_documents(self, texts: Sequence[str]) -> Vector:
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        request = _Request(list(texts), asyncio.get_running_loop().create_future())
        self._waiting.append(request)
        if self._runner is None or self._runner.done():
            self._runner = asyncio.create_task(self._run())
        return await request.result

    def _take_batch(self) -> list[_Request]:
        batch: list[_Request] = []
        size = 0
        while self._waiting and (
            not batch or size + len(self._waiting[0].texts) <= self._max_batch
        ):
            request = self._waiting.pop(0)
            batch.append(request)
            size += len(request.texts)
        return batch

    async def _run(self) -> None:
        while self._waiting:
            batch = [r for r in self._take_batch() if not r.result.cancelled()]
            if not batch:
                continue
            try:
                vectors = await self._embed(batch)
            except Exception as exc:
                for request in batch:
                    if not request.result.done():
                        request.result.set_exception(exc)
                continue
            if vectors is None:
                continue  # every caller gave up
            start = 0
            for request in batch:
                end = start + len(request.texts)
                if not request.result.done():
                    request.result.set_result(vectors[start:end])
                start = end

    async def _embed(self, batch: list[_Request]) -> Vector | None:
        """The batch's vectors, ``max_batch`` texts per inner call; None once
        every request in it was cancelled."""
        texts = [t for r in batch for t in r.texts]
        pieces: list[Vector] = []
        for first in range(0, len(texts), self._max_batch):
            if all(r.result.cancelled() for r in batch):
                return None
            self.calls += 1
            pieces.append(await self._inner.embed_documents(texts[first : first + self._max_batch]))
        return pieces[0] if len(pieces) == 1 else np.concatenate(pieces)
