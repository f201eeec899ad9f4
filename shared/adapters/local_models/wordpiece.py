"""TokenCounter for all-MiniLM-L6-v2: its WordPiece tokenizer via ``tokenizers``.

The tokenizer definition ships in ``shared/assets/minilm-tokenizer.json`` so
chunking needs neither the model weights nor a hub download. Chunks are sized
with this tokenizer whatever embedder is configured: it is the default
(in-process) model's window, and remote embedders have larger windows.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from functools import lru_cache
from importlib import resources
from pathlib import Path

from tokenizers import Tokenizer

from shared.chunking import BERT_WHITESPACE
from shared.settings import Settings

ASSET = "minilm-tokenizer.json"
SEGMENT_CHARS = 1 << 16
# Where BERT's pre-tokenizer splits (Unicode White_Space that its normaliser
# keeps): not Python's \s, which also matches control characters BERT deletes.
_BERT_WHITESPACE = re.compile(f"[{re.escape(BERT_WHITESPACE)}]")


def _asset_path() -> Path:
    return Path(str(resources.files("shared") / "assets" / ASSET))


class WordPieceTokenCounter:
    """Character spans of the model's tokens, without [CLS]/[SEP]."""

    def __init__(self, tokenizer: Tokenizer) -> None:
        # The shipped tokenizer.json truncates and pads to 128 tokens (the
        # model's training length); counting needs every token of a whole
        # document and no padding.
        tokenizer.no_truncation()
        tokenizer.no_padding()
        self._tokenizer = tokenizer

    @classmethod
    def from_file(cls, path: Path) -> WordPieceTokenCounter:
        return cls(Tokenizer.from_file(str(path)))

    def token_spans(self, text: str) -> list[tuple[int, int]]:
        if len(text) <= SEGMENT_CHARS:
            return list(self._tokenizer.encode(text, add_special_tokens=False).offsets)
        # Long texts: tokenise segments in parallel (the library's thread pool).
        # Segments end at whitespace, where BERT always splits, so the tokens are
        # exactly those of the whole text.
        segments = list(_segments(text))
        encodings = self._tokenizer.encode_batch(
            [text[start:end] for start, end in segments], add_special_tokens=False
        )
        spans: list[tuple[int, int]] = []
        for (start, _), encoding in zip(segments, encodings, strict=True):
            spans.extend([(a + start, b + start) for a, b in encoding.offsets])
        return spans

    def count(self, text: str) -> int:
        return len(self._tokenizer.encode(text, add_special_tokens=False).ids)


def _segments(text: str) -> Iterator[tuple[int, int]]:
    """``(start, end)`` pieces of about SEGMENT_CHARS, each ending before whitespace."""
    position, length = 0, len(text)
    while position < length:
        end = position + SEGMENT_CHARS
        if end >= length:
            yield position, length
            return
        cut = max(text.rfind(" ", position, end), text.rfind("\n", position, end))
        if cut <= position:  # no space or newline in the window: next whitespace of any kind
            match = _BERT_WHITESPACE.search(text, end)
            cut = match.start() if match else length
        yield position, cut
        position = cut


@lru_cache(maxsize=1)
def default_token_counter() -> WordPieceTokenCounter:
    """The bundled tokenizer, loaded once per process (about 0.1 s)."""
    return WordPieceTokenCounter.from_file(_asset_path())


def from_settings(settings: Settings) -> WordPieceTokenCounter:
    del settings  # one tokenizer for now; the argument keeps the factory shape
    return default_token_counter()
