"""The chunker, with the real all-MiniLM-L6-v2 tokenizer (bundled tokenizer.json)."""

from __future__ import annotations

import base64
import random
import unicodedata
from itertools import pairwise

import pytest

from shared.adapters.local_models.wordpiece import WordPieceTokenCounter, default_token_counter
from shared.chunking import MAX_WINDOW_TOKENS, chunk_document, settings_fingerprint
from shared.context_header import HeaderBuilder, embedded_text
from shared.documents import Chunk, LoadedDocument, chunk_id_for
from shared.errors import EmptyDocument
from shared.ports import TokenCounter
from shared.settings import ChunkingSettings
from tests.fakes.token_counter import CharTokenCounter

# The window algorithm, without small-to-big context (tested on its own below).
SETTINGS = ChunkingSettings(strategy="tokens", context_tokens=0)
SMALL = ChunkingSettings(strategy="tokens", context_tokens=0, chunk_tokens=40, overlap_tokens=8)

WORDS = [
    "tide",
    "harbour",
    "lantern",
    "keeper",
    "volunteer",
    "weather",
    "storm",
    "lamp",
    "signal",
    "village",
    "library",
    "causeway",
    "sand",
    "moon",
    "spring",
    "neap",
    "chart",
    "datum",
    "height",
    "table",
    "port",
    "evening",
    "morning",
]


@pytest.fixture(scope="module")
def counter() -> WordPieceTokenCounter:
    return default_token_counter()


def prose(paragraphs: int, seed: int = 7) -> str:
    rng = random.Random(seed)
    out = []
    for _ in range(paragraphs):
        sentences = []
        for _ in range(rng.randint(2, 6)):
            words = [rng.choice(WORDS) for _ in range(rng.randint(4, 18))]
            sentences.append(" ".join(words).capitalize() + rng.choice([".", ".", "?", "!"]))
        out.append(" ".join(sentences))
    return "\n\n".join(out)


def chunk(
    text: str,
    counter: TokenCounter,
    settings: ChunkingSettings = SETTINGS,
    **loaded: object,
) -> list[Chunk]:
    doc = LoadedDocument(text=text, **loaded)
    return chunk_document("doc-1", doc, generation="gen-1", settings=settings, counter=counter)


def token_count(counter: WordPieceTokenCounter, text: str) -> int:
    return len(counter.token_spans(text))


def assert_offsets_and_coverage(text: str, chunks: list[Chunk]) -> None:
    covered = bytearray(len(text))
    for c in chunks:
        assert c.text == text[c.start : c.end]
        assert c.text == c.text.strip() and c.text
        covered[c.start : c.end] = b"\x01" * (c.end - c.start)
    missed = [ch for i, ch in enumerate(text) if not covered[i] and not ch.isspace()]
    assert missed == []
    assert [c.start for c in chunks] == sorted(c.start for c in chunks)


def is_word_boundary(text: str, pos: int) -> bool:
    if pos in (0, len(text)):
        return True
    before, after = text[pos - 1], text[pos]
    if before.isspace() or after.isspace():
        return True
    if _is_cjk(before) or _is_cjk(after):
        return True
    return unicodedata.category(before).startswith("P") or not before.isalnum()


def _is_cjk(char: str) -> bool:
    return 0x4E00 <= ord(char) <= 0x9FFF or 0x3400 <= ord(char) <= 0x4DBF


def assert_no_mid_word_cut(text: str, chunks: list[Chunk]) -> None:
    for c in chunks:
        assert is_word_boundary(text, c.start), text[max(0, c.start - 10) : c.start + 10]
        assert is_word_boundary(text, c.end), text[max(0, c.end - 10) : c.end + 10]


# ---- sizes, overlap, offsets ------------------------------------------------


