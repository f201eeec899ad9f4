"""What the AWS streaming chat adapters (SageMaker, Bedrock) have in common:
a lazily created client, the prompt family from settings, a character-based
token estimate, ``stream`` as an async generator each subclass writes, and
how both open and read an AWS response stream."""

from __future__ import annotations

import math
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from shared.adapters.aws.client import LazyAwsClient
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

    async def _open_stream(
        self, call: Callable[[Any], Awaitable[Any]], error: Callable[[Exception], Exception]
    ) -> Any:
        """The response of ``call(client)``; an AWS error becomes ``error(exc)``."""
        client = await self._client()
        try:
            return await call(client)
        except (ClientError, BotoCoreError) as exc:
            raise error(exc) from exc


async def stream_payloads(
    body: Any, event: str, field: str, error: Callable[[Exception], Exception]
) -> AsyncGenerator[bytes, None]:
    """The bytes of each ``event`` of an AWS event stream (other events are
    skipped); an AWS error mid-stream becomes ``error(exc)``. Read it inside
    ``contextlib.aclosing``: the HTTP stream is closed however reading ends
    (done, break, cancel), so the endpoint stops generating."""
    try:
        async for item in body:
            if event in item:
                yield item[event].get(field, b"")
    except (ClientError, BotoCoreError) as exc:
        raise error(exc) from exc
    finally:
        body.close()
