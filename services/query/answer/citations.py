"""Which sources an answer cited. Pure functions.

Decision (documented in the protocol's ``Citation``): the ``sources`` event
lists every source the prompt held. Cited ones come first, in the order of
their number, with ``n`` = the ``[n]`` the answer used and ``cited=true``;
the rest follow in retrieval order with ``n=null`` and ``cited=false``.
``number`` is every source's number in the prompt.

"Cited" means "supports at least one answer sentence" when the answer was
attributed (``services.query.answer.attribution``); without attribution (cancelled
answers, attribution failed) it falls back to the ``[n]`` markers written.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Literal

from services.query.answer.text import markers_in
from shared.documents import SearchHit
from shared.protocol import Citation


def cited_numbers(answer: str, available: int) -> set[int]:
    """The source numbers the answer cites ([1], [1, 3], [Source 2]...);
    numbers without a source are ignored."""
    return {n for n in markers_in(answer) if 1 <= n <= available}


def excerpt(text: str, limit: int) -> str:
    text = " ".join(text.split())
    if len(text) <= limit:
        return text
    cut = text[: limit + 1].rsplit(" ", 1)[0]  # a space right after the limit is a word end
    if not cut or len(cut) > limit:
        cut = text[:limit]
    return cut + "…"


def build_citations(
    sources: Sequence[SearchHit],
    answer: str,
    excerpt_chars: int,
    supported: set[int] | None = None,
    reach: Mapping[int, int] | None = None,
) -> list[Citation]:
    """``sources[i]`` is prompt source number ``i + 1``; ``supported`` (the
    numbers that back a sentence) replaces the markers when given; ``reach``:
    per source number, how far its excerpt must go to hold the passages that
    back the answer's sentences (offsets in the collapsed chunk text)."""
    used = cited_numbers(answer, len(sources)) if supported is None else supported
    reach = reach or {}
    cited = [
        _citation(hit, n, True, max(excerpt_chars, reach.get(n, 0)))
        for n, hit in enumerate(sources, 1)
        if n in used
    ]
    unused = [
        _citation(hit, n, False, excerpt_chars) for n, hit in enumerate(sources, 1) if n not in used
    ]
    return cited + unused


def _citation(hit: SearchHit, number: int, cited: bool, excerpt_chars: int) -> Citation:
    chunk = hit.chunk
    return Citation(
        n=number if cited else None,
        cited=cited,
        number=number,
        doc_id=chunk.doc_id,
        title=chunk.title,
        uri=chunk.source_uri,
        page=chunk.page,
        excerpt=excerpt(chunk.text, excerpt_chars),
        score=hit.score,
        found_by=found_by(hit),
    )


def found_by(hit: SearchHit) -> list[Literal["keyword", "vector"]]:
    """The searches that returned the hit (hybrid fusion records them; a k-NN
    search alone records none)."""
    names = hit.rank_sources or ("knn",)
    return [_SEARCHES[name] for name in _SEARCHES if name in names]


_SEARCHES: dict[str, Literal["keyword", "vector"]] = {"keyword": "keyword", "knn": "vector"}
