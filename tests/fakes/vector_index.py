"""An in-memory VectorIndex for logic tests, with failure injection.

Store ids are assigned by the fake (as AOSS does). ``fail_writes`` /
``fail_deletes`` raise the given error from the next call(s); ``write_limit``
writes only that many chunks of the next write before raising, to simulate a
crash part-way.
"""

from __future__ import annotations

import itertools
import math
import re
from collections.abc import Sequence
from typing import Any

import numpy as np

from shared.access import Access
from shared.documents import EmbeddedChunk, SearchHit, Vector
from shared.errors import DimensionMismatch, IndexUnavailable, NoDocumentsIndexed
from shared.ports import Filters


class FakeVectorIndex:
    def __init__(self) -> None:
        self.rows: dict[str, EmbeddedChunk] = {}
        self.dimension: int | None = None
        self.fail_writes: list[Exception] = []
        self.fail_deletes: list[Exception] = []
        self.write_limit: int | None = None
        self.writes = 0
        self.closed = False
        self.searched_with: list[Access] = []  # the scope of every search, in order
        self.expansions: list[tuple[tuple[str, float], ...]] = []  # each keyword search's
        self._ids = itertools.count(1)

    async def ensure_index(self, dimension: int) -> None:
        if self.dimension is not None and self.dimension != dimension:
            raise DimensionMismatch(f"{self.dimension} != {dimension}")
        self.dimension = dimension

    async def write(self, chunks: Sequence[EmbeddedChunk]) -> None:
        if self.fail_writes:
            raise self.fail_writes.pop(0)
        self.writes += 1
        limit, self.write_limit = self.write_limit, None
        for n, chunk in enumerate(chunks):
            if limit is not None and n >= limit:
                raise IndexUnavailable(f"the write stopped after {limit} chunk(s)")
            self.rows[f"id-{next(self._ids)}"] = chunk

    async def generations(self, doc_id: str) -> dict[str, int]:
        counts: dict[str, int] = {}
        for row in self.rows.values():
            if row.chunk.doc_id == doc_id:
                counts[row.chunk.generation] = counts.get(row.chunk.generation, 0) + 1
        return counts

    async def doc_ids(self) -> list[str]:
        return sorted({row.chunk.doc_id for row in self.rows.values()})

    async def chunk_ids(self, doc_id: str, except_generation: str | None = None) -> list[str]:
        return [
            store_id
            for store_id, row in self.rows.items()
            if row.chunk.doc_id == doc_id and row.chunk.generation != except_generation
        ]

    async def delete_chunks(self, store_ids: Sequence[str]) -> int:
        if self.fail_deletes:
            raise self.fail_deletes.pop(0)
        for store_id in store_ids:
            self.rows.pop(store_id, None)
        return len(store_ids)

    def chunks_of(self, doc_id: str) -> list[EmbeddedChunk]:
        found = [r for r in self.rows.values() if r.chunk.doc_id == doc_id]
        return sorted(found, key=lambda r: (r.chunk.generation, r.chunk.ordinal))

    async def set_groups(self, doc_id: str, groups: Sequence[str] | None) -> int:
        relabelled = 0
        for store_id, row in list(self.rows.items()):
            if row.chunk.doc_id == doc_id:
                chunk = row.chunk.model_copy(update={"groups": groups})
                self.rows[store_id] = EmbeddedChunk(chunk, row.vector)
                relabelled += 1
        return relabelled

    async def metadata_keys(self) -> frozenset[str]:
        return frozenset(key for row in self.rows.values() for key in row.chunk.metadata)

    async def readable(self, doc_ids: Sequence[str], access: Access) -> set[str]:
        return {
            row.chunk.doc_id
            for row in self.rows.values()
            if row.chunk.doc_id in doc_ids and access.may_read(row.chunk.groups)
        }

    async def knn_search(
        self, vector: Vector, k: int, filters: Filters, access: Access
    ) -> list[SearchHit]:
        self.searched_with.append(access)
        self._require_documents()
        scored = [
            SearchHit(row.chunk, float(np.dot(row.vector, vector)), store_id)
            for store_id, row in self._visible(filters, access)
        ]
        return sorted(scored, key=lambda h: -h.score)[:k]

    async def keyword_search(
        self,
        text: str,
        k: int,
        filters: Filters,
        access: Access,
        expansion: Sequence[tuple[str, float]] = (),
    ) -> list[SearchHit]:
        """BM25's ranking in miniature: rarer words weigh more; query syntax
        (operators, quotes, brackets) is words like any other, as the adapters do.
        Expansion words count their weight x their rarity."""
        self.searched_with.append(access)
        self.expansions.append(tuple(expansion))
        self._require_documents()
        boost = {w: 1.0 for w in _words(text)}
        for word, extra in expansion:
            boost.setdefault(word.lower(), extra)
        words = set(boost)
        rows = list(self.rows.values())
        weight = {
            w: boost[w] * math.log(1 + (len(rows) - df + 0.5) / (df + 0.5))
            for w in words
            for df in [sum(w in _words(r.chunk.text) for r in rows)]
        }
        hits = [
            SearchHit(row.chunk, sum(weight[w] for w in words & set(_words(row.chunk.text))), sid)
            for sid, row in self._visible(filters, access)
        ]
        return sorted((h for h in hits if h.score > 0), key=lambda h: -h.score)[:k]

    def _require_documents(self) -> None:
        # As the adapters: before the first document, "nothing indexed", not [].
        if not self.rows:
            raise NoDocumentsIndexed("no documents have been indexed yet")

    def _visible(self, filters: Filters, access: Access) -> list[tuple[str, EmbeddedChunk]]:
        return [
            (store_id, row)
            for store_id, row in self.rows.items()
            if access.may_read(row.chunk.groups) and _matches(row.chunk.metadata, filters)
        ]

    async def close(self) -> None:
        self.closed = True


def _words(text: str) -> list[str]:
    return re.findall(r"\w+", text.lower())


def _matches(metadata: dict[str, Any], filters: Filters) -> bool:
    """A filter value (or any of a list of them) equals the field's value (or
    one of its values, for a multi-valued field), as the adapters match."""

    def values(value: Any) -> list[Any]:
        return list(value) if isinstance(value, list | tuple) else [value]

    return all(
        any(wanted in values(metadata.get(key)) for wanted in values(value))
        for key, value in filters.items()
    )
