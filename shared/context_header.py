"""The context header a chunk is embedded with: ``Title › Section › Subsection``.

A chunk of a reference page ("Returns a list of the words …") says little on
its own about *which* page and section it belongs to, so a question naming
the function ranks the page's attribute tables above it. The embedder
therefore sees the document title and section path first, then the chunk
text; the chunk's stored text (what users and the chat model read) stays
clean. Keyword search sees the same title and section as fields of their own.

The header is kept short (``HEADER_TOKENS``) so that header + chunk fit the
embedder's 256-token window: the chunker leaves room for it.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Literal

from shared.documents import Chunk
from shared.ports import TokenCounter

ContextHeader = Literal["none", "title", "title_section"]
HEADER_VERSION = "1"
SEPARATOR = " › "
# Tokens reserved for the header inside the 254-token window.
HEADER_TOKENS = 32
# Loaders join section paths with " > "; Sphinx and friends end headings with a
# permalink sign that means nothing to a reader.
_PATH_SPLIT = re.compile(r"\s+>\s+")
_PERMALINK = re.compile(r"[¶#§]+\s*$")


def _clean(part: str) -> str:
    return " ".join(_PERMALINK.sub("", part).split())


def header_parts(title: str | None, section: str | None, mode: ContextHeader) -> list[str]:
    """Title, then the section path, without empty parts or a repeated title."""
    if mode == "none":
        return []
    parts = [_clean(title)] if title and _clean(title) else []
    if mode == "title_section" and section:
        for part in (_clean(p) for p in _PATH_SPLIT.split(section)):
            # The page's own H1 usually repeats (the start of) the title.
            if part and not (parts and parts[-1].lower().startswith(part.lower())):
                parts.append(part)
    return parts


class HeaderBuilder:
    """Builds and caches headers (chunks of one section share theirs), cut to
    ``HEADER_TOKENS`` tokens of the product's tokenizer."""

    def __init__(self, mode: ContextHeader, counter: TokenCounter, *, line: bool = False) -> None:
        self.mode = mode
        # line: the header on a line of its own before the text with its
        # whitespace collapsed (chunk strategy "words", the naive yardstick's
        # form). The embedder reads the same tokens either way (WordPiece
        # splits on any whitespace); the form keeps cached vectors shared.
        self._line = line
        self._counter = counter
        self._header = lru_cache(maxsize=1024)(self._build)

    def _build(self, title: str | None, section: str | None) -> str:
        parts = header_parts(title, section, self.mode)
        # Too long: keep the title and the innermost sections, drop the middle.
        while len(parts) > 2 and self._tokens(SEPARATOR.join(parts)) > HEADER_TOKENS:
            del parts[1]
        header = SEPARATOR.join(parts)
        spans = self._counter.token_spans(header)
        if len(spans) > HEADER_TOKENS:
            header = header[: spans[HEADER_TOKENS - 1][1]]
        return header

    def _tokens(self, text: str) -> int:
        return len(self._counter.token_spans(text))

    def header(self, chunk: Chunk) -> str:
        return self._header(chunk.title, chunk.section)

    def embedding_text(self, chunk: Chunk) -> str:
        """What the embedder reads for ``chunk``: header, blank line, text (up to
        ``embedded_end`` when the chunk carries context beyond its window)."""
        text = embedded_text(chunk)
        header = self.header(chunk) if self.mode != "none" else ""
        if self._line:
            text = " ".join(text.split())
            return f"{header}\n{text}" if header else text
        return f"{header}\n\n{text}" if header else text


def embedded_text(chunk: Chunk) -> str:
    """The part of the chunk's text that is embedded."""
    if chunk.embedded_end is None:
        return chunk.text
    return chunk.text[: chunk.embedded_end - chunk.start]
