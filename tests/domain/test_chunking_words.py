"""The "words" chunk strategy: naive-style word windows inside the product."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from cli.eval.naive import NaivePage, naive_chunks
from cli.eval.naive import embedding_text as naive_embedding_text
from shared.adapters.local_models.wordpiece import WordPieceTokenCounter, default_token_counter
from shared.chunking import chunk_document, settings_fingerprint, word_windows
from shared.context_header import HeaderBuilder, embedded_text
from shared.documents import Chunk, LoadedDocument
from shared.errors import EmptyDocument
from shared.settings import ChunkingSettings
from tests.domain.test_chunking import assert_offsets_and_coverage, prose

WORDS = ChunkingSettings(strategy="words", context_tokens=0)
SMALL = ChunkingSettings(strategy="words", context_tokens=0, chunk_words=20, overlap_words=4)


@pytest.fixture(scope="module")
def counter() -> WordPieceTokenCounter:
    return default_token_counter()


def chunk(
    text: str, counter: WordPieceTokenCounter, settings: ChunkingSettings, **loaded: object
) -> list[Chunk]:
    doc = LoadedDocument(text=text, **loaded)
    return chunk_document("doc-1", doc, generation="g", settings=settings, counter=counter)


def test_windows_are_the_naive_windows_of_the_same_words(counter: WordPieceTokenCounter) -> None:
    text = prose(30)
    words = text.split()
    chunks = chunk(text, counter, WORDS)
    expected = word_windows(len(words), 200, 40)
    assert len(expected) > 3
    assert [c.text.split() for c in chunks] == [words[w.start : w.stop] for w in expected]
    assert_offsets_and_coverage(text, chunks)


def test_headings_and_definition_terms_do_not_end_a_window(
    counter: WordPieceTokenCounter,
) -> None:
    text = "\n".join(f"name{i}(x)\nDoes thing number {i}." for i in range(40))
    breaks = [i for i in range(1, len(text)) if text[i - 1] == "\n"]
    chunks = chunk(text, counter, SMALL, breaks=breaks)
    assert [len(c.text.split()) for c in chunks[:-1]] == [20] * (len(chunks) - 1)
    # Every window runs across several breaks (the token strategy never would).
    for c in chunks[:-1]:
        assert sum(c.start < b < c.end for b in breaks) >= 5


def test_a_word_of_many_tokens_is_never_split(counter: WordPieceTokenCounter) -> None:
    # "a.b(c)[d]" is many WordPiece tokens but one whitespace word; a 300-character
    # blob is an over-long token split into pieces, still one word.
    blob = "Q" * 300
    words = [f"mod{i}.func_{i}(arg)[{i}]" for i in range(30)] + [blob] + ["tail"] * 10
    text = " ".join(words)
    chunks = chunk(text, counter, SMALL)
    for c in chunks:
        assert all(w in words for w in c.text.split())
    assert any(blob in c.text.split() for c in chunks)
    assert_offsets_and_coverage(text, chunks)


def test_cjk_without_spaces_is_one_word_and_one_chunk(counter: WordPieceTokenCounter) -> None:
    text = "数据库索引" * 200  # one whitespace word, ~1,000 tokens
    chunks = chunk(text, counter, SMALL)
    assert [c.text for c in chunks] == [text]


def test_short_and_empty_texts(counter: WordPieceTokenCounter) -> None:
    assert [c.text for c in chunk("  just three words \n", counter, SMALL)] == ["just three words"]
    with pytest.raises(EmptyDocument):
        chunk(" \n\t ", counter, SMALL)


def test_context_runs_past_the_window_which_stays_the_embedded_part(
    counter: WordPieceTokenCounter,
) -> None:
    text = prose(30)
    plain = chunk(text, counter, WORDS)
    wide = chunk(text, counter, WORDS.model_copy(update={"context_tokens": 64}))
    assert [(c.start, c.embedded_end or c.end) for c in wide] == [(c.start, c.end) for c in plain]
    assert all(c.embedded_end is not None for c in wide[:-1])
    for c in wide[:-1]:
        assert embedded_text(c) == text[c.start : c.embedded_end]
        assert 0 < len(counter.token_spans(text[c.embedded_end : c.end])) <= 64


def test_embedding_text_is_the_naive_title_line_form(counter: WordPieceTokenCounter) -> None:
    # Same words and title, same embedded text as the naive yardstick: the
    # product's words strategy and naive share cached vectors.
    text = prose(30)
    mine = chunk_document(
        "d",
        LoadedDocument(text=text, title="Fernet — Docs"),
        generation="g",
        settings=WORDS,
        counter=counter,
    )
    naive = naive_chunks("d", NaivePage("Fernet — Docs", text.split()))
    line = HeaderBuilder("title", counter, line=True)
    assert [line.embedding_text(c) for c in mine] == [naive_embedding_text(c) for c in naive]
    untitled = HeaderBuilder("none", counter, line=True)
    assert untitled.embedding_text(mine[0]) == " ".join(mine[0].text.split())


def test_the_strategy_is_part_of_the_fingerprint() -> None:
    tokens = settings_fingerprint(ChunkingSettings(strategy="tokens"), "m")
    words = settings_fingerprint(ChunkingSettings(), "m")  # the default
    other = settings_fingerprint(ChunkingSettings(strategy="words", chunk_words=150), "m")
    assert len({tokens, words, other}) == 3
    # Token-strategy generations are unchanged by the new settings' existence.
    assert "words" not in tokens


def test_overlap_must_be_under_half_the_window() -> None:
    with pytest.raises(ValidationError):
        ChunkingSettings(strategy="words", chunk_words=100, overlap_words=50)
