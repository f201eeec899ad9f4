"""Query-test fixtures: an embedded index holding a tiny corpus, a fake model, the service."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from services.query.conversation import InMemoryConversationStore
from services.query.core import AnswerService, QueryDeps
from shared.adapters.sqlite_store import SqliteVectorIndex
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
def deps(embedder: FakeEmbedder, index: SqliteVectorIndex, model: FakeChatModel) -> QueryDeps:
    return QueryDeps(
        embedder=embedder, index=index, model=model, conversations=InMemoryConversationStore()
    )


@pytest.fixture
def service(settings: Settings, deps: QueryDeps) -> AnswerService:
    return AnswerService(settings, deps)
