"""The fakes other tests rely on behave as documented."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest

from shared.errors import ModelError
from shared.ports import GenerationParams, ModelEvent, ModelFinish, ModelToken
from shared.protocol import StopReason
from tests.fakes.chat_model import FakeChatModel, Script
from tests.fakes.embedder import FakeEmbedder


async def _collect(model: FakeChatModel, params: GenerationParams) -> list[ModelEvent]:
    return [event async for event in model.stream("a prompt", params)]


async def test_fake_embedder_is_deterministic_normalised_and_word_sensitive() -> None:
    embedder = FakeEmbedder(dimension=64)
    docs = await embedder.embed_documents(["red apple pie", "red apple", "quantum physics"])
    query = await embedder.embed_query("red apple")
    assert docs.shape == (3, 64) and docs.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(docs, axis=1), 1.0, rtol=1e-6)
    np.testing.assert_array_equal(docs[1], query)
    assert docs[0] @ query > docs[2] @ query


async def test_fake_chat_model_streams_tokens_then_one_finish() -> None:
    model = FakeChatModel(Script(tokens=["a", "b", "c"]))
    events = await _collect(model, GenerationParams())
    assert events == [
        ModelToken("a"),
        ModelToken("b"),
        ModelToken("c"),
        ModelFinish(StopReason.END, prompt_tokens=2, completion_tokens=3),
    ]


async def test_fake_chat_model_honours_max_new_tokens_and_stop() -> None:
    model = FakeChatModel(Script(tokens=["a", "b", "STOP", "c"]))
    events = await _collect(model, GenerationParams(max_new_tokens=1))
    assert events[-1] == ModelFinish(StopReason.LENGTH, prompt_tokens=2, completion_tokens=1)
    events = await _collect(model, GenerationParams(stop=("STOP",)))
    assert events[-1] == ModelFinish(StopReason.STOP_SEQUENCE, prompt_tokens=2, completion_tokens=2)


async def test_fake_chat_model_fails_after_scripted_tokens() -> None:
    model = FakeChatModel(Script(tokens=["a", "b"], error=ModelError("boom"), error_after=1))
    seen: list[ModelEvent] = []
    with pytest.raises(ModelError):
        async for event in model.stream("p", GenerationParams()):
            seen.append(event)
    assert seen == [ModelToken("a")]
    assert model.streams[0].failed


async def test_fake_chat_model_records_cancel_on_aclose() -> None:
    model = FakeChatModel(Script(tokens=list("abcdef"), hold_after=2))
    stream = model.stream("p", GenerationParams())
    first = [await anext(stream), await anext(stream)]
    pending = asyncio.ensure_future(anext(stream))
    await model.holding.wait()
    pending.cancel()
    with pytest.raises(asyncio.CancelledError):
        await pending
    await stream.aclose()  # type: ignore[attr-defined]  # the port promises only iteration
    assert first == [ModelToken("a"), ModelToken("b")]
    assert model.cancelled == 1 and model.streams[0].tokens_sent == 2