@pytest.mark.parametrize(
    "settings",
    [
        SETTINGS,
        SMALL,
        ChunkingSettings(strategy="tokens", context_tokens=0, chunk_tokens=254, overlap_tokens=100),
    ],
    ids=["default", "small", "max-window"],
)
def test_chunks_fit_the_token_budget(
    counter: WordPieceTokenCounter, settings: ChunkingSettings
) -> None:
    text = prose(60)
    chunks = chunk(text, counter, settings)
    assert len(chunks) > 3
    sizes = [token_count(counter, c.text) for c in chunks]
    assert max(sizes) <= settings.chunk_tokens <= MAX_WINDOW_TOKENS
    # Not degenerate: most chunks use most of the window.
    assert sorted(sizes)[len(sizes) // 2] >= settings.chunk_tokens // 2


def test_consecutive_chunks_overlap_within_the_setting(counter: WordPieceTokenCounter) -> None:
    text = prose(40)
    chunks = chunk(text, counter, SMALL)
    for previous, current in pairwise(chunks):
        assert current.start < previous.end, "no overlap"
        assert current.start > previous.start, "no progress"
        shared_text = text[current.start : previous.end]
        assert token_count(counter, shared_text) <= SMALL.overlap_tokens


def test_no_overlap_when_disabled(counter: WordPieceTokenCounter) -> None:
    text = prose(30)
    chunks = chunk(
        text,
        counter,
        ChunkingSettings(strategy="tokens", context_tokens=0, chunk_tokens=40, overlap_tokens=0),
    )
    for previous, current in pairwise(chunks):
        assert current.start >= previous.end


def test_offsets_reconstruct_the_text_and_cover_it(counter: WordPieceTokenCounter) -> None:
    text = "\n\n  " + prose(25) + "\n\t \n"
    chunks = chunk(text, counter, SMALL)
    assert_offsets_and_coverage(text, chunks)
    assert [c.ordinal for c in chunks] == list(range(len(chunks)))


def test_never_cuts_mid_word(counter: WordPieceTokenCounter) -> None:
    # Long words that WordPiece splits into ## pieces, hyphens, URLs, numbers.
    words = [
        "internationalisation",
        "electroencephalography",
        "well-known",
        "https://example.org/a/b?c=d",
        "3.14159",
        "don't",
        "naïve",
    ]
    rng = random.Random(3)
    text = " ".join(rng.choice(words + WORDS) for _ in range(3000))
    chunks = chunk(text, counter, SMALL)
    assert_no_mid_word_cut(text, chunks)
    assert_offsets_and_coverage(text, chunks)


def test_prefers_sentence_ends_over_other_word_boundaries(
    counter: WordPieceTokenCounter,
) -> None:
    text = prose(40, seed=11)
    chunks = chunk(text, counter, SETTINGS)
    ends_at_sentence = [c.text[-1] in ".?!" for c in chunks[:-1]]
    assert sum(ends_at_sentence) == len(ends_at_sentence)


def test_prefers_paragraph_breaks(counter: WordPieceTokenCounter) -> None:
    paragraph = "The lamp was lit at dusk. " * 12  # ~84 tokens
    text = "\n\n".join([paragraph.strip()] * 6)
    chunks = chunk(
        text,
        counter,
        ChunkingSettings(strategy="tokens", context_tokens=0, chunk_tokens=200, overlap_tokens=0),
    )
    for c in chunks[:-1]:
        assert text[c.end : c.end + 2] == "\n\n"


def test_is_deterministic_and_ids_depend_on_doc_generation_ordinal(
    counter: WordPieceTokenCounter,
) -> None:
    text = prose(20)
    first, second = chunk(text, counter, SMALL), chunk(text, counter, SMALL)
    assert first == second
    assert [c.chunk_id for c in first] == [
        chunk_id_for("doc-1", "gen-1", i) for i in range(len(first))
    ]
    assert len({c.chunk_id for c in first}) == len(first)
    other = chunk_document(
        "doc-2", LoadedDocument(text=text), generation="gen-1", settings=SMALL, counter=counter
    )
    assert {c.chunk_id for c in other}.isdisjoint(c.chunk_id for c in first)


def test_document_fields_are_carried_on_every_chunk(counter: WordPieceTokenCounter) -> None:
    doc = LoadedDocument(text=prose(10), title="From the file")
    chunks = chunk_document(
        "d",
        doc,
        generation="g",
        settings=SMALL,
        counter=counter,
        source_uri="https://x.example/d",
        metadata={"team": "hr"},
    )
    assert {(c.title, c.source_uri, c.doc_id, c.generation) for c in chunks} == {
        ("From the file", "https://x.example/d", "d", "g")
    }
    assert all(c.metadata == {"team": "hr"} for c in chunks)
    titled = chunk_document(
        "d", doc, generation="g", settings=SMALL, counter=counter, title="From the message"
    )
    assert {c.title for c in titled} == {"From the message"}


def test_short_text_is_one_chunk(counter: WordPieceTokenCounter) -> None:
    chunks = chunk("  Hello, world!  \n", counter)
    assert [(c.text, c.start, c.end) for c in chunks] == [("Hello, world!", 2, 15)]


# ---- Unicode ----------------------------------------------------------------------


def test_cjk_text_without_spaces(counter: WordPieceTokenCounter) -> None:
    sentence = "灯台守は毎晩ランプに火をともし、霧の夜には霧笛を鳴らした。"
    text = sentence * 80
    chunks = chunk(text, counter, SMALL)
    assert len(chunks) > 5
    assert_offsets_and_coverage(text, chunks)
    assert_no_mid_word_cut(text, chunks)
    assert max(token_count(counter, c.text) for c in chunks) <= SMALL.chunk_tokens


def test_emoji_and_combining_characters(counter: WordPieceTokenCounter) -> None:
    combining = "cafe\u0301 nai\u0308ve re\u0301sume\u0301"  # decomposed accents
    text = " ".join(["🐋 whale 👩‍👩‍👧 family", combining, "Ünïcödé ✓ done."] * 150)
    chunks = chunk(text, counter, SMALL)
    assert_offsets_and_coverage(text, chunks)
    assert max(token_count(counter, c.text) for c in chunks) <= SMALL.chunk_tokens
    for c in chunks:  # a combining mark never starts a chunk (it is part of a word)
        assert not unicodedata.combining(c.text[0])


def test_characters_the_tokenizer_drops_stay_inside_chunks(
    counter: WordPieceTokenCounter,
) -> None:
    text = " ".join(["word \x00 \ufffd \u200b other"] * 200)
    chunks = chunk(text, counter, SMALL)
    assert_offsets_and_coverage(text, chunks)


# ---- edge cases ---------------------------------------------------------------------


@pytest.mark.parametrize("text", ["", "   ", "\n\n\t \u3000"])
def test_empty_or_blank_text_raises_empty_document(
    counter: WordPieceTokenCounter, text: str
) -> None:
    with pytest.raises(EmptyDocument):
        chunk(text, counter)


def test_text_the_tokenizer_ignores_entirely_is_empty(counter: WordPieceTokenCounter) -> None:
    with pytest.raises(EmptyDocument):
        chunk("\x00\x01 \x02", counter)


def test_one_enormous_word_is_still_split(counter: WordPieceTokenCounter) -> None:
    blob = "x" * 5000
    text = f"Header line.\n\n{blob}\n\nFooter line."
    chunks = chunk(text, counter, SETTINGS)
    assert len(chunks) > 1
    assert_offsets_and_coverage(text, chunks)
    assert max(token_count(counter, c.text) for c in chunks) <= SETTINGS.chunk_tokens
    assert max(len(c.text) for c in chunks) < 1000  # never one 5000-character chunk


def test_a_base64_blob_is_split_at_token_boundaries(counter: WordPieceTokenCounter) -> None:
    blob = base64.b64encode(random.Random(5).randbytes(6000)).decode()
    chunks = chunk(f"attachment: {blob}", counter, SETTINGS)
    assert len(chunks) > 5
    assert_offsets_and_coverage(f"attachment: {blob}", chunks)
    assert max(token_count(counter, c.text) for c in chunks) <= SETTINGS.chunk_tokens


def test_without_any_word_boundary_the_window_end_is_used() -> None:
    # A character tokenizer: one 1000-token "word" must be cut mid-word.
    text = "a" * 1000
    chunks = chunk(
        text,
        CharTokenCounter(),
        ChunkingSettings(strategy="tokens", context_tokens=0, chunk_tokens=50, overlap_tokens=5),
    )
    assert [len(c.text) for c in chunks] == [50] * 20
    assert_offsets_and_coverage(text, chunks)


def test_huge_input(counter: WordPieceTokenCounter) -> None:
    text = prose(4000, seed=1)  # about 1.5 MB
    assert len(text) > 1_000_000
    chunks = chunk(text, counter, SETTINGS)
    assert_offsets_and_coverage(text, chunks)
    for c in chunks[:: max(1, len(chunks) // 50)]:
        assert token_count(counter, c.text) <= SETTINGS.chunk_tokens


# ---- pages, sections, headings --------------------------------------------------------


def test_page_and_section_come_from_where_the_chunk_text_begins(
    counter: WordPieceTokenCounter,
) -> None:
    parts = [prose(3, seed=s) for s in range(4)]
    text = "\n\n".join(parts)
    offsets = [text.index(p) for p in parts]
    pages = [(offsets[0], 1), (offsets[1], 2), (offsets[2], 3), (offsets[3], 4)]
    sections = [(offsets[0], "Intro"), (offsets[2], "Intro > Details")]
    chunks = chunk(text, counter, SMALL, pages=pages, sections=sections)
    for previous, c in zip([None, *chunks], chunks, strict=False):
        anchor = c.start if previous is None else _first_new_char(text, previous, c)
        expected_page = max(p for off, p in pages if off <= anchor)
        assert c.page == expected_page
        expected_section = "Intro > Details" if anchor >= offsets[2] else "Intro"
        assert c.section == expected_section
    assert {c.page for c in chunks} == {1, 2, 3, 4}


def _first_new_char(text: str, previous: Chunk, current: Chunk) -> int:
    """Where the current chunk's text stops repeating the previous one."""
    position = previous.end
    while position < current.end and text[position].isspace():
        position += 1
    return position


def test_without_pages_or_sections_they_are_none(counter: WordPieceTokenCounter) -> None:
    assert {(c.page, c.section) for c in chunk(prose(10), counter, SMALL)} == {(None, None)}


def test_chunks_start_at_heading_breaks_without_overlap(counter: WordPieceTokenCounter) -> None:
    sections_text = [f"Heading {i}\n\n" + prose(1, seed=i)[:150] for i in range(8)]
    text = "\n\n".join(sections_text)
    breaks = [text.index(f"Heading {i}") for i in range(1, 8)]
    chunks = chunk(
        text,
        counter,
        ChunkingSettings(strategy="tokens", context_tokens=0, chunk_tokens=100, overlap_tokens=20),
        breaks=breaks,
    )
    # Every window's second half holds a heading (sections are ~35 tokens): each
    # chunk after the first starts at one, with no overlap across it.
    assert len(chunks) > 2
    for previous, current in pairwise(chunks):
        assert current.start in breaks
        assert current.start >= previous.end


# ---- fingerprint ----------------------------------------------------------------------


def test_settings_fingerprint_changes_with_what_shapes_chunks() -> None:
    base = settings_fingerprint(SETTINGS, "minilm")
    assert base == settings_fingerprint(
        ChunkingSettings(strategy="tokens", context_tokens=0), "minilm"
    )
    assert base != settings_fingerprint(SMALL, "minilm")
    assert base != settings_fingerprint(SETTINGS, "titan-v2")


def test_overlap_starts_at_a_sentence_start_when_one_is_near(
    counter: WordPieceTokenCounter,
) -> None:
    text = " ".join(f"The lamp number {i} was lit." for i in range(300))  # 7 tokens each
    chunks = chunk(
        text,
        counter,
        ChunkingSettings(strategy="tokens", context_tokens=0, chunk_tokens=100, overlap_tokens=20),
    )
    assert len(chunks) > 5
    for previous, current in pairwise(chunks):
        assert current.text.startswith("The lamp")
        assert current.start < previous.end  # still overlapping


def test_context_tokens_extend_the_text_but_not_the_embedded_window(
    counter: WordPieceTokenCounter,
) -> None:
    # Small-to-big: the same embedded windows as without context (so the same
    # vectors), each chunk's text running on past its window.
    text = prose(40)
    plain = chunk(text, counter, SMALL)
    wide = chunk(text, counter, SMALL.model_copy(update={"context_tokens": 30}))
    assert [(c.start, c.embedded_end or c.end) for c in wide] == [(c.start, c.end) for c in plain]
    assert all(c.embedded_end is None for c in plain)
    assert all(c.text == text[c.start : c.end] for c in wide)
    extended = [c for c in wide if c.embedded_end is not None]
    assert len(extended) == len(wide) - 1  # all but the last, which ends the text
    for c in extended:
        assert c.embedded_end is not None
        assert embedded_text(c) == text[c.start : c.embedded_end]
        assert 0 < token_count(counter, text[c.embedded_end : c.end]) <= 30
    assert wide[-1].end == plain[-1].end
    headers = HeaderBuilder("title", counter)
    assert [headers.embedding_text(c) for c in wide] == [headers.embedding_text(c) for c in plain]


def test_context_tokens_change_the_fingerprint_only_when_set() -> None:
    base = settings_fingerprint(SETTINGS, "minilm")
    assert "context_tokens" not in base
    wide = SETTINGS.model_copy(update={"context_tokens": 100})
    assert settings_fingerprint(wide, "minilm") != base


def test_by_default_chunks_carry_256_tokens_of_context(counter: WordPieceTokenCounter) -> None:
    text = prose(40)
    chunks = chunk(text, counter, ChunkingSettings(strategy="tokens"))
    windows = chunk(text, counter, SETTINGS)
    assert [(c.start, c.embedded_end or c.end) for c in chunks] == [
        (c.start, c.end) for c in windows
    ]
    tails = [token_count(counter, text[c.embedded_end : c.end]) for c in chunks[:-1]]
    assert all(c.embedded_end is not None for c in chunks[:-1])
    assert max(tails) <= 256 and min(tails) >= 128  # the second half of the span, at least
