"""The OpenAI-compatible chat adapter against a REAL server: llama.cpp's own
HTTP server (from xllamacpp) running the packaged SmolLM2 GGUF, with an API
key. What llama.cpp can't show (it serves any model name; it never breaks a
stream) runs against a small aiohttp server replaying Ollama's recorded
404 body and a stream cut mid-answer."""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from aiohttp import web

from services.query.answer.parts import build_query_deps
from services.query.answer.prompts import messages_prompt
from services.query.answer.service import AnswerService
from services.query.frontdoor import new_job
from shared.access import Principal
from shared.adapters.local_models.llamacpp import packaged_model_path
from shared.adapters.openai_compatible.chat import (
    OpenAIChatModel,
    SseParser,
    from_settings,
    prompt_messages,
    request_body,
)
from shared.errors import ConfigurationError, ModelError, ModelUnavailable
from shared.ports import GenerationParams, ModelEvent, ModelFinish, ModelToken
from shared.protocol import (
    AskAction,
    DoneEvent,
    ErrorEvent,
    SourcesEvent,
    StopReason,
    TokenEvent,
)
from shared.settings import ModelSettings, Settings
from tests.fakes.embedder import FakeEmbedder
from tests.fakes.sink import RecordingSink
from tests.fakes.vector_index import FakeVectorIndex
from tests.query.corpus import corpus_chunks
from tests.servers import unique_name

KEY = "test-key-123"
PROMPT = messages_prompt("You are a helpful assistant.", [], "Write a story about a lighthouse.")


@pytest.fixture(scope="module")
def llama_server() -> Iterator[str]:
    """llama.cpp's OpenAI-compatible server on a free port, wanting ``KEY``."""
    import xllamacpp

    params = xllamacpp.CommonParams()
    params.model.path = str(packaged_model_path())
    params.n_ctx = 2048
    params.ui = False
    params.warmup = False
    params.verbosity = -1
    params.cpuparams.n_threads = 1
    params.model_alias = {"smollm2"}
    params.api_keys = [KEY]
    server = xllamacpp.Server(params)
    yield f"{server.listening_address}/v1"
    del server


async def collect(model: OpenAIChatModel, max_new_tokens: int = 8) -> list[ModelEvent]:
    try:
        return [
            e async for e in model.stream(PROMPT, GenerationParams(max_new_tokens=max_new_tokens))
        ]
    finally:
        await model.close()


async def test_streams_tokens_then_one_finish_from_llama_cpp(llama_server: str) -> None:
    events = await collect(OpenAIChatModel(llama_server, "smollm2", KEY), max_new_tokens=8)
    *tokens, finish = events
    assert tokens and all(isinstance(t, ModelToken) and t.text for t in tokens)
    assert isinstance(finish, ModelFinish) and finish.stop_reason is StopReason.LENGTH
    assert finish.completion_tokens == 8
    assert finish.prompt_tokens is not None and finish.prompt_tokens > 10


async def test_a_missing_key_says_how_to_set_it(llama_server: str) -> None:
    with pytest.raises(ModelError, match=r"401.*set RAG_MODEL__OPENAI_API_KEY"):
        await collect(OpenAIChatModel(llama_server, "smollm2"))


async def test_a_wrong_key_says_which_setting_to_check(llama_server: str) -> None:
    with pytest.raises(ModelError, match=r"401.*check RAG_MODEL__OPENAI_API_KEY"):
        await collect(OpenAIChatModel(llama_server, "smollm2", "wrong"))


async def test_an_unreachable_server_is_named() -> None:
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = f"http://127.0.0.1:{port}/v1"
    with pytest.raises(ModelError, match=rf"cannot reach the model server at {url}/chat"):
        await collect(OpenAIChatModel(url, "smollm2"))


async def test_closing_the_stream_early_frees_the_server(llama_server: str) -> None:
    model = OpenAIChatModel(llama_server, "smollm2", KEY)
    stream = model.stream(PROMPT, GenerationParams(max_new_tokens=400))
    first = await anext(stream)
    assert isinstance(first, ModelToken)
    await stream.aclose()  # type: ignore[attr-defined]
    events = await collect(model, max_new_tokens=3)  # the server still answers at once
    assert isinstance(events[-1], ModelFinish)


