"""What the SageMaker and Bedrock embedders share: the ``RemoteEmbedder``
base (the port's methods around one lazy ``aws_client.LazyAwsClient``),
botocore errors mapped to ours, and vector checks.

Pure parts (``map_client_error``, ``to_unit_vectors``) are tested alone.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import numpy as np
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from shared.adapters.aws.client import LazyAwsClient, error_code, http_status
from shared.documents import Vector
from shared.errors import ConfigurationError, DimensionMismatch, ModelError, ModelUnavailable
from shared.settings import Settings

# Error codes worth a retry (the SQS redelivery of the indexer does it).
_TRANSIENT_CODES = frozenset(
    {
        "ThrottlingException",
        "Throttling",
        "TooManyRequestsException",
        "ServiceQuotaExceededException",
        "ServiceUnavailable",
        "ServiceUnavailableException",
        "InternalFailure",
        "InternalServerException",
        "InternalDependencyException",
        "ModelNotReadyException",
        "ModelTimeoutException",
    }
)


def endpoint_client(
    service: str, region: str, endpoint_url: str | None, config: Config | None
) -> LazyAwsClient:
    """The runtime client of a model endpoint. ``endpoint_url`` is the
    embedder's own, not ``RAG_AWS__ENDPOINT_URL``: that one points S3/SQS at
    local look-alikes, which don't serve SageMaker or Bedrock."""
    return LazyAwsClient(service, region=region, endpoint_url=endpoint_url, config=config)


def required_dimension(settings: Settings, backend: str) -> int:
    dimension = settings.embedder.dimension
    if dimension is None:
        raise ConfigurationError(
            f"RAG_EMBEDDER__DIMENSION is required for the {backend} embedder "
            "(the vector size the endpoint returns; the index is created with it)"
        )
    return dimension


def map_client_error(exc: Exception, what: str) -> Exception:
    """Our error for a botocore one (raise it ``from exc``)."""
    if isinstance(exc, ClientError):
        code, status = error_code(exc), http_status(exc) or 0
        message = str(exc.response.get("Error", {}).get("Message", "")) or str(exc)
        if code in _TRANSIENT_CODES or status in (429, 500, 502, 503, 504):
            return ModelUnavailable(f"{what}: {code}: {message}")
        return ModelError(f"{what}: {code or status}: {message}")
    if isinstance(exc, BotoCoreError):  # connection refused, timeouts, no credentials
        return ModelUnavailable(f"{what}: {exc}")
    return ModelError(f"{what}: {exc}")


def to_unit_vectors(rows: Any, count: int, dimension: int, what: str) -> Vector:
    """Check a decoded response: ``count`` rows of ``dimension`` floats,
    returned L2-normalised as float32 (endpoints don't all normalise)."""
    try:
        vectors = np.asarray(rows, dtype=np.float32)
    except (TypeError, ValueError) as exc:
        raise ModelError(f"{what}: the response is not a list of vectors") from exc
    if vectors.ndim != 2 or vectors.shape[0] != count:
        raise ModelError(f"{what}: expected {count} vectors, got shape {vectors.shape}")
    if vectors.shape[1] != dimension:
        raise DimensionMismatch(
            f"{what}: the endpoint returns {vectors.shape[1]}-d vectors, "
            f"RAG_EMBEDDER__DIMENSION says {dimension}"
        )
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    if not np.all(np.isfinite(norms)) or np.any(norms == 0):
        raise ModelError(f"{what}: the endpoint returned a zero or non-finite vector")
    unit: Vector = (vectors / norms).astype(np.float32)
    return unit


class RemoteEmbedder:
    """The Embedder port over one model endpoint: a subclass says how texts
    become vectors (``_embed``, never called with no text) and reads each
    call's answer with ``_read_body``. ``what`` names the endpoint in errors."""

    def __init__(
        self,
        service: str,
        dimension: int,
        what: str,
        *,
        region: str,
        endpoint_url: str | None,
        client_config: Config | None,
    ) -> None:
        self._dimension = dimension
        self._what = what
        self._client = endpoint_client(service, region, endpoint_url, client_config)

    @property
    def dimension(self) -> int:
        return self._dimension

    async def embed_documents(self, texts: Sequence[str]) -> Vector:
        if not texts:
            return np.zeros((0, self._dimension), dtype=np.float32)
        return await self._embed(texts)

    async def embed_query(self, text: str) -> Vector:
        vectors = await self._embed([text])
        vector: Vector = vectors[0]
        return vector

    async def close(self) -> None:
        await self._client.close()

    async def _embed(self, texts: Sequence[str]) -> Vector:
        raise NotImplementedError

    async def _read_body(self, call: Callable[[Any], Awaitable[Any]], body_key: str) -> bytes:
        """The whole answer of ``call(client)``; botocore errors become ours."""
        client = await self._client()
        try:
            response = await call(client)
            async with response[body_key] as stream:
                raw: bytes = await stream.read()
        except Exception as exc:
            raise map_client_error(exc, self._what) from exc
        return raw
