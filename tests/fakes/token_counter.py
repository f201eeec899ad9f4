"""A character-level fake TokenCounter: every non-whitespace character is one token.

Stands in for "some other tokenizer" in chunker tests: unlike WordPiece it
never folds a long word into one [UNK], so it exercises the chunker's
last-resort mid-word cut.
"""

from __future__ import annotations


class CharTokenCounter:
    def token_spans(self, text: str) -> list[tuple[int, int]]:
        return [(i, i + 1) for i, char in enumerate(text) if not char.isspace()]
