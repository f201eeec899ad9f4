"""The adapters one CLI command or the local server needs, built from settings.

Heavy parts (embedder, chat model) are built on first use, so ``rag docs``
stays instant and ``rag serve`` answers its health check before the chat
model has loaded.

Most of the CLI uses the ports (``index``, ``queue``...). Local mode also
uses what only the embedded adapters can do (queue counts, dead letters,
heartbeats; the list of stored documents): ``embedded_queue`` and
``embedded_index`` give those, typed, or None when that part is remote.
"""

from __future__ import annotations

import contextlib
import inspect
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

from shared.factory import (
    build_chat_model,
    build_embedder,
    build_queue,
    build_status_store,
    build_vector_index,
)
from shared.ports import ChatModel, Embedder, Queue, StatusStore, VectorIndex
from shared.settings import Settings

T = TypeVar("T")

if TYPE_CHECKING:  # the embedded adapters load apsw: only when local mode uses them
    from shared.adapters.sqlite_queue import SqliteQueue
    from shared.adapters.sqlite_store import SqliteVectorIndex


@dataclass
class LocalParts:
    settings: Settings
    _index: VectorIndex | None = None
    _status: StatusStore | None = None
    _queue: Queue | None = None
    _embedder: Embedder | None = None
    _model: ChatModel | None = None
    _embedded_index: SqliteVectorIndex | None = None
    _embedded_queue: SqliteQueue | None = None
    _closers: list[Any] = field(default_factory=list)

    def _built(self, build: Callable[[Settings], T]) -> T:
        part = build(self.settings)
        self._closers.append(part)
        return part

    @property
    def index(self) -> VectorIndex:
        if self._index is None:
            embedded = self.embedded_index
            self._index = embedded if embedded is not None else self._built(build_vector_index)
        return self._index

    @property
    def embedded_index(self) -> SqliteVectorIndex | None:
        """The index as the embedded store, or None when it is OpenSearch."""
        if self.settings.index.backend != "embedded":
            return None
        if self._embedded_index is None:
            from shared.adapters import sqlite_store

            self._embedded_index = self._built(sqlite_store.from_settings)
        return self._embedded_index

    @property
    def status(self) -> StatusStore:
        if self._status is None:
            self._status = self._built(build_status_store)
        return self._status

    @property
    def queue(self) -> Queue:
        if self._queue is None:
            embedded = self.embedded_queue
            self._queue = embedded if embedded is not None else self._built(build_queue)
        return self._queue

    @property
    def embedder(self) -> Embedder:
        if self._embedder is None:
            self._embedder = self._built(build_embedder)
        return self._embedder

    @property
    def model(self) -> ChatModel:
        if self._model is None:
            self._model = self._built(build_chat_model)
        return self._model

    @property
    def embedded_queue(self) -> SqliteQueue | None:
        """The queue as the embedded queue, or None when it is SQS."""
        if self.settings.queue.backend != "embedded":
            return None
        if self._embedded_queue is None:
            from shared.adapters import sqlite_queue

            self._embedded_queue = self._built(sqlite_queue.from_settings)
        return self._embedded_queue

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
