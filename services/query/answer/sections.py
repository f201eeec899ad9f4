"""Page ranking by the section path: a third ranking beside k-NN and BM25.

A chunk's vector is of its text under a short ``Title › Section`` header, so
when a page's chunks are long and varied the page a question names can still
rank below another page's chunk that happens to share its words (issue #25:
"split a shell-like string" returning the argument parser's page). Here the
candidates already found are ordered by how close the question is to their
header *alone*, and that order joins the fusion with its own weight
(``QuerySettings.section_weight``): a chunk under the section the question is
about moves up, one under an unrelated page moves down. Nothing new is
retrieved, so the scope and filters of the first searches hold.

Header vectors are embedded at query time (chunks of one section share one;
a few tens of short texts per question) and kept in a bounded in-process
cache, so a warm query service rarely embeds any. Measured in
docs/evaluation.md ("Index side and page ranking").
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import replace

import numpy as np

from shared.context_header import SEPARATOR, header_parts
from shared.documents import Chunk, SearchHit, Vector
from shared.ports import Embedder

# Headers cut here (the indexer's header is at most 32 tokens, ~150 characters).
MAX_HEADER_CHARS = 200
CACHE_SIZE = 4096


def section_header(chunk: Chunk) -> str:
    """``Title › Section › Subsection`` of a chunk, as its context header reads."""
    return SEPARATOR.join(header_parts(chunk.title, chunk.section, "title_section"))[
        :MAX_HEADER_CHARS
    ]


def add_ranking(
    hits: Sequence[SearchHit], ranked: Sequence[SearchHit], rrf_k: int, weight: float
) -> list[SearchHit]:
    """``hits`` (fused scores) with ``weight / (rrf_k + rank)`` added from
    ``ranked`` (the same chunks in another order), re-sorted; stable on ties."""
    rank = {hit.chunk.chunk_id: r for r, hit in enumerate(ranked, start=1)}
    rescored = [
        replace(
            hit,
            score=hit.score + weight / (rrf_k + rank[hit.chunk.chunk_id]),
            rank_sources=(*hit.rank_sources, "section"),
        )
        if hit.chunk.chunk_id in rank
        else hit
        for hit in hits
    ]
    return sorted(rescored, key=lambda hit: hit.score, reverse=True)


def as_rank_scores(hits: Sequence[SearchHit], rrf_k: int) -> list[SearchHit]:
    """A single ranking (k-NN mode's cosine scores) as reciprocal-rank scores,
    so that another ranking can be added on the same scale."""
    return [replace(hit, score=1.0 / (rrf_k + r)) for r, hit in enumerate(hits, start=1)]


class SectionRanker:
    """Orders candidates by question-to-header similarity; caches header vectors."""

    def __init__(self, embedder: Embedder, cache_size: int = CACHE_SIZE) -> None:
        self._embedder = embedder
        self._cache: OrderedDict[str, Vector] = OrderedDict()
        self._cache_size = cache_size

    async def ranked(self, question: Vector, hits: Sequence[SearchHit]) -> list[SearchHit]:
        headers = [section_header(hit.chunk) for hit in hits]
        vectors = await self._vectors(headers)
        scores = [float(np.dot(vectors[h], question)) if h else -1.0 for h in headers]
        order = sorted(range(len(hits)), key=lambda i: scores[i], reverse=True)
        return [hits[i] for i in order]

    async def _vectors(self, headers: Sequence[str]) -> dict[str, Vector]:
        wanted = list(dict.fromkeys(h for h in headers if h))
        missing = [h for h in wanted if h not in self._cache]
        if missing:
            fresh = await self._embedder.embed_documents(missing)
            for header, vector in zip(missing, fresh, strict=True):
                self._cache[header] = np.asarray(vector, dtype=np.float32)
        found = {}
        for header in wanted:
            self._cache.move_to_end(header)
            found[header] = self._cache[header]
        while len(self._cache) > self._cache_size:
            self._cache.popitem(last=False)
        return found
