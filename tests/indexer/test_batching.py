"""Cross-message embedding batches."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest

from services.indexer.batching import BatchingEmbedder
from shared.errors import ModelError
from tests.fakes.embedder import FakeEmbedder


async def test_concurrent_requests_share_calls_and_get_their_own_vectors() -> None:
    inner = FakeEmbedder(dimension=8)
    batching = BatchingEmbedder(inner, max_batch=4)
    requests = [[f"text {i}"] for i in range(6)] + [["two a", "two b"]]

    results = await asyncio.gather(*(batching.embed_documents(r) for r in requests))

    for texts, vectors in zip(requests, results, strict=True):
        assert vectors.shape == (len(texts), 8)
        for text, vector in zip(texts, vectors, strict=True):
            np.testing.assert_array_equal(vector, inner.vector(text))
    # the first request runs alone; the rest wait and go at most 4 texts per call
    assert batching.calls < len(requests)
    assert all(len(call) <= 4 for call in inner.calls)


async def test_a_failed_call_fails_every_request_in_it_and_the_next_one_works() -> None:
    inner = FakeEmbedder(dimension=8)
    inner.fail_with = ModelError("boom")
    batching = BatchingEmbedder(inner, max_batch=8)

    with pytest.raises(ModelError):
        await batching.embed_documents(["a"])
    vectors = await batching.embed_documents(["b"])
    assert vectors.shape == (1, 8)


async def test_it_keeps_the_inner_identity() -> None:
    inner = FakeEmbedder(dimension=8, model_id="m")
    batching = BatchingEmbedder(inner)
    assert (batching.model_id, batching.dimension) == ("m", 8)
    assert (await batching.embed_documents([])).shape == (0, 8)
