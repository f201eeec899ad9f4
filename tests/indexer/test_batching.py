"""Cross-message embedding batches."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import numpy as np
import pytest

from services.indexer.batching import BatchingEmbedder
from shared.documents import Vector
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


async def test_a_large_request_goes_in_calls_of_at_most_max_batch_texts() -> None:
    # GIVEN a document's write group, larger than one batch
    inner = FakeEmbedder(dimension=8)
    batching = BatchingEmbedder(inner, max_batch=4)
    texts = [f"chunk {i}" for i in range(10)]
    # WHEN it is embedded
    vectors = await batching.embed_documents(texts)
    # THEN no call carried more than 4 texts, and the vectors are each text's, in order
    assert [len(call) for call in inner.calls] == [4, 4, 2]
    assert vectors.shape == (10, 8)
    for text, vector in zip(texts, vectors, strict=True):
        np.testing.assert_array_equal(vector, inner.vector(text))


class GatedEmbedder(FakeEmbedder):
    """Each call waits until the test lets it finish."""

    def __init__(self) -> None:
        super().__init__(dimension=8)
        self.started = asyncio.Event()
        self.go_on = asyncio.Event()

    async def embed_documents(self, texts: Sequence[str]) -> Vector:
        self.started.set()
        await self.go_on.wait()
        return await super().embed_documents(texts)


async def test_a_cancelled_request_stops_after_the_piece_under_way() -> None:
    # GIVEN a large request whose first piece is being embedded
    inner = GatedEmbedder()
    batching = BatchingEmbedder(inner, max_batch=4)
    request = asyncio.create_task(batching.embed_documents([f"c{i}" for i in range(12)]))
    await asyncio.wait_for(inner.started.wait(), 10)
    # WHEN its caller gives up (a cancelled message, a stopping process)
    request.cancel()
    with pytest.raises(asyncio.CancelledError):
        await request
    inner.go_on.set()
    await asyncio.wait_for(batching._runner, 10)  # type: ignore[arg-type]
    # THEN the piece under way was the last call: the other 8 texts are never embedded
    assert [len(call) for call in inner.calls] == [4]
    # … and the next request is served as usual
    assert (await batching.embed_documents(["next"])).shape == (1, 8)
