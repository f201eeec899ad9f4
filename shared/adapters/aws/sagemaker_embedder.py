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

from shared.adapters.aws.remote_embedding import (
    RemoteEmbedder,
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


class SageMakerEmbedder(RemoteEmbedder):
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
        super().__init__(
            "sagemaker-runtime",
            dimension,
            f"SageMaker endpoint {endpoint_name}",
            region=region,
            endpoint_url=endpoint_url,
            client_config=client_config,
        )
        self._endpoint = endpoint_name
        self._batch_size = batch_size

    @property
    def model_id(self) -> str:
        return f"sagemaker:{self._endpoint}"

    async def _embed(self, texts: Sequence[str]) -> Vector:
        parts = [
            await self._invoke(texts[i : i + self._batch_size])
            for i in range(0, len(texts), self._batch_size)
        ]
        return np.concatenate(parts)

    async def _invoke(self, texts: Sequence[str]) -> Vector:
        raw = await self._read_body(
            lambda client: client.invoke_endpoint(
                EndpointName=self._endpoint,
                ContentType="application/json",
                Accept="application/json",
                Body=build_body(texts),
            ),
            "Body",
        )
        try:
            payload = json.loads(raw)
        except ValueError as exc:
            raise ModelError(f"{self._what}: the response is not JSON") from exc
        return to_unit_vectors(pooled_rows(payload), len(texts), self._dimension, self._what)


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
