"""``--answers``: answers come from the query service's AnswerService and are
scored by whether their cited sources include an expected document."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from cli.eval.answers import run_answers
from cli.eval.questions import EvalQuestion
from services.query.core import AnswerService, build_query_deps
from shared.adapters import sqlite_store
from shared.documents import Chunk, EmbeddedChunk
from shared.settings import Settings
from tests.fakes.chat_model import FakeChatModel, Script
from tests.fakes.embedder import FakeEmbedder

DOCS = {
    "cats.md": "Cats purr when they are content and sleep most of the day.",
    "ships.md": "Container ships carry cargo across the oceans between ports.",
}


async def test_citation_rate_counts_answers_citing_an_expected_document(tmp_path: Path) -> None:
    embedder = FakeEmbedder()
    settings = Settings(data_dir=tmp_path)
    index = sqlite_store.from_settings(settings)
    await index.ensure_index(embedder.dimension)
    chunks = [
        Chunk(chunk_id=doc, doc_id=doc, generation="g", ordinal=0, text=text, start=0, end=1)
        for doc, text in DOCS.items()
    ]
    vectors = await embedder.embed_documents([c.text for c in chunks])
    await index.write(
        [EmbeddedChunk(c, np.asarray(v)) for c, v in zip(chunks, vectors, strict=True)]
    )
    # First answer cites source [1] (the best hit), the second cites nothing.
    model = FakeChatModel(Script(tokens=["They purr [1]."]), Script(tokens=["No idea."]))
    service = AnswerService(
        settings, build_query_deps(settings, embedder=embedder, index=index, model=model)
    )
    questions = [
        EvalQuestion(question="why do cats purr when content", doc_ids=["cats.md"]),
        EvalQuestion(question="what do container ships carry", doc_ids=["ships.md"]),
    ]
    try:
        summary = await run_answers(questions, service, "knn", 2)
    finally:
        await index.close()

    first, second = summary.results
    assert first.cited_doc_ids == ("cats.md",)
    assert first.cites_expected
    assert second.cited_doc_ids == ()
    assert summary.citation_rate == 0.5
    assert summary.uncited == 1
    assert summary.errors == 0
