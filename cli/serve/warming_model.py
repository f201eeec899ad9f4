"""Warm a ChatModel up in the background, so the server is up at once.

Loading a GGUF model takes seconds; ``rag serve`` must answer its health
check well before that. Building an adapter is cheap (it only reads
settings), so the adapter exists from the start and reports its family; its
``load()`` (when it has one) runs in the background, and the first ``stream``
waits for it.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import AsyncIterator

from shared.ports import ChatModel, GenerationParams, ModelEvent


class WarmingChatModel:
    def __init__(self, model: ChatModel) -> None:
        self._model = model
        self._loading: asyncio.Task[None] | None = None

    @property
    def loaded(self) -> bool:
        task = self._loading
        return task is not None and task.done() and not task.cancelled() and not task.exception()

    def start_loading(self) -> asyncio.Task[None]:
        if self._loading is None:
            self._loading = asyncio.create_task(self._load())
        return self._loading

    async def _load(self) -> None:
        load = getattr(self._model, "load", None)
        if load is not None:
            result = load()
            if inspect.isawaitable(result):
                await result

    @property
    def family(self) -> str:
        return self._model.family

    def count_tokens(self, text: str) -> int:
        return self._model.count_tokens(text)

    async def stream(self, prompt: str, params: GenerationParams) -> AsyncIterator[ModelEvent]:
        # A failed warm-up is retried by the adapter's own lazy load below.
        await asyncio.gather(asyncio.shield(self.start_loading()), return_exceptions=True)
        inner = self._model.stream(prompt, params)
        try:
            async for event in inner:
                yield event
        finally:
            close = getattr(inner, "aclose", None)
            if close is not None:
                await close()

    async def close(self) -> None:
        if self._loading is not None and not self._loading.done():
            self._loading.cancel()
        close = getattr(self._model, "close", None)
        if close is not None:
            result = close()
            if inspect.isawaitable(result):
                await result
