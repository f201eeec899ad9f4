"""Pseudo-relevance feedback on the keyword side: the pure term choice, and
the Retriever's second keyword search on the real embedded store (FTS5)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from pathlib import Path

import numpy as np
import pytest

from services.query.answer.expansion import Feedback, expansion_terms, relevance_model
from services.query.answer.retrieval import Retriever, rocchio_vector
from shared.access import Access
from shared.adapters.sqlite.store import SqliteVectorIndex
from shared.documents import Chunk, EmbeddedChunk, SearchHit
from shared.ports import Filters
from shared.settings import QuerySettings
from tests.fakes.embedder import FakeEmbedder

ALL = Access.everything()


def chunk(doc_id: str, text: str, ordinal: int = 0, title: str | None = None) -> Chunk:
    return Chunk(
        chunk_id=f"{doc_id}#{ordinal}",
        doc_id=doc_id,
        generation="g",
        ordinal=ordinal,
        text=text,
        start=0,
        end=len(text),
        title=title,
    )


# ---- choosing the words -------------------------------------------------------

# Other pages of a manual, so that a word two chunks share is still rare
# (a first search returns ~50 candidates; these tests use ~20).
TOPICS = (
    "backup restore archive",
    "index btree scan",
    "trigger event function",
    "role privilege grant",
    "sequence serial identity",
    "view materialized refresh",
    "lock deadlock wait",
    "cursor fetch portal",
    "schema search path",
    "locale collation encoding",
    "replication standby slot",
    "partition range list",
)
FILLER = [
    chunk(f"page{i}", f"The {words} chapter of the manual.") for i, words in enumerate(TOPICS)
]

POOL = [
    chunk("agg", "Aggregate functions: string_agg joins the values with a delimiter."),
    chunk("agg", "string_agg takes a delimiter and an ORDER BY clause.", 1),
    chunk("group", "GROUP BY collapses rows that share a value into one group."),
    chunk("vacuum", "VACUUM reclaims the storage that deleted rows held."),
    chunk("copy", "COPY moves rows between a table and a file."),
    *FILLER,
]


def test_feedback_words_are_new_specific_and_weighted_to_the_budget() -> None:
    question = "collapse names from many rows into one string per group"
    feedback = [Feedback(POOL[0], 2.0), Feedback(POOL[1], 1.0)]
    added = expansion_terms(question, feedback, POOL, terms=3, weight=0.3)
    words = [w for w, _ in added]
    # What both feedback chunks share and the rest of the pool lacks comes first.
    assert set(words[:2]) == {"string_agg", "delimiter"}
    assert len(words) == 3
    # Never a question word, nor one every candidate has ("the", "rows" is asked anyway).
    assert not {"rows", "string", "group", "the"} & set(words)
    # Together they weigh 0.3 of the question's ten distinct words.
    assert sum(w for _, w in added) == pytest.approx(0.3 * 10)
    assert [w for _, w in added] == sorted((w for _, w in added), reverse=True)


def test_a_better_scored_feedback_chunk_counts_more() -> None:
    a = chunk("a", "alpha alpha beta")
    b = chunk("b", "gamma gamma beta")
    leaning_a = relevance_model([Feedback(a, 3.0), Feedback(b, 1.0)])
    assert leaning_a["alpha"] > leaning_a["gamma"]
    # Scores that say nothing (all zero) share equally.
    even = relevance_model([Feedback(a, 0.0), Feedback(b, 0.0)])
    assert even["alpha"] == pytest.approx(even["gamma"])


def test_words_every_candidate_has_add_nothing() -> None:
    pool = [chunk(f"d{i}", f"the manual of the product, page {i}") for i in range(4)]
    assert expansion_terms("how do I start", [Feedback(pool[0], 1.0)], pool, 5, 0.3) == []


@pytest.mark.parametrize(
    ("question", "feedback", "terms"),
    [
        ("anything", [], 5),
        ("", [Feedback(POOL[0], 1.0)], 5),
        ("anything", [Feedback(POOL[0], 1.0)], 0),
    ],
)
def test_nothing_to_add(question: str, feedback: list[Feedback], terms: int) -> None:
    assert expansion_terms(question, feedback, POOL, terms, 0.3) == []


# ---- the second keyword search, on the real embedded store --------------------


class RecordingIndex(SqliteVectorIndex):
    """The embedded store, remembering each keyword search's expansion."""

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.expansions: list[tuple[tuple[str, float], ...]] = []
        self.rankings: list[list[str]] = []  # each keyword search's chunk ids

    async def keyword_search(
        self,
        text: str,
        k: int,
        filters: Filters,
        access: Access,
        expansion: Sequence[tuple[str, float]] = (),
    ) -> list[SearchHit]:
        self.expansions.append(tuple(expansion))
        hits = await super().keyword_search(text, k, filters, access, expansion)
        self.rankings.append([h.chunk.chunk_id for h in hits])
        return hits


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[RecordingIndex]:
    index = RecordingIndex(tmp_path / "index.db")
    yield index
    await index.close()


async def write(index: SqliteVectorIndex, embedder: FakeEmbedder, chunks: list[Chunk]) -> None:
    vectors = await embedder.embed_documents([c.text for c in chunks])
    await index.write([EmbeddedChunk(c, v) for c, v in zip(chunks, vectors, strict=True)])


def settings(**changes: object) -> QuerySettings:
    return QuerySettings(keyword_weight=1.0, **changes)  # type: ignore[arg-type]


