"""Which sources an answer cited. Pure functions.

Decision (documented in the protocol's ``Citation``): the ``sources`` event
lists every source the prompt held. Cited ones come first, in the order of
their number, with ``n`` = the ``[n]`` the answer used and ``cited=true``;
the rest follow in retrieval order with ``n=null`` and ``cited=false``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from shared.documents import SearchHit
from shared.protocol import Citation

# [1], [1, 3], [1][2], [Source 2], [source 1, 2]
_BRACKET = re.compile(r"\[(?:sources?\s*)?(\d+(?:\s*,\s*\d+)*)\]", re.IGNORECASE)


def cited_numbers(answer: str, available: int) -> set[int]:
    """The source numbers the answer cites; numbers without a source are ignored."""
    found: set[int] = set()
    for match in _BRACKET.finditer(answer):
        for part in match.group(1).split(","):
            n = int(part)
            if 1 <= n <= available:
                found.add(n)
    return found


def excerpt(text: str, limit: int) -> str:
    text = " ".join(text.split())
    if len(text) <= limit:
        return text
    cut = text[: limit + 1].rsplit(" ", 1)[0]  # a space right after the limit is a word end
    if not cut or len(cut) > limit:
        cut = text[:limit]
    return cut + "…"


def build_citations(
    sources: Sequence[SearchHit], answer: str, excerpt_chars: int
) -> list[Citation]:
    """``sources[i]`` is prompt source number ``i + 1``."""
    used = cited_numbers(answer, len(sources))
    cited = [_citation(hit, n, excerpt_chars) for n, hit in enumerate(sources, 1) if n in used]
    unused = [
        _citation(hit, None, excerpt_chars) for n, hit in enumerate(sources, 1) if n not in used
    ]
    return cited + unused


def _citation(hit: SearchHit, n: int | None, excerpt_chars: int) -> Citation:
    chunk = hit.chunk
    return Citation(
        n=n,
        cited=n is not None,
        doc_id=chunk.doc_id,
        title=chunk.title,
        uri=chunk.source_uri,
        page=chunk.page,
        excerpt=excerpt(chunk.text, excerpt_chars),
        score=hit.score,
    )
