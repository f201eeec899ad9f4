"""The context header the embedder reads before each chunk."""

from __future__ import annotations

from shared.adapters.local_models.wordpiece import default_token_counter
from shared.chunking import MAX_WINDOW_TOKENS, settings_fingerprint, window_tokens
from shared.context_header import HEADER_TOKENS, HeaderBuilder, header_parts
from shared.documents import Chunk
from shared.settings import ChunkingSettings


def chunk(title: str | None, section: str | None, text: str = "Returns the words.") -> Chunk:
    return Chunk(
        chunk_id="c",
        doc_id="d",
        generation="g",
        ordinal=0,
        text=text,
        start=0,
        end=len(text),
        title=title,
        section=section,
    )


def test_the_header_is_title_then_section_path_without_repeats_or_permalinks() -> None:
    parts = header_parts(
        "string — CMake 3.25.1 Documentation",
        "string¶ > Search and Replace¶ > Regex Specification¶",
        "title_section",
    )
    assert parts == [
        "string — CMake 3.25.1 Documentation",
        "Search and Replace",
        "Regex Specification",
    ]
    assert header_parts("Guide", "Install > Linux", "title") == ["Guide"]
    assert header_parts("Guide", "Install", "none") == []
    assert header_parts(None, None, "title_section") == []


def test_the_embedder_reads_header_and_text_while_the_chunk_keeps_its_text() -> None:
    builder = HeaderBuilder("title_section", default_token_counter())
    c = chunk("logging", "logging > Configuring > basicConfig")
    assert builder.embedding_text(c) == "logging › Configuring › basicConfig\n\nReturns the words."
    assert c.text == "Returns the words."
    assert HeaderBuilder("none", default_token_counter()).embedding_text(c) == c.text
    assert builder.embedding_text(chunk(None, None)) == "Returns the words."


def test_a_long_header_keeps_title_and_innermost_section_within_its_budget() -> None:
    counter = default_token_counter()
    builder = HeaderBuilder("title_section", counter)
    middle = " > ".join(f"level {i} with several words" for i in range(12))
    header = builder.header(chunk("Title", f"{middle} > innermost"))
    assert header.startswith("Title › ") and header.endswith("innermost")
    assert len(counter.token_spans(header)) <= HEADER_TOKENS
    # A single over-long part is cut to the budget.
    cut = builder.header(chunk("word " * 100, None))
    assert len(counter.token_spans(cut)) <= HEADER_TOKENS


def test_the_header_setting_shapes_the_window_and_the_generation() -> None:
    with_header = ChunkingSettings(chunk_tokens=254)
    without = ChunkingSettings(chunk_tokens=254, context_header="none")
    assert window_tokens(with_header) == MAX_WINDOW_TOKENS - HEADER_TOKENS
    assert window_tokens(without) == MAX_WINDOW_TOKENS
    assert window_tokens(ChunkingSettings()) == ChunkingSettings().chunk_tokens == 222
    assert settings_fingerprint(with_header, "m") != settings_fingerprint(without, "m")
