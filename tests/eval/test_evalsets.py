"""The evaluation sets themselves: well-formed, and answerable from their corpora.

Every question names documents that exist in its set's corpus, and at least
one of its key strings occurs in one of those documents (as the loaders read
them): a question whose key string is nowhere in its documents would count as
a retrieval miss whatever the retriever did.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from pypdf import PdfReader

from bench.retrieval_sets import chosen_sets
from cli.eval.embedding_cache import CachingEmbedder
from cli.eval.evalsets import HELD_OUT, EvalSet, all_sets
from cli.eval.metrics import normalise_text
from cli.eval.pdf_split import outline_parts
from cli.eval.questions import load_questions
from shared.loaders import load
from tests.fakes.embedder import FakeEmbedder

SETS = {s.name: s for s in all_sets()}


NEW_SETS = (
    "cmake",
    "gnuplot",
    "npm",
    "cryptography",
    "werkzeug",
    "debian-handbook",
    "tornado",
    "coreutils",
)


def test_every_set_has_its_sources_and_the_new_ones_are_held_out() -> None:
    assert {"samples", *NEW_SETS} <= set(SETS)
    assert {"tornado", "coreutils"} == HELD_OUT
    for name in NEW_SETS:
        assert (SETS[name].root / "SOURCES.md").exists()


def test_the_benchmark_leaves_the_held_out_sets_alone_unless_named() -> None:
    by_default = {s.name for s in chosen_sets(None)}
    assert HELD_OUT and not HELD_OUT & by_default
    assert by_default | HELD_OUT == set(SETS)
    assert [s.name for s in chosen_sets(["coreutils"])] == ["coreutils"]


@pytest.mark.parametrize("name", NEW_SETS)
def test_every_question_is_answerable_from_its_documents(name: str) -> None:
    evalset: EvalSet = SETS[name]
    questions = load_questions(evalset.questions_path)
    assert len(questions) >= 50
    assert len({q.question for q in questions}) == len(questions)
    corpus = evalset.corpus_dir()
    texts: dict[str, str] = {}
    for question in questions:
        assert 1 <= len(question.passages) <= 3, question.question
        for doc_id in question.doc_ids:
            if doc_id not in texts:
                path = corpus / doc_id
                assert path.is_file(), f"{name}: {doc_id} is not in the corpus"
                loaded = load(path.read_bytes(), None, filename=path.name)
                texts[doc_id] = normalise_text(loaded.text)
        found = any(
            normalise_text(key) in texts[doc_id]
            for doc_id in question.doc_ids
            for key in question.passages
        )
        assert found, f"{name}: no key string of {question.question!r} in its documents"


def test_the_pdf_manual_is_split_into_titled_chapters_without_shared_pages() -> None:
    evalset = SETS["gnuplot"]
    reader = PdfReader(evalset.root / "source" / "gnuplot.pdf")
    parts = outline_parts(reader, 1, frozenset({"Copyright", "Plot"}))
    pages = [n for p in parts for n in range(p.first_page, p.last_page + 1)]
    assert len(parts) > 50
    assert len(pages) == len(set(pages))  # every page in one part only
    titles = {p.title for p in parts}
    assert "Copyright" not in titles and "Plot" not in titles
    assert "Break, Cd, Call" in titles  # chapters starting on one page share a part
    corpus = evalset.corpus_dir()
    fit = next(corpus.glob("*-fit.pdf"))
    assert PdfReader(fit).metadata.title == "Fit"  # type: ignore[union-attr]


async def test_the_embedding_cache_embeds_each_text_once_per_model(tmp_path: Path) -> None:
    inner = FakeEmbedder(dimension=8)
    cache = CachingEmbedder(inner, tmp_path / "vectors.sqlite")
    first = await cache.embed_documents(["alpha", "beta", "alpha"])
    assert (cache.misses, len(inner.calls)) == (3, 1)
    cache.close()

    reopened = CachingEmbedder(inner, tmp_path / "vectors.sqlite")
    again = await reopened.embed_documents(["beta", "alpha"])
    assert len(inner.calls) == 1 and reopened.hits == 2  # from disk, nothing embedded
    np.testing.assert_array_equal(again, first[[1, 0]])
    other = CachingEmbedder(FakeEmbedder(dimension=8, model_id="other"), tmp_path / "v.sqlite")
    await other.embed_documents(["alpha"])
    assert other.misses == 1
    reopened.close()
    other.close()
