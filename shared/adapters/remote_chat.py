"""What the AWS streaming chat adapters (SageMaker, Bedrock) have in common:
a lazily created client, the prompt family from settings, a character-based
token estimate, and ``stream`` as an async generator each subclass writes."""

from __future__ import annotations

import math
from collections.abc import AsyncIterator

from shared.adapters.aws_client import LazyAwsClient
from shared.ports import GenerationParams, ModelEvent

# Remote endpoints don't expose their tokenizer; a low characters-per-token
# ratio over-estimates prompt size, which is the safe side of a context budget.
CHARS_PER_TOKEN = 3.0


def estimate_tokens(text: str) -> int:
    return math.ceil(len(text) / CHARS_PER_TOKEN)


class RemoteChatModel:
    def __init__(self, family: str, client: LazyAwsClient) -> None:
        self._family = family
        self._client = client

    @property
    def family(self) -> str:
        return self._family

    def count_tokens(self, text: str) -> int:
        return estimate_tokens(text)

    def stream(self, prompt: str, params: GenerationParams) -> AsyncIterator[ModelEvent]:
        return self._stream(prompt, params)

    def _stream(self, prompt: str, params: GenerationParams) -> AsyncIterator[ModelEvent]:
        raise NotImplementedError

    async def close(self) -> None:
        await self._client.close()
