"""The local chat model against the real SmolLM2 GGUF through llama.cpp."""

from __future__ import annotations

import asyncio

import pytest

from shared.adapters.local_models.llamacpp import (
    LlamaCppChatModel,
    from_settings,
    packaged_model_path,
    parse_chunk,
)
from shared.errors import ConfigurationError, ModelError
from shared.ports import GenerationParams, ModelEvent, ModelFinish, ModelToken
from shared.protocol import StopReason
from shared.settings import ModelSettings, Settings

PROMPT = (
    "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n"
    "<|im_start|>user\nWrite a long story about a lighthouse keeper.<|im_end|>\n"
    "<|im_start|>assistant\n"
)


@pytest.fixture(scope="module")
def model() -> LlamaCppChatModel:
    return from_settings(Settings())


async def _collect(model: LlamaCppChatModel, params: GenerationParams) -> list[ModelEvent]:
    return [event async for event in model.stream(PROMPT, params)]


async def test_streams_tokens_then_one_finish_with_counts(model: LlamaCppChatModel) -> None:
    events = await _collect(model, GenerationParams(max_new_tokens=12))
    tokens = [e for e in events[:-1] if isinstance(e, ModelToken)]
    finish = events[-1]
    assert len(tokens) == len(events) - 1 >= 3
    assert "".join(t.text for t in tokens).strip()
    assert isinstance(finish, ModelFinish)
    assert finish.stop_reason is StopReason.LENGTH
    assert finish.completion_tokens == 12
    assert finish.prompt_tokens is not None and finish.prompt_tokens > 20
    assert model.family == "chatml"


async def test_max_new_tokens_one(model: LlamaCppChatModel) -> None:
    events = await _collect(model, GenerationParams(max_new_tokens=1))
    assert len(events) == 2
    finish = events[-1]
    assert isinstance(finish, ModelFinish)
    assert finish == ModelFinish(
        StopReason.LENGTH, prompt_tokens=finish.prompt_tokens, completion_tokens=1
    )


async def test_natural_end_of_turn_is_end(model: LlamaCppChatModel) -> None:
    prompt = (
        "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging "
        "Face<|im_end|>\n<|im_start|>user\nWhat is 2+2?<|im_end|>\n<|im_start|>assistant\n"
    )
    greedy = GenerationParams(max_new_tokens=64, temperature=0.0)
    events = [e async for e in model.stream(prompt, greedy)]
    finish = events[-1]
    assert isinstance(finish, ModelFinish) and finish.stop_reason is StopReason.END
    text = "".join(e.text for e in events if isinstance(e, ModelToken))
    assert "<|im_end|>" not in text


async def test_stop_sequence_ends_the_answer_before_it(model: LlamaCppChatModel) -> None:
    # Greedy decoding makes the first words known: find one, then stop on it.
    greedy = GenerationParams(max_new_tokens=8, temperature=0.0)
    first = await _collect(model, greedy)
    text = "".join(e.text for e in first if isinstance(e, ModelToken))
    stop = text.split()[2]
    events = await _collect(
        model, GenerationParams(max_new_tokens=8, temperature=0.0, stop=(stop,))
    )
    shown = "".join(e.text for e in events if isinstance(e, ModelToken))
    assert isinstance(events[-1], ModelFinish)
    assert events[-1].stop_reason is StopReason.STOP_SEQUENCE
    assert stop not in shown and text.startswith(shown)


async def test_aclose_stops_generation_within_one_token(model: LlamaCppChatModel) -> None:
    stream = model.stream(PROMPT, GenerationParams(max_new_tokens=400))
    received = 0
    async for event in stream:
        assert isinstance(event, ModelToken)
        received += 1
        if received == 3:
            break
    await stream.aclose()  # type: ignore[attr-defined]
    stats = model.history[-1]
    assert stats.cancelled and stats.finished_at is not None
    assert received <= stats.completion_tokens <= received + 1


async def test_cancelling_the_consuming_task_stops_generation(model: LlamaCppChatModel) -> None:
    first_token = asyncio.Event()

    async def consume() -> None:
        async for _ in model.stream(PROMPT, GenerationParams(max_new_tokens=400)):
            first_token.set()

    task = asyncio.create_task(consume())
    await first_token.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    stats = model.history[-1]
    assert stats.cancelled and stats.finished_at is not None
    assert stats.completion_tokens < 400


async def test_concurrent_streams_all_complete(model: LlamaCppChatModel) -> None:
    # Two llama.cpp slots decode together; the third waits for a free one.
    params = GenerationParams(max_new_tokens=6)
    results = await asyncio.gather(*(_collect(model, params) for _ in range(3)))
    for events in results:
        finish = events[-1]
        assert isinstance(finish, ModelFinish)
        assert finish == ModelFinish(
            StopReason.LENGTH, prompt_tokens=finish.prompt_tokens, completion_tokens=6
        )
        assert sum(isinstance(e, ModelToken) for e in events) >= 3


def test_error_chunks_are_model_errors() -> None:
    failed = parse_chunk({"error": {"code": 400, "message": "bad request", "type": "x"}})
    assert getattr(failed, "message", None) == "bad request"
    chunk = parse_chunk({"choices": [{"text": "hi", "finish_reason": None}]})
    assert getattr(chunk, "text", None) == "hi"


async def test_server_side_errors_surface_as_model_error(model: LlamaCppChatModel) -> None:
    with pytest.raises(ModelError):
        await _collect(model, GenerationParams(max_new_tokens=8, top_p=float("nan")))


def test_missing_model_file_is_a_configuration_error() -> None:
    settings = Settings(model=ModelSettings(local_model_path="/nonexistent/model.gguf"))
    model = from_settings(settings)
    assert model.family == "llama2"  # a custom GGUF uses the configured family
    with pytest.raises(ConfigurationError):
        asyncio.run(model.load())


def test_packaged_model_is_found_without_a_hub() -> None:
    assert packaged_model_path().stat().st_size > 50_000_000
