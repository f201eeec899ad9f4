"""SageMaker and Bedrock chat adapters on recorded streams in the real AWS
event-stream framing, parsed by the real aiobotocore client over HTTP."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import pytest

from shared.adapters.aws.bedrock_chat import BedrockChatModel
from shared.adapters.aws.sagemaker_chat import SageMakerChatModel, TokenLineParser
from shared.errors import ModelError
from shared.ports import GenerationParams, ModelEvent, ModelFinish, ModelToken
from shared.protocol import StopReason
from shared.settings import AwsSettings, ModelSettings, Settings
from tests.aws_doubles import (
    RecordedEndpoint,
    bedrock_chunk,
    exception,
    payload_part,
    serve_app,
)

PARAMS = GenerationParams(max_new_tokens=64, temperature=0.6, top_p=0.9, stop=("\nUser:",))


def tgi_line(text: str, special: bool = False, details: dict[str, object] | None = None) -> bytes:
    body: dict[str, object] = {
        "token": {"id": 1, "text": text, "logprob": -0.1, "special": special}
    }
    body["generated_text"] = None
    body["details"] = details
    return b"data:" + json.dumps(body, ensure_ascii=False).encode() + b"\n\n"


def lmi_line(text: str, special: bool = False, details: dict[str, object] | None = None) -> bytes:
    body: dict[str, object] = {
        "token": {"id": 1, "text": text, "log_prob": -0.1, "special": special}
    }
    body["details"] = details
    return json.dumps(body).encode() + b"\n"


@pytest.fixture
def endpoint() -> RecordedEndpoint:
    return RecordedEndpoint()


@pytest.fixture
async def settings(
    endpoint: RecordedEndpoint, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[Settings]:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    async for url in serve_app(endpoint.app()):
        yield Settings(
            aws=AwsSettings(region="us-east-1", endpoint_url=url),
            model=ModelSettings(backend="sagemaker", endpoint_name="llama-2-7b-chat"),
        )


async def collect(stream: AsyncIterator[ModelEvent]) -> tuple[list[str], ModelFinish]:
    texts, finish = [], None
    async for event in stream:
        if isinstance(event, ModelToken):
            texts.append(event.text)
        else:
            finish = event
    assert finish is not None
    return texts, finish


async def test_tgi_stream_with_a_line_split_across_parts(
    settings: Settings, endpoint: RecordedEndpoint
) -> None:
    second = tgi_line(" wörld")
    cut = second.index("ö".encode()) + 1  # split inside the UTF-8 character, too
    endpoint.frames = [
        payload_part(tgi_line("Hello")),
        payload_part(second[:cut]),
        payload_part(second[cut:] + tgi_line("</s>", special=True)),
        payload_part(
            tgi_line("", special=True, details={"finish_reason": "length", "generated_tokens": 3})
        ),
    ]
    model = SageMakerChatModel(settings)
    try:
        texts, finish = await collect(model.stream("<s>[INST] hi [/INST]", PARAMS))
    finally:
        await model.close()
    assert texts == ["Hello", " wörld"]
    assert finish == ModelFinish(StopReason.LENGTH, prompt_tokens=None, completion_tokens=3)
    path, body = endpoint.requests[0]
    assert path == "/endpoints/llama-2-7b-chat/invocations-response-stream"
    assert body == {
        "inputs": "<s>[INST] hi [/INST]",
        "parameters": {
            "max_new_tokens": 64,
            "top_p": 0.9,
            "details": True,
            "do_sample": True,
            "temperature": 0.6,
            "stop": ["\nUser:"],
        },
        "stream": True,
    }


async def test_lmi_json_lines(settings: Settings, endpoint: RecordedEndpoint) -> None:
    stream = lmi_line("A") + lmi_line("B") + lmi_line("", details={"finish_reason": "eos_token"})
    endpoint.frames = [payload_part(stream[:5]), payload_part(stream[5:])]
    model = SageMakerChatModel(settings)
    try:
        texts, finish = await collect(model.stream("p", PARAMS))
    finally:
        await model.close()
    assert texts == ["A", "B"]
    assert finish.stop_reason == StopReason.END
    assert finish.completion_tokens == 2


@pytest.mark.parametrize("failure", ["ModelStreamError", "InternalStreamFailure"])
async def test_stream_errors_become_model_errors(
    settings: Settings, endpoint: RecordedEndpoint, failure: str
) -> None:
    endpoint.frames = [
        payload_part(tgi_line("Partial")),
        exception(failure, {"Message": "the model timed out", "ErrorCode": "StreamBroken"}),
    ]
    model = SageMakerChatModel(settings)
    texts: list[str] = []
    try:
        with pytest.raises(ModelError, match=failure):
            async for event in model.stream("p", PARAMS):
                if isinstance(event, ModelToken):
                    texts.append(event.text)
    finally:
        await model.close()
    assert texts == ["Partial"]


def test_tgi_error_lines_raise() -> None:
    parser = TokenLineParser()
    with pytest.raises(ModelError, match="overloaded"):
        list(parser.feed(b'data:{"error":"overloaded","error_type":"overloaded"}\n'))


def test_tokens_read_with_an_unreadable_line_come_out_before_the_error() -> None:
    """One payload part often holds several lines: the good token before a
    bad line reaches the client (the OpenAI adapter's bug, #24 item 13)."""
    texts = TokenLineParser().feed(b'data:{"token":{"text":"Half"}}\ndata:{oops\n')
    assert next(texts) == "Half"
    with pytest.raises(ModelError, match="unreadable stream line"):
        next(texts)


async def test_bedrock_llama_stream(settings: Settings, endpoint: RecordedEndpoint) -> None:
    endpoint.frames = [
        bedrock_chunk(
            {
                "generation": "Llamas",
                "prompt_token_count": 42,
                "generation_token_count": 1,
                "stop_reason": None,
            }
        ),
        bedrock_chunk(
            {
                "generation": " eat hay.",
                "prompt_token_count": None,
                "generation_token_count": 3,
                "stop_reason": "stop",
            }
        ),
    ]
    model = BedrockChatModel(settings)
    try:
        texts, finish = await collect(model.stream("<s>[INST] q [/INST]", PARAMS))
    finally:
        await model.close()
    assert texts == ["Llamas", " eat hay."]
    assert finish == ModelFinish(StopReason.END, prompt_tokens=42, completion_tokens=3)
    path, body = endpoint.requests[0]
    assert path == "/model/us.meta.llama3-1-8b-instruct-v1:0/invoke-with-response-stream"
    assert body == {
        "prompt": "<s>[INST] q [/INST]",
        "max_gen_len": 64,
        "temperature": 0.6,
        "top_p": 0.9,
    }


async def test_bedrock_stream_exception_is_a_model_error(
    settings: Settings, endpoint: RecordedEndpoint
) -> None:
    endpoint.frames = [
        bedrock_chunk({"generation": "Hi", "stop_reason": None}),
        exception("modelStreamErrorException", {"message": "model crashed"}),
    ]
    model = BedrockChatModel(settings)
    try:
        with pytest.raises(ModelError, match="modelStreamErrorException"):
            await collect(model.stream("p", PARAMS))
    finally:
        await model.close()


async def test_bedrock_applies_stop_sequences_split_across_chunks(
    settings: Settings, endpoint: RecordedEndpoint
) -> None:
    endpoint.frames = [
        bedrock_chunk({"generation": "Fine.\nUs", "stop_reason": None}),
        bedrock_chunk({"generation": "er: next question", "stop_reason": None}),
        bedrock_chunk({"generation": " never shown", "stop_reason": "stop"}),
    ]
    model = BedrockChatModel(settings)
    try:
        texts, finish = await collect(model.stream("p", PARAMS))
    finally:
        await model.close()
    assert "".join(texts) == "Fine."
    assert finish.stop_reason == StopReason.STOP_SEQUENCE


def test_tgi_request_carries_the_repetition_penalty_only_when_set() -> None:
    from dataclasses import replace

    from shared.adapters.aws.sagemaker_chat import build_request

    assert "repetition_penalty" not in build_request("p", PARAMS)["parameters"]
    penalised = build_request("p", replace(PARAMS, repetition_penalty=1.1))
    assert penalised["parameters"]["repetition_penalty"] == 1.1
