"""TokenCounter for all-MiniLM-L6-v2: its WordPiece tokenizer via ``tokenizers``.

The tokenizer definition ships in ``shared/assets/minilm-tokenizer.json`` so
chunking needs neither the model weights nor a hub download. Chunks are sized
with this tokenizer whatever embedder is configured: it is the default
(in-process) model's window, and remote embedders have larger windows.
"""

from __future__ import annotations

from functools import lru_cache
from importlib import resources
from pathlib import Path

from tokenizers import Tokenizer

from shared.settings import Settings

ASSET = "minilm-tokenizer.json"


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
        encoding = self._tokenizer.encode(text, add_special_tokens=False)
        return list(encoding.offsets)

    def count(self, text: str) -> int:
        return len(self._tokenizer.encode(text, add_special_tokens=False).ids)


@lru_cache(maxsize=1)
def default_token_counter() -> WordPieceTokenCounter:
    """The bundled tokenizer, loaded once per process (about 0.1 s)."""
    return WordPieceTokenCounter.from_file(_asset_path())


def from_settings(settings: Settings) -> WordPieceTokenCounter:
    del settings  # one tokenizer for now; the argument keeps the factory shape
    return default_token_counter()
