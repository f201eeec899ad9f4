"""``--answers``: answers come from the query service's AnswerService and are
scored by whether their cited sources include an expected document."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from cli.eval.answers import AnswerResult, AnswerSummary, holds_key, run_answers
from cli.eval.questions import EvalQuestion
from services.query.answer.parts import build_query_deps
from services.query.answer.service import AnswerService
from shared.adapters.sqlite import store as sqlite_store
from shared.documents import Chunk, EmbeddedChunk
from shared.protocol import AnswerSentence, SentenceSupport
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


async def test_answer_metrics_from_attributed_sentences(tmp_path: Path) -> None:
    """GIVEN three scripted answers (grounded + invented, wrong source, empty),
    THEN precision, recall, supported share and key-string rate are exact."""
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
    model = FakeChatModel(
        # two sentences the cats source backs, one it doesn't
        Script(
            tokens=[
                "Cats purr when they are content [1]. ",
                "Cats sleep most of the day. ",
                "Cats can fly to the moon quickly.",
            ]
        ),
        # backed, but by the wrong document for the question
        Script(tokens=["Cats purr when they are content."]),
        Script(tokens=["No idea."]),  # claims nothing, cites nothing
    )
    service = AnswerService(
        settings, build_query_deps(settings, embedder=embedder, index=index, model=model)
    )
    questions = [
        EvalQuestion(
            question="why do cats purr", doc_ids=["cats.md"], passage="purr when they are content"
        ),
        EvalQuestion(question="what do ships carry", doc_ids=["ships.md"], passage="carry cargo"),
        EvalQuestion(question="what do container ships carry", doc_ids=["ships.md"]),
    ]
    try:
        summary = await run_answers(questions, service, "knn", 2)
    finally:
        await index.close()

    first, _, third = summary.results
    assert [r.cited_doc_ids for r in summary.results] == [("cats.md",), ("cats.md",), ()]
    assert [
        (r.count(SentenceSupport.SUPPORTED), r.count(SentenceSupport.UNSUPPORTED))
        for r in summary.results
    ] == [(2, 1), (1, 0), (0, 0)]
    assert third.sentences is not None and third.sentences[0].support == SentenceSupport.NO_CLAIM
    assert summary.citation_precision == 0.5  # 1 expected of 2 cited documents
    assert summary.citation_recall == 1 / 3
    assert summary.supported_share == 0.75  # 3 of 4 checkable sentences
    assert summary.repeated_share == 0.0
    assert (summary.key_rate, summary.key_questions) == (0.5, 2)
    assert summary.uncited == 1 and summary.errors == 0
    assert first.attribution_ms is not None
    report = "\n".join(summary.text_lines())
    assert "citation precision  0.500   recall 0.333" in report
    assert "supported sentences 0.750" in report
    assert summary.as_json()["key_string_rate"] == 0.5


def test_a_looping_answer_does_not_inflate_supported_sentences() -> None:
    """GIVEN an answer that repeats its one backed sentence three times beside one
    unbacked sentence THEN supported sentences is 1 of 2, and 2 of 4 repeat."""
    answer = "Cats purr. Cats purr. Cats fly. Cats purr."
    supports = (
        [SentenceSupport.SUPPORTED] * 2
        + [SentenceSupport.UNSUPPORTED]
        + [SentenceSupport.SUPPORTED]
    )
    sentences = []
    position = 0
    for text, support in zip(answer.split(". "), supports, strict=True):
        text = text.rstrip(".") + "."
        start = answer.index(text, position)
        position = start + len(text)
        sentences.append(
            AnswerSentence(
                start=start,
                end=position,
                support=support,
                sources=[],
                markers=[],
                unsupported_markers=[],
            )
        )
    result = AnswerResult(
        EvalQuestion(question="q", doc_ids=["cats.md"]), answer, (), None, 1.0, tuple(sentences)
    )
    summary = AnswerSummary((result,))
    assert (summary.supported_share, summary.repeated_share) == (0.5, 0.5)
    assert "supported sentences 0.500   (4 sentences, 50.0% repeated)" in summary.text_lines()


def test_key_strings_compare_like_passages() -> None:
    assert holds_key("Use  WEB.WebSocketResponse()\nhere", ["web.websocketresponse() here"])
    assert not holds_key("nothing", ["web.WebSocketResponse()"])
