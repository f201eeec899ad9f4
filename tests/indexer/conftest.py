"""Indexer fixtures: a pipeline over fakes (logic) and settings for real servers.

Every indexer test that asks for ``opensearch_url`` gets the AOSS-like node
(``aoss_node.py``) in front of the real one: indexes refresh at AOSS's classic
interval scaled down by ``TIME_SCALE`` (the settle time is derived from it, so
it scales with it), and a request AOSS refuses fails the test that made it,
even when the product swallowed the error. ``opensearch_client`` (the test's
own view: refresh, inspection) talks to the real node directly.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest
import pytest_asyncio
from opensearchpy import AsyncOpenSearch

from services.indexer.pipeline import IndexerPipeline
from services.indexer.runtime import Runtime, build_pipeline
from shared.ports import BlobStore, StatusStore, VectorIndex
from shared.settings import AOSS_REFRESH_S, Settings
from tests.fakes.embedder import FakeEmbedder
from tests.fakes.status_store import FakeStatusStore
from tests.fakes.vector_index import FakeVectorIndex
from tests.indexer.aoss_node import AossLikeNode

# Test time runs this many times faster than AWS's: refresh and settle alike.
TIME_SCALE = 30.0
# A classic vector collection's 60 s refresh, scaled: what the test indexes do.
AOSS_TEST_REFRESH_S = AOSS_REFRESH_S["classic"] / TIME_SCALE
_NODES: dict[str, AossLikeNode] = {}


@pytest.fixture(autouse=True)
def aws_test_credentials(fake_aws_credentials: None) -> None:
    """Every indexer test runs with them (see tests/servers.py)."""


@pytest.fixture(scope="session")
def opensearch_url(opensearch_url: str) -> Iterator[str]:
    """The AOSS-like node in front of the real one (the product's URL)."""
    node = AossLikeNode(opensearch_url, AOSS_TEST_REFRESH_S)
    node.start()
    _NODES[node.url] = node
    yield node.url
    node.stop()


@pytest.fixture
def aoss_node(opensearch_url: str) -> AossLikeNode:
    return _NODES[opensearch_url]


@pytest_asyncio.fixture
async def opensearch_client(aoss_node: AossLikeNode) -> AsyncIterator[AsyncOpenSearch]:
    """The test's own client, on the real node (it may refresh; the product never does)."""
    client = AsyncOpenSearch(hosts=[aoss_node.upstream], timeout=30)
    try:
        yield client
    finally:
        await client.close()


@pytest.fixture(autouse=True)
def _nothing_aoss_refuses(request: pytest.FixtureRequest) -> Iterator[None]:
    """A request the AOSS-like node refused fails the test (unless it expects one)."""
    if "opensearch_url" not in request.fixturenames:
        yield
        return
    node = _NODES.get(request.getfixturevalue("opensearch_url"))
    if node is None:
        yield
        return
    node.refused.clear()
    yield
    if request.node.get_closest_marker("aoss_refusals") is None:
        assert node.refused == [], f"requests AOSS refuses: {node.refused}"


def make_pipeline(
    settings: Settings,
    index: VectorIndex,
    status: StatusStore,
    embedder: FakeEmbedder | None = None,
    blobs: BlobStore | None = None,
) -> IndexerPipeline:
    return build_pipeline(
        settings,
        index=index,
        status=status,
        embedder=embedder or FakeEmbedder(dimension=16),
        blobs=blobs,
    )


@pytest.fixture
def settings() -> Settings:
    return Settings(_env_file=None)


@pytest.fixture
def fake_index() -> FakeVectorIndex:
    return FakeVectorIndex()


@pytest.fixture
def fake_status() -> FakeStatusStore:
    return FakeStatusStore()


@pytest.fixture
def embedder() -> FakeEmbedder:
    return FakeEmbedder(dimension=16)


@pytest.fixture
def pipeline(
    settings: Settings,
    fake_index: FakeVectorIndex,
    fake_status: FakeStatusStore,
    embedder: FakeEmbedder,
) -> IndexerPipeline:
    return make_pipeline(settings, fake_index, fake_status, embedder)


@pytest.fixture
def runtime(settings: Settings, pipeline: IndexerPipeline) -> Runtime:
    return Runtime(settings, pipeline)


@pytest.fixture
def settings_small(fake_index: FakeVectorIndex, fake_status: FakeStatusStore) -> IndexerPipeline:
    """A pipeline whose document size limit is 100 bytes."""
    small = Settings(_env_file=None, ingest={"max_document_bytes": 100})
    return make_pipeline(small, fake_index, fake_status)