async def test_the_answer_pipeline_end_to_end_on_llama_cpp(llama_server: str) -> None:
    """Retrieval, the messages prompt, the real server, attribution, done."""
    embedder = FakeEmbedder()
    index = FakeVectorIndex()
    await index.write(corpus_chunks(embedder))
    model = OpenAIChatModel(llama_server, "smollm2", KEY)
    settings = Settings(model=ModelSettings(max_new_tokens=24))
    service = AnswerService(
        settings, build_query_deps(settings, embedder=embedder, index=index, model=model)
    )
    sink = RecordingSink()
    ask = AskAction(action="ask", question="What do llamas eat?")
    try:
        await service.answer(new_job(ask, Principal.single_user()), sink, asyncio.Event())
    finally:
        await model.close()
    assert sink.kinds()[-2:] == ["sources", "done"]
    assert "".join(e.text for e in sink.events if isinstance(e, TokenEvent)).strip()
    (sources,) = sink.of("sources")
    assert isinstance(sources, SourcesEvent) and sources.sentences is not None
    (done,) = sink.of("done")
    assert isinstance(done, DoneEvent) and 1 <= done.completion_tokens <= 24


# ---- what llama.cpp cannot show: a replayed Ollama 404, a broken stream -----------

OLLAMA_404 = {
    "error": {
        "message": 'model "llama9" not found, try pulling it first',
        "type": "api_error",
        "param": None,
        "code": None,
    }
}
CHUNK = {"choices": [{"index": 0, "delta": {"content": "Hello"}, "finish_reason": None}]}


def delta(text: str) -> dict[str, Any]:
    return {"choices": [{"index": 0, "delta": {"content": text}, "finish_reason": None}]}


@pytest.fixture
async def stand_in() -> AsyncIterator[str]:
    async def chat(request: web.Request) -> web.StreamResponse:
        body = await request.json()
        if body["model"] == "llama9":
            return web.json_response(OLLAMA_404, status=404)
        if body["model"] == "busy":  # vLLM/hosted APIs when overloaded or rate limited
            return web.json_response(
                {"error": {"message": "Rate limit reached", "type": "requests"}},
                status=429,
                headers={"Retry-After": "7"},
            )
        if body["model"] == "garbled":
            # One write, so one network read: a good delta, then a malformed line.
            response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
            await response.prepare(request)
            await response.write(f"data: {json.dumps(delta('Half '))}\n\n".encode())
            await response.drain()
            await asyncio.sleep(0.05)
            await response.write(
                f"data: {json.dumps(delta('an answer'))}\n\ndata: {{oops\n\n".encode()
            )
            return response
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        for _ in range(3):
            await response.write(f"data: {json.dumps(CHUNK)}\n\n".encode())
        await response.write(b'data: {"choi')  # then the connection drops
        assert request.transport is not None
        request.transport.close()
        return response

    async def models(request: web.Request) -> web.Response:
        return web.json_response({"object": "list", "data": [{"id": "llama2"}, {"id": "qwen2"}]})

    app = web.Application()
    app.router.add_post("/v1/chat/completions", chat)
    app.router.add_get("/v1/models", models)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    yield f"http://127.0.0.1:{port}/v1"
    await runner.cleanup()


async def test_an_unknown_model_lists_the_servers_models(stand_in: str) -> None:
    with pytest.raises(ModelError, match=r"404 for model 'llama9'.*has: llama2, qwen2"):
        await collect(OpenAIChatModel(stand_in, "llama9"))


async def test_a_broken_stream_fails_after_the_tokens_already_sent(stand_in: str) -> None:
    model = OpenAIChatModel(stand_in, "llama2")
    got: list[ModelEvent] = []
    with pytest.raises(ModelError, match=r"after 3 tokens"):
        async for event in model.stream(PROMPT, GenerationParams()):
            got.append(event)
    await model.close()
    assert got == [ModelToken("Hello")] * 3


async def test_a_broken_stream_ends_the_answer_with_model_failed(stand_in: str) -> None:
    embedder, index = FakeEmbedder(), FakeVectorIndex()
    await index.write(corpus_chunks(embedder))  # an empty index answers "no documents"
    model = OpenAIChatModel(stand_in, "llama2")
    settings = Settings()
    service = AnswerService(
        settings, build_query_deps(settings, embedder=embedder, index=index, model=model)
    )
    sink = RecordingSink()
    await service.answer(
        new_job(AskAction(action="ask", question="hi"), Principal.single_user()),
        sink,
        asyncio.Event(),
    )
    await model.close()
    assert sink.kinds()[-2:] == ["error", "done"]
    assert "".join(e.text for e in sink.events if isinstance(e, TokenEvent)) == "Hello" * 3
    error = sink.events[-2]
    assert isinstance(error, ErrorEvent) and error.code == "model_failed"


