"""``rag serve --model-url URL``: one flag from the tiny packaged model to an
OpenAI-compatible server the user runs. Against a real HTTP stand-in (aiohttp,
speaking the chat-completions streaming API and the model list as Ollama,
llama.cpp's server and vLLM do) and a real ``rag serve`` subprocess: the
banner names the model, /health reports it, an answer streams from it; a
wrong URL or an ambiguous model list fails at start with the fix.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from cli.serve.model_url import base_url, pick_model
from shared.errors import ConfigurationError
from tests.local.conftest import LocalServer, free_port, rag

pytestmark = pytest.mark.slow

ANSWER = ["Visitors ", "park ", "in ", "lot ", "B ", "[1]."]
INDEXING_LIMIT_S = 300.0
ANSWER_LIMIT_S = 120.0


@dataclass
class StandIn:
    """An OpenAI-compatible server in a thread of its own (rag serve is another process)."""

    models: list[str]
    port: int = field(default_factory=free_port)
    requests: list[dict[str, Any]] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def list_models(self, _: web.Request) -> web.Response:
        return web.json_response({"object": "list", "data": [{"id": m} for m in self.models]})

    async def complete(self, request: web.Request) -> web.StreamResponse:
        body = await request.json()
        self.requests.append(body)
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        for text in ANSWER:
            chunk = {"choices": [{"index": 0, "delta": {"content": text}, "finish_reason": None}]}
            await response.write(f"data: {json.dumps(chunk)}\n\n".encode())
        last = {
            "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 321, "completion_tokens": len(ANSWER)},
        }
        await response.write(f"data: {json.dumps(last)}\n\ndata: [DONE]\n\n".encode())
        return response

    def serve(self) -> Iterator[StandIn]:
        loop = asyncio.new_event_loop()
        app = web.Application()
        app.router.add_get("/v1/models", self.list_models)
        app.router.add_post("/v1/chat/completions", self.complete)
        runner = web.AppRunner(app)
        loop.run_until_complete(runner.setup())
        loop.run_until_complete(web.TCPSite(runner, "127.0.0.1", self.port).start())
        thread = threading.Thread(target=loop.run_forever, daemon=True)
        thread.start()
        try:
            yield self
        finally:
            loop.call_soon_threadsafe(loop.stop)
            thread.join(timeout=10)
            loop.run_until_complete(runner.cleanup())
            loop.close()


@pytest.fixture
def stand_in() -> Iterator[StandIn]:
    yield from StandIn(["tiny-llama"]).serve()


@pytest.fixture
def two_models() -> Iterator[StandIn]:
    yield from StandIn(["llama3.1:8b", "qwen2.5:7b"]).serve()


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("http://127.0.0.1:11434", "http://127.0.0.1:11434/v1"),  # Ollama's root
        ("http://127.0.0.1:11434/", "http://127.0.0.1:11434/v1"),
        ("http://gpu-box:8000/v1/", "http://gpu-box:8000/v1"),  # vLLM, as documented
        ("https://llm.example/api/openai/v1", "https://llm.example/api/openai/v1"),
    ],
)
def test_a_server_root_gets_v1(given: str, expected: str) -> None:
    assert base_url(given) == expected


@pytest.mark.parametrize("bad", ["127.0.0.1:11434", "ftp://host/v1", "http://"])
def test_a_url_that_is_not_http_is_refused(bad: str) -> None:
    with pytest.raises(ConfigurationError, match="is not an http"):
        base_url(bad)


def test_the_model_is_the_one_asked_or_the_only_one() -> None:
    assert pick_model(["a"], None, "u") == "a"
    assert pick_model(["a", "b"], "b", "u") == "b"
    assert pick_model(None, "b", "u") == "b"  # a server that lists none: trust the name
    with pytest.raises(ConfigurationError, match=r"several models \(a, b\).*--model NAME"):
        pick_model(["a", "b"], None, "u")
    with pytest.raises(ConfigurationError, match=r"no model 'c'; it has: a, b"):
        pick_model(["a", "b"], "c", "u")


async def ask(ws_url: str, question: str) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = []
    async with aiohttp.ClientSession() as http, http.ws_connect(ws_url) as ws:
        await ws.send_json({"action": "ask", "question": question, "request_id": "q1"})
        async with asyncio.timeout(ANSWER_LIMIT_S):
            while not events or events[-1]["event"] != "done":
                events.append(json.loads(await ws.receive_str()))
    return events


async def upload_and_wait(base: str, name: str, text: str) -> None:
    form = aiohttp.FormData()
    form.add_field("file", text.encode(), filename=name)
    page = {"X-Requested-With": "rag-page"}
    async with aiohttp.ClientSession() as http:
        async with http.post(f"{base}/api/documents", data=form, headers=page) as response:
            assert response.status == 202, await response.text()
        deadline = time.monotonic() + INDEXING_LIMIT_S
        while time.monotonic() < deadline:
            async with http.get(f"{base}/api/documents") as response:
                states = {d["doc_id"]: d["state"] for d in (await response.json())["documents"]}
            if states.get(name) == "indexed":
                return
            await asyncio.sleep(0.5)
    pytest.fail(f"{name} was not indexed in {INDEXING_LIMIT_S:g} s: {states}")


async def test_one_flag_answers_from_the_users_server(tmp_path: Path, stand_in: StandIn) -> None:
    server = LocalServer(
        tmp_path / "data", tmp_path / "serve.log", extra_args=["--model-url", stand_in.url]
    )
    server.start()
    try:
        banner = server.log_path.read_text()
        assert f"answers come from tiny-llama (openai at {stand_in.url}/v1)" in banner
        assert "tiny model packaged" not in banner
        async with aiohttp.ClientSession() as http, http.get(f"{server.base_url}/health") as r:
            health = await r.json()
        assert health["model"] == {"backend": "openai", "name": "tiny-llama", "packaged": False}

        await upload_and_wait(server.base_url, "parking.txt", "Visitors park in lot B.\n")
        events = await ask(server.ws_url, "Where do visitors park?")
    finally:
        server.stop()
    tokens = "".join(e["text"] for e in events if e["event"] == "token")
    assert tokens == "".join(ANSWER), events
    assert events[-1]["stop_reason"] == "end" and events[-1]["prompt_tokens"] == 321
    (request,) = stand_in.requests
    assert request["model"] == "tiny-llama" and request["stream"] is True
    prompt = json.dumps(request["messages"])
    assert "Where do visitors park?" in prompt and "lot B" in prompt  # question and source


def test_the_packaged_model_banner_shows_the_step_to_better_answers(tmp_path: Path) -> None:
    server = LocalServer(tmp_path / "data", tmp_path / "serve.log")
    server.start()
    server.stop()
    banner = server.log_path.read_text()
    assert "answers come from SmolLM2-135M-Instruct, the tiny model packaged" in banner
    assert "scripts/run --model-url http://127.0.0.1:11434" in banner


def test_a_wrong_url_fails_at_start_naming_it(tmp_path: Path) -> None:
    closed = f"http://127.0.0.1:{free_port()}"
    result = rag(
        "serve", "--port", str(free_port()), "--data-dir", str(tmp_path), "--model-url", closed
    )
    assert result.returncode == 1
    assert f"cannot reach the model server at {closed}/v1" in result.stderr


def test_several_models_and_no_choice_fails_listing_them(
    tmp_path: Path, two_models: StandIn
) -> None:
    args = ["serve", "--port", str(free_port()), "--data-dir", str(tmp_path)]
    result = rag(*args, "--model-url", two_models.url)
    assert result.returncode == 1
    assert "several models (llama3.1:8b, qwen2.5:7b): pick one with --model NAME" in result.stderr
    unknown = rag(*args, "--model-url", two_models.url, "--model", "mistral")
    assert unknown.returncode == 1 and "no model 'mistral'" in unknown.stderr
