"""End to end with the real local model (SmolLM2 via llama.cpp) and the real
MiniLM embedder behind the local server: the protocol holds with real tokens."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import pytest
from aiohttp import ClientSession
from aiohttp.test_utils import TestServer

from services.query.answer.parts import build_query_deps
from services.query.transports.server import create_app
from shared.adapters.sqlite.store import SqliteVectorIndex
from shared.documents import EmbeddedChunk
from shared.factory import build_chat_model, build_embedder
from shared.protocol import ServerEvent, parse_server_event
from shared.settings import ModelSettings, Settings
from tests.query.corpus import unembedded_chunks

pytestmark = pytest.mark.slow


@pytest.fixture
async def real_server(settings: Settings) -> AsyncIterator[TestServer]:
    settings = settings.model_copy(
        update={"model": ModelSettings(max_new_tokens=24, temperature=0.0, context_tokens=2048)}
    )
    embedder = build_embedder(settings)
    index = SqliteVectorIndex(settings.data_dir / "real.db")
    chunks = unembedded_chunks()
    vectors = await embedder.embed_documents([chunk.text for chunk in chunks])
    await index.write([EmbeddedChunk(c, v) for c, v in zip(chunks, vectors, strict=True)])
    model = build_chat_model(settings)
    deps = build_query_deps(settings, embedder=embedder, index=index, model=model)
    server = TestServer(create_app(settings, deps), host="127.0.0.1")
    await server.start_server()
    yield server
    await server.close()
    await index.close()


async def test_real_model_answer_over_the_websocket(real_server: TestServer) -> None:
    async with ClientSession() as http, http.ws_connect(real_server.make_url("/ws")) as ws:
        await ws.send_json({"action": "ask", "question": "What do llamas eat?"})
        events: list[ServerEvent] = []
        while not events or events[-1].event != "done":
            events.append(parse_server_event(await ws.receive_str(timeout=120)))
    kinds = [event.event for event in events]
    assert kinds[0] == "accepted" and kinds[-2:] == ["sources", "done"]
    tokens = [json.loads(e.model_dump_json()) for e in events if e.event == "token"]
    assert tokens and "".join(t["text"] for t in tokens).strip()
    sources = events[-2]
    assert sources.event == "sources"
    # real MiniLM ranks the llama chunk first (prompt number 1); cited sources are
    # listed first, and which ones the tiny model's sentences back varies
    assert (
        min(sources.citations, key=lambda c: (c.number is None, c.number or 0)).doc_id == "llamas"
    )
    done = events[-1]
    assert done.event == "done" and done.completion_tokens > 0
