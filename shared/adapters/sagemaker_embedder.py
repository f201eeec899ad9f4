"""Embeddings from a SageMaker endpoint (``InvokeEndpoint``, JSON).

Speaks the Hugging Face containers' request ``{"inputs": [text, ...]}`` and
accepts the answers they give: Text Embeddings Inference returns one pooled
vector per text (``[[...], ...]``); the Inference Toolkit's
``feature-extraction`` pipeline returns token vectors per text
(``[[[...], ...], ...]``), mean-pooled here. ``{"embeddings": ...}`` (LMI and
custom handlers) is accepted too. Vectors are L2-normalised here.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import numpy as np
from botocore.config import Config

from shared.adapters.remote_embedding import (
    endpoint_client,
    map_client_error,
    required_dimension,
    to_unit_vectors,
)
from shared.documents import Vector
from shared.errors import ConfigurationError, ModelError
from shared.settings import Settings


def build_body(texts: Sequence[str]) -> bytes:
    return json.dumps({"inputs": list(texts)}).encode()


def pooled_rows(payload: Any) -> list[Any]:
    """One vector per text from any of the accepted response shapes."""
    if isinstance(payload, dict):
        payload = payload.get("embeddings", payload.get("vectors"))
    if not isinstance(payload, list):
        raise ModelError("SageMaker embedding response is not a list of vectors")
    rows = []
    for row in payload:
        if isinstance(row, list) and row and isinstance(row[0], list):
            # Token vectors of one text (the pipeline already dropped padding
            # for single texts; for batches it pads, so mean-pooling includes
            # pad tokens: prefer TEI, whose pooling is exact).
            rows.append(np.asarray(row, dtype=np.float32).mean(axis=0))
        else:
            rows.append(row)
    return rows


class SageMakerEmbedder:
    def __init__(
        self,
        endpoint_name: str,
        dimension: int,
        *,
        region: str,
        batch_size: int = 32,
        endpoint_url: str | None = None,
        client_config: Config | None = None,
    ) -> None:
        self._endpoint = endpoint_name
        self._dimension = dimension
        self._batch_size = batch_size
        self._client = endpoint_client("sagemaker-runtime", region, endpoint_url, client_config)

    @property
    def model_id(self) -> str:
        return f"sagemaker:{self._endpoint}"

    @property
    def dimension(self) -> int:
        return self._dimension

    async def embed_documents(self, texts: Sequence[str]) -> Vector:
        if not texts:
            return np.zeros((0, self._dimension), dtype=np.float32)
        parts = [
            await self._invoke(texts[i : i + self._batch_size])
            for i in range(0, len(texts), self._batch_size)
        ]
        return np.concatenate(parts)

    async def embed_query(self, text: str) -> Vector:
        vectors = await self._invoke([text])
        vector: Vector = vectors[0]
        return vector

    async def close(self) -> None:
        await self._client.close()

    async def _invoke(self, texts: Sequence[str]) -> Vector:
        what = f"SageMaker endpoint {self._endpoint}"
        client = await self._client()
        try:
            response = await client.invoke_endpoint(
                EndpointName=self._endpoint,
                ContentType="application/json",
                Accept="application/json",
                Body=build_body(texts),
            )
            async with response["Body"] as stream:
                raw = await stream.read()
        except Exception as exc:
            raise map_client_error(exc, what) from exc
        try:
            payload = json.loads(raw)
        except ValueError as exc:
            raise ModelError(f"{what}: the response is not JSON") from exc
        return to_unit_vectors(pooled_rows(payload), len(texts), self._dimension, what)


def from_settings(settings: Settings) -> SageMakerEmbedder:
    endpoint = settings.embedder.endpoint_name
    if not endpoint:
        raise ConfigurationError(
            "RAG_EMBEDDER__ENDPOINT_NAME is required for RAG_EMBEDDER__BACKEND=sagemaker"
        )
    return SageMakerEmbedder(
        endpoint,
        required_dimension(settings, "SageMaker"),
        region=settings.aws.region,
        batch_size=settings.embedder.batch_size,
    )
