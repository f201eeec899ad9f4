"""The ChatModel port on Amazon Bedrock Meta Llama models, streamed with
``InvokeModelWithResponseStream`` (aiobotocore).

Each ``chunk`` event holds one JSON object: ``generation`` (text),
``prompt_token_count`` (first chunk), ``generation_token_count`` and
``stop_reason`` (``stop`` / ``length`` on the last chunk). Bedrock's Llama API
has no stop sequences, so configured ones are applied here: the stream ends
before the stop text. Stream exceptions (``modelStreamErrorException``…)
become ``ModelError``.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import aclosing
from dataclasses import dataclass
from typing import Any

from shared.adapters.aws.client import LazyAwsClient, error_code
from shared.adapters.aws.remote_chat import RemoteChatModel, stream_payloads
from shared.adapters.helpers.stop_sequences import StopMatcher
from shared.errors import ModelError
from shared.ports import GenerationParams, ModelEvent, ModelFinish, ModelToken
from shared.protocol import StopReason
from shared.settings import Settings

MAX_GEN_LEN = 2048  # Bedrock's limit for Meta Llama models
_STOP = {"stop": StopReason.END, "length": StopReason.LENGTH}


def build_request(prompt: str, params: GenerationParams) -> dict[str, Any]:
    return {
        "prompt": prompt,
        "max_gen_len": min(params.max_new_tokens, MAX_GEN_LEN),
        "temperature": params.temperature,
        "top_p": params.top_p,
    }


@dataclass
class ChunkSummary:
    text: str
    stop_reason: StopReason | None
    prompt_tokens: int | None
    generation_tokens: int | None


def parse_chunk(data: bytes) -> ChunkSummary:
    try:
        obj = json.loads(data)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ModelError(f"unreadable Bedrock chunk: {data[:200]!r}") from exc
    reason = obj.get("stop_reason")
    return ChunkSummary(
        text=str(obj.get("generation") or ""),
        stop_reason=_STOP.get(reason, StopReason.END) if reason else None,
        prompt_tokens=_int(obj.get("prompt_token_count")),
        generation_tokens=_int(obj.get("generation_token_count")),
    )


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) else None


class BedrockChatModel(RemoteChatModel):
    def __init__(self, settings: Settings, client: LazyAwsClient | None = None) -> None:
        self._model_id = settings.model.bedrock_model_id
        super().__init__(
            settings.model.family,
            client or LazyAwsClient.from_settings("bedrock-runtime", settings, read_timeout_s=120),
        )

    async def _stream(self, prompt: str, params: GenerationParams) -> AsyncIterator[ModelEvent]:
        request = json.dumps(build_request(prompt, params)).encode()
        response = await self._open_stream(
            lambda client: client.invoke_model_with_response_stream(
                modelId=self._model_id,
                body=request,
                contentType="application/json",
                accept="application/json",
            ),
            _model_error,
        )
        matcher = StopMatcher(params.stop)
        reason, prompt_tokens, generated = StopReason.END, None, None
        payloads = stream_payloads(response["body"], "chunk", "bytes", _model_error)
        async with aclosing(payloads):
            async for data in payloads:
                chunk = parse_chunk(data)
                prompt_tokens = chunk.prompt_tokens or prompt_tokens
                generated = chunk.generation_tokens or generated
                reason = chunk.stop_reason or reason
                if text := matcher.feed(chunk.text):
                    yield ModelToken(text)
                if matcher.matched:
                    reason = StopReason.STOP_SEQUENCE
                    break
            if text := matcher.flush():
                yield ModelToken(text)
        yield ModelFinish(reason, prompt_tokens=prompt_tokens, completion_tokens=generated)


def _model_error(exc: Exception) -> ModelError:
    code = error_code(exc) or type(exc).__name__
    return ModelError(f"Bedrock model stream failed ({code}): {exc}")


def from_settings(settings: Settings) -> BedrockChatModel:
    return BedrockChatModel(settings)
