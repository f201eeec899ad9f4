"""A change of chunking, context header or embedder re-indexes every document
to a new generation, and leaves no chunk of the old one behind.

Runs the indexer pipeline over the real embedded store (SQLite) with the fake
embedder: the generation is what makes a re-sent document a no-op, so a
settings change must change it, or documents would keep vectors made under
the old settings forever.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from services.indexer.disposition import Verdict
from shared.access import Access
from shared.adapters.sqlite import status as sqlite_status
from shared.adapters.sqlite import store as sqlite_store
from shared.settings import ChunkingSettings, Settings
from tests.fakes.embedder import FakeEmbedder
from tests.indexer.conftest import make_pipeline
from tests.indexer.events import index_body, paragraphs, queue_message

DOCS = {
    "guide/install.md": "# Install\n\n" + paragraphs("install", 6),
    "guide/usage.md": "# Usage\n\n## Options\n\n" + paragraphs("options", 5),
    "notes.txt": paragraphs("notes", 3),
}


def bodies() -> list[str]:
    return [
        index_body(doc_id, text, content_type="text/markdown" if doc_id.endswith(".md") else None)
        for doc_id, text in DOCS.items()
    ]


async def index_all(settings: Settings, embedder: FakeEmbedder) -> dict[str, tuple[Verdict, str]]:
    index, status = sqlite_store.from_settings(settings), sqlite_status.from_settings(settings)
    pipeline = make_pipeline(settings, index, status, embedder)
    try:
        await pipeline.start()
        outcomes = [await pipeline.process(queue_message(body)) for body in bodies()]
        return {o.doc_id or "": (o.verdict, o.generation or "") for o in outcomes}
    finally:
        await index.close()
        await status.close()


async def stored_generations(settings: Settings) -> dict[str, dict[str, int]]:
    index = sqlite_store.from_settings(settings)
    try:
        return {doc_id: await index.generations(doc_id) for doc_id in DOCS}
    finally:
        await index.close()


def with_chunking(settings: Settings, **changes: object) -> Settings:
    chunking = ChunkingSettings.model_validate({**settings.chunking.model_dump(), **changes})
    return settings.model_copy(update={"chunking": chunking})


@pytest.mark.parametrize(
    "change",
    ["strategy", "chunk_words", "overlap_words", "context_header", "embedder"],
)
async def test_a_settings_change_reindexes_every_document_cleanly(
    tmp_path: Path, change: str
) -> None:
    # GIVEN every document indexed with the defaults
    before = Settings(_env_file=None, data_dir=tmp_path)
    first = await index_all(before, FakeEmbedder(dimension=16))
    assert {verdict for verdict, _ in first.values()} == {Verdict.INDEXED}
    # (re-sending under the same settings is a no-op)
    again = await index_all(before, FakeEmbedder(dimension=16))
    assert {verdict for verdict, _ in again.values()} == {Verdict.UNCHANGED}

    # WHEN one setting that shapes chunks or vectors changes and the same
    # documents are sent again
    after, embedder = before, FakeEmbedder(dimension=16)
    if change == "strategy":
        after = with_chunking(before, strategy="tokens")
    elif change == "chunk_words":
        after = with_chunking(before, chunk_words=100)
    elif change == "overlap_words":
        after = with_chunking(before, overlap_words=0)
    elif change == "context_header":
        after = with_chunking(before, context_header="none")
    else:
        embedder = FakeEmbedder(dimension=16, model_id="fake/another-embedder")
    second = await index_all(after, embedder)

    # THEN every document is re-indexed under a new generation, and the store
    # holds exactly that generation's chunks: nothing stale
    stored = await stored_generations(after)
    for doc_id, (verdict, generation) in second.items():
        assert verdict is Verdict.INDEXED, doc_id
        assert generation != first[doc_id][1], doc_id
        assert list(stored[doc_id]) == [generation], doc_id


async def test_the_embedder_reads_the_header_while_the_stored_text_stays_clean(
    tmp_path: Path,
) -> None:
    settings = Settings(_env_file=None, data_dir=tmp_path)
    embedder = FakeEmbedder(dimension=16)
    await index_all(settings, embedder)
    embedded = [text for call in embedder.calls for text in call]
    # The default header is the title, on a line of its own (strategy "words").
    assert any(text.startswith("Usage\n") for text in embedded), embedded[:3]

    index = sqlite_store.from_settings(settings)
    try:
        hits = await index.keyword_search("options", 10, {}, Access.everything())
    finally:
        await index.close()
    assert hits and all("›" not in hit.chunk.text for hit in hits)
    assert {hit.chunk.section for hit in hits if hit.chunk.doc_id == "guide/usage.md"}
