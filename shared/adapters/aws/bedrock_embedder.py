"""Embeddings from Amazon Titan Text Embeddings V2 on Bedrock (``InvokeModel``).

Titan embeds one text per call: ``{"inputText", "dimensions", "normalize"}``
in, ``{"embedding": [...], "inputTextTokenCount": n}`` out. A batch becomes
that many calls, at most ``concurrency`` in flight.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence

from botocore.config import Config

from shared.adapters.aws.remote_embedding import (
    RemoteEmbedder,
    required_dimension,
    to_unit_vectors,
)
from shared.documents import Vector
from shared.errors import ConfigurationError, ModelError
from shared.settings import Settings

TITAN_V2_DIMENSIONS = (256, 512, 1024)
# Titan V2 reads at most 8,192 tokens / 50,000 characters per text.
MAX_INPUT_CHARS = 50_000


def build_body(text: str, dimension: int) -> bytes:
    body = {"inputText": text[:MAX_INPUT_CHARS], "dimensions": dimension, "normalize": True}
    return json.dumps(body).encode()


class BedrockEmbedder(RemoteEmbedder):
    def __init__(
        self,
        model_id: str,
        dimension: int,
        *,
        region: str,
        concurrency: int = 8,
        endpoint_url: str | None = None,
        client_config: Config | None = None,
    ) -> None:
        if model_id.startswith("amazon.titan-embed-text-v2") and dimension not in (
            TITAN_V2_DIMENSIONS
        ):
            raise ConfigurationError(
                f"Titan Text Embeddings V2 returns {TITAN_V2_DIMENSIONS} dimensions, "
                f"not {dimension}: set RAG_EMBEDDER__DIMENSION to one of them"
            )
        super().__init__(
            "bedrock-runtime",
            dimension,
            f"Bedrock model {model_id}",
            region=region,
            endpoint_url=endpoint_url,
            client_config=client_config,
        )
        self._model = model_id
        self._concurrency = max(1, concurrency)

    @property
    def model_id(self) -> str:
        return f"bedrock:{self._model}:{self._dimension}"

    async def _embed(self, texts: Sequence[str]) -> Vector:
        limit = asyncio.Semaphore(self._concurrency)

        async def one(text: str) -> list[float]:
            async with limit:
                return await self._invoke(text)

        rows = await asyncio.gather(*(one(text) for text in texts))
        return to_unit_vectors(rows, len(texts), self._dimension, self._what)

    async def _invoke(self, text: str) -> list[float]:
        raw = await self._read_body(
            lambda client: client.invoke_model(
                modelId=self._model,
                contentType="application/json",
                accept="application/json",
                body=build_body(text, self._dimension),
            ),
            "body",
        )
        try:
            embedding = json.loads(raw)["embedding"]
        except (ValueError, KeyError, TypeError) as exc:
            raise ModelError(f"{self._what}: no embedding in the response") from exc
        if not isinstance(embedding, list):
            raise ModelError(f"{self._what}: the embedding is not a list")
        return embedding


def from_settings(settings: Settings) -> BedrockEmbedder:
    return BedrockEmbedder(
        settings.embedder.bedrock_model_id,
        required_dimension(settings, "Bedrock"),
        region=settings.aws.region,
        concurrency=min(settings.embedder.batch_size, 16),
    )
