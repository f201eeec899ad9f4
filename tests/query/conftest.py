"""Query-test fixtures: an embedded index holding a tiny corpus, a fake model, the service."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import ClientSession, ClientWebSocketResponse
from aiohttp.test_utils import TestServer

from services.query.answer.parts import QueryDeps, build_query_deps
from services.query.answer.service import AnswerService
from services.query.transports.server import create_app
from shared.adapters.sqlite.store import SqliteVectorIndex
from shared.settings import ModelSettings, QuerySettings, Settings
from tests.fakes.chat_model import FakeChatModel
from tests.fakes.embedder import FakeEmbedder
from tests.query.corpus import corpus_chunks


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(
        data_dir=tmp_path / "data",
        query=QuerySettings(coalesce_ms=0.0, max_concurrent_per_connection=2),
        model=ModelSettings(context_tokens=4096, max_new_tokens=256),
    )


@pytest.fixture
def embedder() -> FakeEmbedder:
    return FakeEmbedder()


@pytest.fixture
def model() -> FakeChatModel:
    return FakeChatModel()


@pytest.fixture
async def index(tmp_path: Path, embedder: FakeEmbedder) -> AsyncIterator[SqliteVectorIndex]:
    store = SqliteVectorIndex(tmp_path / "index.db")
    await store.write(corpus_chunks(embedder))
    yield store
    await store.close()


@pytest.fixture
def deps(
    settings: Settings, embedder: FakeEmbedder, index: SqliteVectorIndex, model: FakeChatModel
) -> QueryDeps:
    return build_query_deps(settings, embedder=embedder, index=index, model=model)


@pytest.fixture
def service(settings: Settings, deps: QueryDeps) -> AnswerService:
    return AnswerService(settings, deps)


@pytest.fixture
async def server(settings: Settings, deps: QueryDeps) -> AsyncIterator[TestServer]:
    """The local query server over the fake corpus and model (modules may override)."""
    server = TestServer(create_app(settings, deps), host="127.0.0.1")
    await server.start_server()
    yield server
    await server.close()


@pytest.fixture
async def ws(server: TestServer) -> AsyncIterator[ClientWebSocketResponse]:
    async with ClientSession() as http, http.ws_connect(server.make_url("/ws")) as socket:
        yield socket
