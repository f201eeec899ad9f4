"""The bundled all-MiniLM-L6-v2 tokenizer as a TokenCounter."""

from __future__ import annotations

from itertools import pairwise

import pytest
from tokenizers import Tokenizer

from shared.adapters.local_models.wordpiece import (
    SEGMENT_CHARS,
    _asset_path,
    default_token_counter,
    from_settings,
)
from shared.settings import Settings


def test_spans_are_character_offsets_without_special_tokens() -> None:
    counter = default_token_counter()
    text = "Héllo wörld 😀 日本"
    spans = counter.token_spans(text)
    assert [text[a:b] for a, b in spans] == ["Héllo", "wörld", "😀", "日", "本"]


def test_wordpiece_continuations_have_adjacent_spans() -> None:
    text = "electroencephalography"
    spans = default_token_counter().token_spans(text)
    assert len(spans) > 1
    assert spans[0][0] == 0 and spans[-1][1] == len(text)
    assert all(a[1] == b[0] for a, b in pairwise(spans))


def test_long_texts_are_not_truncated_or_padded() -> None:
    # tokenizer.json ships with truncation and padding at 128 tokens.
    counter = default_token_counter()
    assert counter.count("word " * 1000) == 1000
    assert counter.count("one two") == 2


def test_from_settings_returns_the_shared_instance() -> None:
    assert from_settings(Settings()) is default_token_counter()


def whole_text_spans(text: str) -> list[tuple[int, int]]:
    tokenizer = Tokenizer.from_file(str(_asset_path()))
    tokenizer.no_truncation()
    tokenizer.no_padding()
    return list(tokenizer.encode(text, add_special_tokens=False).offsets)


@pytest.mark.parametrize(
    "text",
    [
        " ".join(["Héllo wörld 😀 日本語です。 e\u0301te\u0301 internationalisation"] * 4000),
        "\n".join(["line with words"] * 8000),
        "x" * (SEGMENT_CHARS + 10) + " tail words",  # no whitespace for a whole segment
        "ab\x1ccd\u3000" * 20000,  # \x1c is deleted by BERT, not a split point
    ],
    ids=["mixed-unicode", "lines", "unbroken", "control-chars"],
)
def test_long_texts_tokenise_in_segments_exactly_as_a_whole(text: str) -> None:
    assert len(text) > SEGMENT_CHARS
    assert default_token_counter().token_spans(text) == whole_text_spans(text)