async def answer_from(stand_in: str, model_name: str) -> RecordingSink:
    embedder, index = FakeEmbedder(), FakeVectorIndex()
    await index.write(corpus_chunks(embedder))  # an empty index answers "no documents"
    model = OpenAIChatModel(stand_in, model_name)
    settings = Settings()
    service = AnswerService(
        settings, build_query_deps(settings, embedder=embedder, index=index, model=model)
    )
    sink = RecordingSink()
    await service.answer(
        new_job(AskAction(action="ask", question="hi"), Principal.single_user()),
        sink,
        asyncio.Event(),
    )
    await model.close()
    return sink


async def test_a_good_delta_read_with_a_malformed_line_still_reaches_the_client(
    stand_in: str,
) -> None:
    """Issue #24 item 13: the client got "Half " of "Half an answer"."""
    sink = await answer_from(stand_in, "garbled")
    assert "".join(e.text for e in sink.events if isinstance(e, TokenEvent)) == "Half an answer"
    assert sink.kinds()[-2:] == ["error", "done"]
    error = sink.events[-2]
    assert isinstance(error, ErrorEvent) and error.code == "model_failed"
    assert "unreadable line" in error.message


async def test_a_throttled_model_is_unavailable_try_again(stand_in: str) -> None:
    """HTTP 429 is "try again" (model_unavailable), as docs/protocol.md says."""
    model = OpenAIChatModel(stand_in, "busy")
    with pytest.raises(ModelUnavailable, match=r"429.*Rate limit reached.*try again in 7 s"):
        await collect(model)
    sink = await answer_from(stand_in, "busy")
    error = sink.events[-2]
    assert isinstance(error, ErrorEvent) and error.code == "model_unavailable"


# ---- pure parts ------------------------------------------------------------------------


def test_sse_parser_handles_split_lines_comments_usage_and_done() -> None:
    parser = SseParser()
    stream = (
        b": keep-alive\n\ndata: "
        + json.dumps(CHUNK).encode()
        + b'\n\ndata: {"choices":[{"delta":{},"finish_reason":"length"}],'
        b'"usage":{"prompt_tokens":12,"completion_tokens":1}}\n\ndata: [DONE]\n\n'
    )
    texts = [t for i in range(0, len(stream), 7) for t in parser.feed(stream[i : i + 7])]
    assert texts == ["Hello"]
    assert (parser.stop_reason, parser.prompt_tokens, parser.completion_tokens, parser.done) == (
        StopReason.LENGTH,
        12,
        1,
        True,
    )


def test_an_error_chunk_mid_stream_is_a_model_error() -> None:
    with pytest.raises(ModelError, match="out of memory"):
        list(SseParser().feed(b'data: {"error": {"message": "out of memory"}}\n'))


def test_the_texts_before_an_unreadable_line_come_out_before_the_error() -> None:
    texts = SseParser().feed(b"data: " + json.dumps(CHUNK).encode() + b"\n\ndata: {oops\n")
    assert next(texts) == "Hello"
    with pytest.raises(ModelError, match="unreadable line"):
        next(texts)


def test_messages_prompt_round_trips_and_other_prompts_become_one_user_turn() -> None:
    assert prompt_messages(PROMPT) == [
        {"role": "system", "content": "You are a helpful assistant."},
        {"role": "user", "content": "Write a story about a lighthouse."},
    ]
    assert prompt_messages("<s>[INST] hi [/INST]") == [
        {"role": "user", "content": "<s>[INST] hi [/INST]"}
    ]


def test_request_body_caps_stop_sequences_and_asks_for_usage() -> None:
    body: dict[str, Any] = request_body(
        "m", PROMPT, GenerationParams(max_new_tokens=5, stop=tuple("abcdef"))
    )
    assert body["stop"] == ["a", "b", "c", "d"] and body["max_tokens"] == 5
    assert body["stream"] is True and body["stream_options"] == {"include_usage": True}


