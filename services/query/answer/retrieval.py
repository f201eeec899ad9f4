"""Retrieval: k-NN or hybrid (BM25 + k-NN fused by reciprocal rank), then
near-duplicate removal and a per-document cap. Pure steps + one thin class."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Literal

import numpy as np

from services.query.answer.expansion import Feedback, expansion_terms
from services.query.answer.rewrite import Rewriter
from services.query.answer.sections import SectionRanker, add_ranking, as_rank_scores
from shared.access import Access
from shared.context_header import embedded_text
from shared.documents import SearchHit, Vector
from shared.errors import NoDocumentsIndexed, RagError, UnknownFilterField
from shared.ports import Embedder, Filters, VectorIndex
from shared.settings import QuerySettings

SearchMode = Literal["knn", "hybrid"]
_WORD = re.compile(r"\w+", re.UNICODE)


class RetrievalFailed(RagError):
    """Embedding the question or searching the index failed."""

    code = "retrieval_failed"


def reciprocal_rank_fusion(
    rankings: Sequence[tuple[str, Sequence[SearchHit]]],
    rrf_k: int,
    weights: Mapping[str, float] | None = None,
) -> list[SearchHit]:
    """Fuse named rankings: score = sum over rankings of w / (rrf_k + rank), rank
    from 1, where w is the ranking's weight (default 1).

    RRF ignores the raw scores, which live on incomparable scales (BM25 vs.
    cosine). A hit keeps the chunk of its first appearance and records which
    retrievers found it in ``rank_sources``.
    """
    fused: dict[str, SearchHit] = {}
    scores: dict[str, float] = {}
    for name, hits in rankings:
        weight = (weights or {}).get(name, 1.0)
        for rank, hit in enumerate(hits, start=1):
            key = hit.chunk.chunk_id
            scores[key] = scores.get(key, 0.0) + weight / (rrf_k + rank)
            seen = fused.get(key)
            sources = (seen.rank_sources if seen else ()) + (name,)
            fused[key] = replace(seen or hit, rank_sources=sources)
    ordered = sorted(fused, key=lambda key: scores[key], reverse=True)
    return [replace(fused[key], score=scores[key]) for key in ordered]


def word_set(text: str) -> frozenset[str]:
    return frozenset(_WORD.findall(text.lower()))


def jaccard(a: frozenset[str], b: frozenset[str]) -> float:
    if not a and not b:
        return 1.0
    return len(a & b) / len(a | b)


def drop_near_duplicates(hits: Sequence[SearchHit], threshold: float) -> list[SearchHit]:
    """Keep the best of chunks whose word sets overlap at least ``threshold``
    (Jaccard). Catches the same text indexed under two doc ids; ordinary
    chunk overlap (a few dozen tokens) stays far below the threshold."""
    kept: list[tuple[SearchHit, frozenset[str]]] = []
    for hit in hits:
        words = word_set(hit.chunk.text)
        if all(jaccard(words, other) < threshold for _, other in kept):
            kept.append((hit, words))
    return [hit for hit, _ in kept]


def cap_per_document(hits: Sequence[SearchHit], max_per_doc: int) -> list[SearchHit]:
    counts: dict[str, int] = {}
    kept = []
    for hit in hits:
        seen = counts.get(hit.chunk.doc_id, 0)
        if seen < max_per_doc:
            counts[hit.chunk.doc_id] = seen + 1
            kept.append(hit)
    return kept


def rocchio_vector(question: Vector, feedback: Vector, weight: float) -> Vector:
    """(1 - weight) q + weight centroid(feedback), unit length (vectors are
    compared by cosine)."""
    q = np.asarray(question, dtype=np.float32)
    centroid = np.asarray(feedback, dtype=np.float32).reshape(-1, q.shape[-1]).mean(axis=0)
    moved = (1 - weight) * q / (np.linalg.norm(q) or 1.0) + weight * centroid
    norm = float(np.linalg.norm(moved))
    return moved / norm if norm else q


class Retriever:
    def __init__(
        self,
        embedder: Embedder,
        index: VectorIndex,
        settings: QuerySettings,
        rewriter: Rewriter | None = None,
    ) -> None:
        self._embedder = embedder
        self._index = index
        self._settings = settings
        self._sections = SectionRanker(embedder)
        self._rewriter = rewriter

    async def retrieve(
        self, text: str, k: int, filters: Filters, mode: SearchMode, access: Access
    ) -> list[SearchHit]:
        """The best ``k`` distinct chunks ``access`` may read; raise RetrievalFailed
        on any failure. The scope goes into the index's own query (never a
        post-filter), so ``k`` hits come back however few chunks are readable."""
        # Over-fetch so that de-duplication and the per-document cap still leave k.
        candidates = max(k, self._settings.candidates)
        try:
            vector, rewritten = await asyncio.gather(
                self._embedder.embed_query(text), self._rewrite(text, mode)
            )
            hits = await self._search(text, vector, rewritten, candidates, filters, mode, access)
            if self._settings.section_weight > 0 and hits:
                hits = await self._with_sections(vector, hits, mode)
        except NoDocumentsIndexed:
            raise  # not a failure: the client is told to ingest first
        except Exception as exc:
            raise RetrievalFailed(f"retrieval failed: {type(exc).__name__}: {exc}") from exc
        if not hits and filters:
            await self._check_filter_fields(filters)
        hits = drop_near_duplicates(hits, self._settings.near_duplicate_threshold)
        return cap_per_document(hits, self._settings.max_chunks_per_doc)[:k]

    async def _check_filter_fields(self, filters: Filters) -> None:
        """Nothing matched: say so if a filter names a field no document has
        (``doc_id``, a typo) rather than answer from no sources. Asked only on
        an empty result, so a search that finds something pays nothing."""
        try:
            known = await self._index.metadata_keys()
        except Exception as exc:
            raise RetrievalFailed(f"retrieval failed: {type(exc).__name__}: {exc}") from exc
        unknown = sorted(set(filters) - known)
        if unknown:
            raise UnknownFilterField(unknown)

    async def _with_sections(
        self, vector: Vector, hits: list[SearchHit], mode: SearchMode
    ) -> list[SearchHit]:
        """The candidates re-fused with their order by section path (sections.py)."""
        rrf_k = self._settings.rrf_k
        fused = as_rank_scores(hits, rrf_k) if mode == "knn" else hits
        ranked = await self._sections.ranked(vector, hits)
        return add_ranking(fused, ranked, rrf_k, self._settings.section_weight)

    async def _search(
        self,
        text: str,
        vector: Vector,
        rewritten: Sequence[tuple[str, float]],
        candidates: int,
        filters: Filters,
        mode: SearchMode,
        access: Access,
    ) -> list[SearchHit]:
        if mode == "knn":
            knn = await self._index.knn_search(vector, candidates, filters, access)
            moved = await self._rocchio(vector, knn)
            if moved is None:
                return knn
            return await self._index.knn_search(moved, candidates, filters, access)
        knn, keyword = await asyncio.gather(
            self._index.knn_search(vector, candidates, filters, access),
            self._index.keyword_search(text, candidates, filters, access, rewritten),
        )
        fused = self._fuse(knn, keyword)
        added = self._feedback_terms(text, fused)
        moved = await self._rocchio(vector, fused)
        if not added and moved is None:
            return fused
        # Second searches with the feedback (words, moved vector) where it is on.
        if moved is not None:
            knn = await self._index.knn_search(moved, candidates, filters, access)
        if added:
            both = dict(rewritten)
            for word, weight in added:
                both.setdefault(word, weight)
            keyword = await self._index.keyword_search(
                text, candidates, filters, access, list(both.items())
            )
        return self._fuse(knn, keyword)

    async def _rocchio(self, vector: Vector, ranked: Sequence[SearchHit]) -> Vector | None:
        """Rocchio on the k-NN side: the question's vector moved toward the
        centroid of the best first-pass chunks (embedded again: hits carry no
        vectors), ``rocchio_weight`` of the way; None when off."""
        settings = self._settings
        top = ranked[: settings.rocchio_chunks]
        if not top:
            return None
        vectors = await self._embedder.embed_documents([embedded_text(h.chunk) for h in top])
        return rocchio_vector(vector, vectors, settings.rocchio_weight)

    async def _rewrite(self, text: str, mode: SearchMode) -> list[tuple[str, float]]:
        """The chat model's search words (hybrid only: k-NN searches no keywords)."""
        if self._rewriter is None or mode == "knn":
            return []
        return await self._rewriter(text)

    def _fuse(self, knn: Sequence[SearchHit], keyword: Sequence[SearchHit]) -> list[SearchHit]:
        return reciprocal_rank_fusion(
            [("knn", knn), ("keyword", keyword)],
            self._settings.rrf_k,
            {"keyword": self._settings.keyword_weight},
        )

    def _feedback_terms(self, text: str, fused: Sequence[SearchHit]) -> list[tuple[str, float]]:
        settings = self._settings
        if settings.feedback_terms <= 0:
            return []
        feedback = [Feedback(h.chunk, h.score) for h in fused[: settings.feedback_chunks]]
        return expansion_terms(
            text,
            feedback,
            [h.chunk for h in fused],
            settings.feedback_terms,
            settings.feedback_weight,
        )
