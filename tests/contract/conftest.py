"""One VectorIndex contract, run against every adapter.

Each adapter is described by an ``IndexUnderTest``: how to open (and re-open)
the same index, and how to make recent writes visible. OpenSearch makes
writes searchable only after a refresh interval (AOSS forbids refresh), so the
suite polls with a bound; on a self-managed node the test side may refresh.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, TypeVar

import pytest
from opensearchpy import AsyncOpenSearch

from shared.ports import VectorIndex
from shared.settings import IndexSettings, Settings

T = TypeVar("T")
POLL_LIMIT_S = 15.0


@dataclass
class IndexUnderTest:
    name: str
    open: Callable[[], VectorIndex]
    refresh: Callable[[], Awaitable[None]]
    opened: list[VectorIndex] = field(default_factory=list)

    def new(self) -> VectorIndex:
        index = self.open()
        self.opened.append(index)
        return index

    async def eventually(self, probe: Callable[[], Awaitable[T]], accept: Callable[[T], bool]) -> T:
        """Poll ``probe`` until ``accept`` holds or the bound passes; return the last value."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + POLL_LIMIT_S
        while True:
            await self.refresh()
            value = await probe()
            if accept(value) or loop.time() > deadline:
                return value
            await asyncio.sleep(0.2)


async def _no_refresh() -> None:
    return None


@pytest.fixture
def sqlite_under_test(tmp_path: Path) -> IndexUnderTest:
    from shared.adapters import sqlite_store

    settings = Settings(data_dir=tmp_path / "data")
    return IndexUnderTest("sqlite", lambda: sqlite_store.from_settings(settings), _no_refresh)


@pytest.fixture
async def opensearch_under_test(
    opensearch_url: str,
    opensearch_index_name: str,
    opensearch_knn_engine: Literal["faiss", "nmslib", "lucene"],
    opensearch_client: AsyncOpenSearch,
) -> IndexUnderTest:
    from shared.adapters import opensearch

    settings = Settings(
        index=IndexSettings(
            backend="opensearch",
            opensearch_url=opensearch_url,
            index_name=opensearch_index_name,
            engine=opensearch_knn_engine,
        )
    )

    async def refresh() -> None:
        # Test side only: the product never refreshes (AOSS forbids it).
        if await opensearch_client.indices.exists(index=opensearch_index_name):
            await opensearch_client.indices.refresh(index=opensearch_index_name)

    return IndexUnderTest("opensearch", lambda: opensearch.from_settings(settings), refresh)


@pytest.fixture(params=["sqlite", pytest.param("opensearch", marks=pytest.mark.opensearch)])
def under_test(request: pytest.FixtureRequest) -> IndexUnderTest:
    # Sync on purpose: getfixturevalue of an async fixture needs no running loop.
    subject: IndexUnderTest = request.getfixturevalue(f"{request.param}_under_test")
    return subject


@pytest.fixture(autouse=True)
async def _close_opened(under_test: IndexUnderTest) -> AsyncIterator[None]:
    yield
    for index in under_test.opened:
        await index.close()


@pytest.fixture
def index(under_test: IndexUnderTest) -> VectorIndex:
    return under_test.new()