async def retrieve(
    index: SqliteVectorIndex, question: str, query: QuerySettings, k: int = 3
) -> list[str]:
    hits = await Retriever(FakeEmbedder(), index, query).retrieve(question, k, {}, "hybrid", ALL)
    return [h.chunk.chunk_id for h in hits]


async def test_unit_weights_give_fts5s_own_bm25(store: RecordingIndex) -> None:
    await write(store, FakeEmbedder(), POOL)
    plain = await store.keyword_search("rows into one group", 5, {}, ALL)
    # An added word the question already has keeps weight 1: the same query,
    # scored by weighted_bm25 instead of bm25.
    weighted = await store.keyword_search("rows into one group", 5, {}, ALL, [("rows", 1.0)])
    assert [h.chunk.chunk_id for h in weighted] == [h.chunk.chunk_id for h in plain]
    assert [h.score for h in weighted] == pytest.approx([h.score for h in plain], rel=1e-9)


GAP = [
    chunk(
        "overview",
        "Aggregate functions collapse many rows into one value per group: to join "
        "names into one comma separated string, use string_agg: string_agg takes a delimiter.",
    ),
    chunk("string_agg", "string_agg concatenates the input values with the delimiter between."),
    chunk("group-by", "GROUP BY puts equal values together in a group."),
    chunk("rename", "Rename a table; table names must be unique."),
    chunk("delete", "Delete rows with a WHERE clause."),
    chunk("insert", "Insert the result of a query into a table."),
    chunk("select", "SELECT lists the columns to return."),
    chunk("order", "ORDER BY sorts by one or more keys."),
    *FILLER,
]


async def test_feedback_reaches_the_page_that_shares_no_question_word(
    store: RecordingIndex,
) -> None:
    """The vocabulary gap: only the overview says both the user's words and
    ``string_agg``; its words lead the second keyword search to the reference
    entry, which the question's words alone rank last of the matches (FTS5
    reads string_agg as "string" "agg")."""
    await write(store, FakeEmbedder(), GAP)
    question = "collapse names from many rows into one comma separated string per group"
    await retrieve(store, question, settings(feedback_terms=5, feedback_chunks=1))
    first, second = store.rankings
    assert store.expansions[0] == ()
    assert "string_agg" in dict(store.expansions[1])
    assert first[0] == second[0] == "overview#0"
    assert first[-1] == "string_agg#0"
    assert second.index("string_agg#0") == 1


DRIFT = [
    chunk(
        "argparse",
        "The parser will split a string into words as a shell does: parse_args "
        "turns each argument, option and flag into an attribute.",
    ),
    chunk("argparse", "add_argument declares an option or flag; parse_args reads it.", 1),
    chunk("argparse", "A subparser option takes its own flag and argument list.", 2),
    chunk("argparse", "parse_args raises an error for an unknown option or flag.", 3),
    chunk("shlex", "shlex.split splits a string using shell-like syntax."),
    chunk("glob", "glob expands shell patterns into file names."),
    *FILLER,
]


async def test_feedback_from_the_wrong_page_does_not_push_out_the_right_one(
    store: RecordingIndex,
) -> None:
    """ "split a shell-like string into words": the first pass ranks a chunk of
    the argument-parser page first, so the added words are that page's
    (parse_args, option, flag). They weigh 0.3 of the question's words
    together, so the chunk that matches the question keeps its place and the
    parser page's other chunks, which match only added words, stay below it."""
    await write(store, FakeEmbedder(), DRIFT)
    question = "split a shell-like string into words"
    before = await retrieve(store, question, settings())
    assert before[:2] == ["argparse#0", "shlex#0"]

    query = settings(feedback_terms=10, feedback_chunks=1, feedback_weight=0.3)
    found = await retrieve(store, question, query)
    added = dict(store.expansions[-1])
    assert {"parse_args", "flag"} <= set(added)
    assert found[:2] == ["argparse#0", "shlex#0"]


# ---- Rocchio on the k-NN side ---------------------------------------------------


def test_rocchio_moves_the_question_part_way_to_the_feedback_centroid() -> None:
    question = np.array([1.0, 0.0, 0.0], dtype=np.float32)
    feedback = np.array([[0.0, 1.0, 0.0], [0.0, 0.0, 1.0]], dtype=np.float32)
    moved = rocchio_vector(question, feedback, 0.5)
    assert float(np.linalg.norm(moved)) == pytest.approx(1.0)
    assert moved[1] == pytest.approx(moved[2]) and moved[0] > moved[1] > 0
    # A small weight keeps it closest to the question.
    assert float(rocchio_vector(question, feedback, 0.1) @ question) > float(moved @ question)


async def test_rocchio_searches_again_with_the_moved_vector(store: RecordingIndex) -> None:
    embedder = FakeEmbedder()
    await write(store, embedder, GAP)
    question = "collapse names from many rows into one comma separated string per group"
    retriever = Retriever(embedder, store, settings(rocchio_chunks=2, rocchio_weight=0.5))
    embedder.calls.clear()
    for mode in ("knn", "hybrid"):
        hits = await retriever.retrieve(question, 5, {}, mode, ALL)  # type: ignore[arg-type]
        assert hits
        # The question, then the two best first-pass chunks' texts (embedded again).
        asked, again = embedder.calls[-2:]
        assert asked == [question] and len(again) == 2
    # Off (the default): one embedding call per question.
    embedder.calls.clear()
    await Retriever(embedder, store, settings()).retrieve(question, 5, {}, "hybrid", ALL)
    assert len(embedder.calls) == 1
