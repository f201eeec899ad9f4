"""Indexer fixtures: a pipeline over fakes (logic) and settings for real servers."""

from __future__ import annotations

import pytest

from services.indexer.pipeline import IndexerPipeline
from services.indexer.runtime import Runtime, build_pipeline
from shared.ports import BlobStore, StatusStore, VectorIndex
from shared.settings import Settings
from tests.fakes.embedder import FakeEmbedder
from tests.fakes.status_store import FakeStatusStore
from tests.fakes.vector_index import FakeVectorIndex


@pytest.fixture(autouse=True)
def aws_test_credentials(fake_aws_credentials: None) -> None:
    """Every indexer test runs with them (see tests/servers.py)."""


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
