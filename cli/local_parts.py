"""The adapters one CLI command or the local server needs, built from settings.

Heavy parts (embedder, chat model) are built on first use, so ``rag docs``
stays instant and ``rag serve`` answers its health check before the chat
model has loaded.

Most of the CLI uses the ports (``index``, ``queue``...). Local mode also
uses what only the embedded adapters can do, typed, or None when that part is
remote: ``embedded_queue`` (queue counts, dead letters, heartbeats), read only
by the embedded destination (``cli/destination/embedded.py``: every command
asks its ``Destination``), and ``embedded_index`` (the list of stored
documents, for an in-process ask's "nothing indexed yet").
"""

from __future__ import annotations

import contextlib
import inspect
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
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
    from shared.adapters.sqlite.queue import SqliteQueue
    from shared.adapters.sqlite.store import SqliteVectorIndex


@dataclass
class LocalParts:
    settings: Settings
    _closers: list[Any] = field(default_factory=list)

    def _built(self, build: Callable[[Settings], T]) -> T:
        part = build(self.settings)
        self._closers.append(part)
        return part

    # Each part is built on first use and kept (cached_property), closed by close().
    @cached_property
    def index(self) -> VectorIndex:
        embedded = self.embedded_index
        return embedded if embedded is not None else self._built(build_vector_index)

    @cached_property
    def embedded_index(self) -> SqliteVectorIndex | None:
        """The index as the embedded store, or None when it is OpenSearch."""
        if self.settings.index.backend != "embedded":
            return None
        from shared.adapters.sqlite import store as sqlite_store

        return self._built(sqlite_store.from_settings)

    @cached_property
    def status(self) -> StatusStore:
        return self._built(build_status_store)

    @cached_property
    def queue(self) -> Queue:
        embedded = self.embedded_queue
        return embedded if embedded is not None else self._built(build_queue)

    @cached_property
    def embedder(self) -> Embedder:
        return self._built(build_embedder)

    @cached_property
    def model(self) -> ChatModel:
        return self._built(build_chat_model)

    @cached_property
    def embedded_queue(self) -> SqliteQueue | None:
        """The queue as the embedded queue, or None when it is SQS."""
        if self.settings.queue.backend != "embedded":
            return None
        from shared.adapters.sqlite import queue as sqlite_queue

        return self._built(sqlite_queue.from_settings)

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
