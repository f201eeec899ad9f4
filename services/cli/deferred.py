"""A ChatModel that loads in the background, so the server is up at once.

Loading a GGUF model takes seconds; ``rag serve`` must answer its health
check well before that. Until the real model is ready, ``family`` reports the
expected template family and ``count_tokens`` a conservative estimate;
``stream`` waits for the load.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable

from shared.ports import ChatModel, GenerationParams, ModelEvent

# Llama-family tokenizers average about 3-4 characters per token on English
# prose; 3 over-counts slightly, which keeps prompts inside the context.
_CHARS_PER_TOKEN_ESTIMATE = 3


class DeferredChatModel:
    def __init__(self, build: Callable[[], ChatModel], family_hint: str) -> None:
        self._build = build
        self._family_hint = family_hint
        self._model: ChatModel | None = None
        self._loading: asyncio.Task[ChatModel] | None = None

    @property
    def loaded(self) -> bool:
        return self._model is not None

    def start_loading(self) -> asyncio.Task[ChatModel]:
        if self._loading is None:
            self._loading = asyncio.create_task(self._load())
        return self._loading

    async def _load(self) -> ChatModel:
        model = await asyncio.to_thread(self._build)
        warm = getattr(model, "load", None)  # adapters that load lazily expose load()
        if warm is not None:
            result = warm()
            if asyncio.iscoroutine(result):
                await result
        self._model = model
        return model

    async def ready(self) -> ChatModel:
        if self._model is not None:
            return self._model
        return await asyncio.shield(self.start_loading())

    @property
    def family(self) -> str:
        return self._model.family if self._model is not None else self._family_hint

    def count_tokens(self, text: str) -> int:
        if self._model is not None:
            return self._model.count_tokens(text)
        return len(text) // _CHARS_PER_TOKEN_ESTIMATE + 1

    async def stream(self, prompt: str, params: GenerationParams) -> AsyncIterator[ModelEvent]:
        model = await self.ready()
        inner = model.stream(prompt, params)
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
            if asyncio.iscoroutine(result):
                await result
