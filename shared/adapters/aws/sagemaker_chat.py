"""The ChatModel port on a SageMaker endpoint, streamed with
``InvokeEndpointWithResponseStream`` (aiobotocore).

Two containers are understood, both emitting one JSON object per line:

- Hugging Face TGI: server-sent-event lines ``data:{"token":{"text":…,"special":…},…}``
- DJL LMI: JSON lines ``{"token":{"text":…},…}`` (``data:`` prefixes tolerated too)

A ``PayloadPart`` is an arbitrary slice of that byte stream: a line, even a
UTF-8 character, may be split across parts, so bytes are buffered up to each
newline. Special tokens (``</s>``) are skipped. ``ModelStreamError`` and
``InternalStreamFailure`` (and any other AWS error) become ``ModelError``.

An endpoint that is not in service (still creating after ``pulumi up``,
failed for lack of GPU quota, deleted) or that throttles becomes
``ModelUnavailable``, which the client sees as ``model_unavailable``.

An endpoint that hosts the model as an inference component
(``RAG_MODEL__INFERENCE_COMPONENT_NAME``, scale to zero) refuses every request
while it has no copy, before the stream starts: HTTP 400, ``ValidationError``,
"Inference Component has no capacity to process this request…". That refusal is
what wakes it (the NoCapacityInvocationFailures alarm adds a copy), so it becomes
``ModelWaking`` and the query service asks again until the copy is in service.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from contextlib import aclosing
from dataclasses import dataclass, field
from typing import Any

from shared.adapters.aws.client import LazyAwsClient, error_code
from shared.adapters.aws.remote_chat import RemoteChatModel, stream_payloads
from shared.errors import ConfigurationError, ModelError, ModelUnavailable, ModelWaking
from shared.ports import GenerationParams, ModelEvent, ModelFinish, ModelToken
from shared.protocol import StopReason
from shared.settings import Settings

# TGI/LMI finish reasons -> protocol stop reasons.
_FINISH = {
    "length": StopReason.LENGTH,
    "eos_token": StopReason.END,
    "stop_sequence": StopReason.STOP_SEQUENCE,
    "stop": StopReason.END,
}


def build_request(prompt: str, params: GenerationParams) -> dict[str, Any]:
    """The TGI request body (LMI accepts the same ``inputs`` / ``parameters``)."""
    parameters: dict[str, Any] = {
        "max_new_tokens": params.max_new_tokens,
        "top_p": min(params.top_p, 0.999),  # TGI requires 0 < top_p < 1
        "details": True,  # the last line then carries finish_reason and counts
        "do_sample": params.temperature > 0,
    }
    if params.temperature > 0:  # TGI rejects temperature 0; greedy is do_sample=false
        parameters["temperature"] = params.temperature
    if params.stop:
        parameters["stop"] = list(params.stop)
    if params.repetition_penalty != 1.0:
        parameters["repetition_penalty"] = params.repetition_penalty
    return {"inputs": prompt, "parameters": parameters, "stream": True}


@dataclass
class StreamState:
    """What the final line told us."""

    stop_reason: StopReason = StopReason.END
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    finished: bool = False


@dataclass
class TokenLineParser:
    """Reassembles lines from payload parts and turns them into token texts."""

    state: StreamState = field(default_factory=StreamState)
    _buffer: bytes = b""

    def feed(self, data: bytes) -> Iterator[str]:
        """The complete lines' tokens in order; a bad line raises only after the
        tokens before it (in the same payload part too) were yielded."""
        self._buffer += data
        *lines, self._buffer = self._buffer.split(b"\n")
        for line in lines:
            if (text := self._line(line)) is not None:
                yield text

    def flush(self) -> list[str]:
        """The stream ended: a last line may lack its newline."""
        line, self._buffer = self._buffer, b""
        text = self._line(line)
        return [text] if text is not None else []

    def _line(self, raw: bytes) -> str | None:
        line = raw.strip()
        if line.startswith(b"data:"):
            line = line[5:].strip()
        if not line.startswith(b"{"):
            return None  # blank separators, SSE comments and event names
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            raise ModelError(f"unreadable stream line from the endpoint: {line[:200]!r}") from exc
        if "error" in obj:
            raise ModelError(f"endpoint error: {obj.get('error_type', '')} {obj['error']}")
        self._details(obj.get("details"))
        token = obj.get("token")
        if not isinstance(token, dict) or token.get("special"):
            return None
        text = token.get("text")
        return text if isinstance(text, str) and text else None

    def _details(self, details: Any) -> None:
        if not isinstance(details, dict):
            return
        state = self.state
        state.finished = True
        state.stop_reason = _FINISH.get(str(details.get("finish_reason")), StopReason.END)
        if isinstance(details.get("generated_tokens"), int):
            state.completion_tokens = details["generated_tokens"]
        if isinstance(details.get("input_length"), int):
            state.prompt_tokens = details["input_length"]


class SageMakerChatModel(RemoteChatModel):
    def __init__(self, settings: Settings, client: LazyAwsClient | None = None) -> None:
        model = settings.model
        if not model.endpoint_name:
            raise ConfigurationError(
                "RAG_MODEL__ENDPOINT_NAME is required when RAG_MODEL__BACKEND=sagemaker"
            )
        self._endpoint = model.endpoint_name
        # Scale to zero: requests name the component hosting the model.
        self._target = (
            {"InferenceComponentName": model.inference_component_name}
            if model.inference_component_name
            else {}
        )
        super().__init__(
            model.family,
            client
            or LazyAwsClient.from_settings("sagemaker-runtime", settings, read_timeout_s=120),
        )

    async def _stream(self, prompt: str, params: GenerationParams) -> AsyncIterator[ModelEvent]:
        request = json.dumps(build_request(prompt, params)).encode()
        response = await self._open_stream(
            lambda client: client.invoke_endpoint_with_response_stream(
                EndpointName=self._endpoint,
                Body=request,
                ContentType="application/json",
                **self._target,
            ),
            lambda exc: _model_error(exc, self._endpoint),
        )
        parser = TokenLineParser()
        count = 0
        payloads = stream_payloads(response["Body"], "PayloadPart", "Bytes", _model_error)
        async with aclosing(payloads):  # on cancel: drop the HTTP stream so the endpoint stops
            async for data in payloads:
                for text in parser.feed(data):
                    count += 1
                    yield ModelToken(text)
            for text in parser.flush():
                count += 1
                yield ModelToken(text)
        state = parser.state
        yield ModelFinish(
            state.stop_reason,
            prompt_tokens=state.prompt_tokens,
            completion_tokens=state.completion_tokens or count,
        )


# Codes of an endpoint that can't take requests now (a retry later may work).
_UNAVAILABLE = frozenset(
    {
        "ModelNotReadyException",
        "ServiceUnavailable",
        "ThrottlingException",
        "InternalDependencyException",
    }
)


# How long an inference component takes from zero to answering: AWS documents
# "several minutes"; AWS's scale-to-zero post measured about 5, others up to 9.5
# (alarm ~1 min, instance ~2, model load ~2-6). Used for the client's status.
WAKE_TYPICAL_S = 600


def _model_error(exc: Exception, endpoint: str = "") -> ModelError | ModelUnavailable:
    code = error_code(exc) or type(exc).__name__
    detail = str(exc)
    if code == "ValidationError" and "no capacity" in detail:
        return ModelWaking(
            f"the model on endpoint {endpoint} scaled to zero while idle and is starting "
            "(typically 5-10 minutes)",
            WAKE_TYPICAL_S,
        )
    # InvokeEndpoint answers ValidationError "Endpoint X of account N not found"
    # for an endpoint that does not exist or is not InService yet.
    missing = code == "ValidationError" and "not found" in detail
    if missing or code in _UNAVAILABLE:
        return ModelUnavailable(
            f"the model endpoint {endpoint} is not available ({code}): it may still be "
            "starting (20-30 minutes after `pulumi up`), have failed (GPU quota: run "
            "`rag doctor`), or be throttling; try again later"
        )
    return ModelError(f"SageMaker endpoint stream failed ({code}): {detail}")


def from_settings(settings: Settings) -> SageMakerChatModel:
    return SageMakerChatModel(settings)
