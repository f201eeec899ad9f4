"""The bundled all-MiniLM-L6-v2 tokenizer as a TokenCounter."""

from __future__ import annotations

from itertools import pairwise

from shared.adapters.wordpiece import default_token_counter, from_settings
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
