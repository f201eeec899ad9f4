"""The adapters one CLI command or the local server needs, built from settings.

Heavy parts (embedder, chat model) are built on first use, so ``rag docs``
stays instant and ``rag serve`` answers its health check before the chat
model has loaded.
"""

from __future__ import annotations

import contextlib
import inspect
from dataclasses import dataclass, field
from typing import Any

from shared.factory import (
    build_chat_model,
    build_embedder,
    build_queue,
    build_status_store,
    build_vector_index,
)
from shared.ports import ChatModel, Embedder, Queue, StatusStore, VectorIndex
from shared.settings import Settings


@dataclass
class LocalParts:
    settings: Settings
    _index: VectorIndex | None = None
    _status: StatusStore | None = None
    _queue: Queue | None = None
    _embedder: Embedder | None = None
    _model: ChatModel | None = None
    _closers: list[Any] = field(default_factory=list)

    def _keep(self, part: Any) -> Any:
        self._closers.append(part)
        return part

    @property
    def index(self) -> VectorIndex:
        if self._index is None:
            self._index = self._keep(build_vector_index(self.settings))
        return self._index

    @property
    def status(self) -> StatusStore:
        if self._status is None:
            self._status = self._keep(build_status_store(self.settings))
        return self._status

    @property
    def queue(self) -> Queue:
        if self._queue is None:
            self._queue = self._keep(build_queue(self.settings))
        return self._queue

    @property
    def embedder(self) -> Embedder:
        if self._embedder is None:
            self._embedder = self._keep(build_embedder(self.settings))
        return self._embedder

    @property
    def model(self) -> ChatModel:
        if self._model is None:
            self._model = self._keep(build_chat_model(self.settings))
        return self._model

    @property
    def embedded_queue(self) -> bool:
        return self.settings.queue.backend == "embedded"

    async def close(self) -> None:
        for part in reversed(self._closers):
            close = getattr(part, "close", None)
            if close is None:
                continue
            # Best effort at exit: one failing close must not keep others open.
            with contextlib.suppress(Exception):
                result = close()
                if inspect.isawaitable(result):
                    await result
        self._closers.clear()
