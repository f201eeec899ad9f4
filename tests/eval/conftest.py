"""The evaluation corpora indexed once per session with the real MiniLM embedder.

Indexing ~360 chunks with the real model takes tens of seconds on a laptop
CPU, so each store is built once (with default settings, through the
indexer's pipeline) and every evaluation test reads it. ``MemoEmbedder``
remembers each text's vector, so indexing the same corpus into OpenSearch
and re-asking the golden questions cost no second embedding pass, and both
stores see bit-identical vectors. Below it, document vectors are cached on
disk (``~/.cache/serverless-rag``, keyed by model and text), so a second
run of the suite on the same machine embeds nothing it has seen.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from cli.eval.corpus import IndexReport, index_folder
from cli.eval.embedding_cache import CachingEmbedder, cached_embedder
from cli.eval.evalsets import all_sets, cache_root
from shared.adapters.local_models.minilm import MiniLMEmbedder
from shared.adapters.sqlite import status as sqlite_status
from shared.adapters.sqlite import store as sqlite_store
from shared.documents import Vector
from shared.ports import Embedder
from shared.settings import Settings

REPO = Path(__file__).resolve().parents[2]
CORPUS = REPO / "samples" / "corpus"
GOLDEN = REPO / "samples" / "golden.jsonl"


class MemoEmbedder:
    """The real embedder, with every vector it computed remembered by text."""

    def __init__(self, inner: Embedder) -> None:
        self._inner = inner
        self._seen: dict[str, Vector] = {}

    @property
    def model_id(self) -> str:
        return self._inner.model_id

    @property
    def dimension(self) -> int:
        return self._inner.dimension

    async def embed_documents(self, texts: Sequence[str]) -> Vector:
        missing = [t for t in dict.fromkeys(texts) if t not in self._seen]
        if missing:
            vectors = await self._inner.embed_documents(missing)
            self._seen.update(zip(missing, vectors, strict=True))
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        return np.stack([self._seen[t] for t in texts])

    async def embed_query(self, text: str) -> Vector:
        key = "\0query\0" + text
        if key not in self._seen:
            self._seen[key] = await self._inner.embed_query(text)
        return self._seen[key]


@dataclass(frozen=True)
class SampleStore:
    settings: Settings
    report: IndexReport


@pytest.fixture(scope="session")
def disk_cached_minilm() -> Iterator[CachingEmbedder]:
    embedder = cached_embedder(MiniLMEmbedder(), cache_root())
    yield embedder
    embedder.close()


@pytest.fixture(scope="session")
def memo_embedder(disk_cached_minilm: CachingEmbedder) -> MemoEmbedder:
    return MemoEmbedder(disk_cached_minilm)


async def build_store(folder: Path, data_dir: Path, embedder: Embedder) -> SampleStore:
    """``folder`` in an embedded store, default settings, through the pipeline."""
    settings = Settings(data_dir=data_dir)
    index = sqlite_store.from_settings(settings)
    status = sqlite_status.from_settings(settings)
    try:
        report = await index_folder(
            folder, settings=settings, index=index, status=status, embedder=embedder
        )
    finally:
        await index.close()
        await status.close()
    assert not report.failed, report.failed
    return SampleStore(settings, report)


@pytest.fixture(scope="session")
def sample_store(
    tmp_path_factory: pytest.TempPathFactory, memo_embedder: MemoEmbedder
) -> SampleStore:
    """samples/corpus in an embedded store, default settings, real embedder."""
    folder = tmp_path_factory.mktemp("sample-store")
    return asyncio.run(build_store(CORPUS, folder, memo_embedder))


@pytest.fixture(scope="session")
def set_stores(
    tmp_path_factory: pytest.TempPathFactory,
    memo_embedder: MemoEmbedder,
    sample_store: SampleStore,
) -> Callable[[str], Awaitable[SampleStore]]:
    """Each evaluation set's corpus in its own store, built on first use
    (awaited: the tests that use them run in an event loop)."""
    built: dict[str, SampleStore] = {"samples": sample_store}
    sets = {s.name: s for s in all_sets()}

    async def get(name: str) -> SampleStore:
        if name not in built:
            folder = sets[name].corpus_dir()
            data_dir = tmp_path_factory.mktemp(f"{name}-store")
            built[name] = await build_store(folder, data_dir, memo_embedder)
        return built[name]

    return get
