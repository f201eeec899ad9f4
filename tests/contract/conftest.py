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
from typing import TypeVar

import pytest

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


def _sqlite(tmp_path: Path) -> IndexUnderTest:
    from shared.adapters import sqlite_store

    settings = Settings(data_dir=tmp_path / "data")
    return IndexUnderTest("sqlite", lambda: sqlite_store.from_settings(settings), _no_refresh)


async def _opensearch(request: pytest.FixtureRequest) -> AsyncIterator[IndexUnderTest]:
    from opensearchpy import AsyncOpenSearch

    from shared.adapters import opensearch

    url = request.getfixturevalue("opensearch_url")
    name = request.getfixturevalue("opensearch_index_name")
    engine = request.getfixturevalue("opensearch_knn_engine")
    admin: AsyncOpenSearch = request.getfixturevalue("opensearch_client")
    settings = Settings(
        index=IndexSettings(
            backend="opensearch", opensearch_url=url, index_name=name, engine=engine
        )
    )

    async def refresh() -> None:
        # Test side only: the product never refreshes (AOSS forbids it).
        if await admin.indices.exists(index=name):
            await admin.indices.refresh(index=name)

    yield IndexUnderTest("opensearch", lambda: opensearch.from_settings(settings), refresh)


@pytest.fixture(params=["sqlite", pytest.param("opensearch", marks=pytest.mark.opensearch)])
async def under_test(
    request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[IndexUnderTest]:
    if request.param == "sqlite":
        subject = _sqlite(tmp_path)
        yield subject
    else:
        gen = _opensearch(request)
        subject = await gen.__anext__()
        try:
            yield subject
        finally:
            await gen.aclose()
    for index in subject.opened:
        await index.close()


@pytest.fixture
def index(under_test: IndexUnderTest) -> VectorIndex:
    return under_test.new()