def test_repetition_penalties_are_sent_only_when_set() -> None:
    params = GenerationParams(max_new_tokens=5)
    body: dict[str, Any] = request_body("m", PROMPT, params)
    assert "frequency_penalty" not in body and "presence_penalty" not in body
    body = request_body("m", PROMPT, params, {"frequency_penalty": 0.5})
    assert body["frequency_penalty"] == 0.5 and "presence_penalty" not in body


async def test_settings_penalties_reach_a_real_server() -> None:
    """GIVEN penalties in the settings WHEN the adapter streams THEN the server's
    request body carries them (and none without the settings)."""
    bodies: list[dict[str, Any]] = []

    async def chat(request: web.Request) -> web.StreamResponse:
        bodies.append(await request.json())
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        done = {"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}
        await response.write(f"data: {json.dumps(CHUNK)}\n\ndata: {json.dumps(done)}\n\n".encode())
        await response.write(b"data: [DONE]\n\n")
        return response

    app = web.Application()
    app.router.add_post("/v1/chat/completions", chat)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    url = f"http://127.0.0.1:{port}/v1"
    try:
        for penalties in ({"openai_frequency_penalty": 0.3, "openai_presence_penalty": 0.2}, {}):
            model = from_settings(
                Settings(
                    model=ModelSettings(
                        backend="openai", openai_base_url=url, openai_model="m", **penalties
                    )
                )
            )
            await collect(model)
            await model.close()
    finally:
        await runner.cleanup()
    assert (bodies[0]["frequency_penalty"], bodies[0]["presence_penalty"]) == (0.3, 0.2)
    assert "frequency_penalty" not in bodies[1] and "presence_penalty" not in bodies[1]


def test_settings_are_required() -> None:
    with pytest.raises(ConfigurationError, match="RAG_MODEL__OPENAI_BASE_URL"):
        from_settings(Settings(model=ModelSettings(backend="openai")))
    model = from_settings(
        Settings(
            model=ModelSettings(
                backend="openai", openai_base_url="http://h:1/v1/", openai_model="m"
            )
        )
    )
    assert model.url == "http://h:1/v1/chat/completions" and model.family == "messages"


# ---- the key from Secrets Manager (how a deployed stack passes it) -----------


async def put_secret(endpoint_url: str, value: str) -> str:
    from aiobotocore.session import get_session

    async with get_session().create_client(
        "secretsmanager", endpoint_url=endpoint_url, region_name="us-east-1"
    ) as client:
        created = await client.create_secret(Name=unique_name("openai-key"), SecretString=value)
    return str(created["ARN"])


def secret_settings(base_url: str, endpoint_url: str, arn: str) -> Settings:
    return Settings(
        aws={"region": "us-east-1", "endpoint_url": endpoint_url},  # type: ignore[arg-type]
        model=ModelSettings(
            backend="openai",
            openai_base_url=base_url,
            openai_model="smollm2",
            openai_api_key_secret_arn=arn,
        ),
    )


async def test_the_key_is_read_from_secrets_manager_on_first_use(
    llama_server: str, sqs_endpoint_url: str, fake_aws_credentials: None
) -> None:
    # GIVEN the key in a real Secrets Manager look-alike (moto), the server wanting it
    arn = await put_secret(sqs_endpoint_url, KEY)
    model = from_settings(secret_settings(llama_server, sqs_endpoint_url, arn))
    # WHEN the model answers, THEN the key went with the request (no 401)
    *tokens, finish = await collect(model, max_new_tokens=4)
    assert tokens and isinstance(finish, ModelFinish)


async def test_a_wrong_key_in_the_secret_says_to_set_the_stack_secret(
    llama_server: str, sqs_endpoint_url: str, fake_aws_credentials: None
) -> None:
    arn = await put_secret(sqs_endpoint_url, "wrong")
    model = from_settings(secret_settings(llama_server, sqs_endpoint_url, arn))
    with pytest.raises(ModelError, match=r"401.*pulumi config set --secret rag:openaiApiKey"):
        await collect(model)


async def test_a_missing_secret_is_a_model_error_naming_it(
    llama_server: str, sqs_endpoint_url: str, fake_aws_credentials: None
) -> None:
    arn = "arn:aws:secretsmanager:us-east-1:123456789012:secret:missing-AbCdEf"
    model = from_settings(secret_settings(llama_server, sqs_endpoint_url, arn))
    with pytest.raises(ModelError, match=r"Secrets Manager \(arn:.*missing-AbCdEf\).*Resource"):
        await collect(model)
