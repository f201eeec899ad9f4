"""The embedded VectorIndex: one SQLite file, sqlite-vec distances, FTS5 bm25.

k-NN is exact: the access scope and the metadata filters are applied first
(SQL WHERE), then the remaining chunks are ranked by ``vec_distance_cosine``,
so a selective filter still returns k results. Each chunk's access terms
(``shared.access``) live in a side table keyed by term, so a caller who may
read 1 % of the chunks makes SQLite visit (and rank) only that 1 %. Keyword
search is FTS5 with bm25 ranking over the chunk text. Idempotency follows
the OpenSearch adapter: every chunk carries ``doc_id`` and ``generation``;
a re-index writes the new generation and then deletes the others by the ids
it saw (``chunk_ids`` before the write, then ``delete_chunks``).

Scores: k-NN reports cosine similarity (vectors are L2-normalised), keyword
search reports ``-bm25`` over text, title (x2) and section (x1.5), so higher
is better, as with OpenSearch's scores.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import apsw
import numpy as np

from shared.access import Access, access_terms
from shared.adapters.sqlite.common import INDEX_DB, SqliteWorker, rows, write_transaction
from shared.documents import Chunk, EmbeddedChunk, SearchHit, Vector
from shared.errors import (
    ConfigurationError,
    DimensionMismatch,
    IndexWriteError,
    NoDocumentsIndexed,
)
from shared.ingest import METADATA_KEY_PATTERN
from shared.ports import Filters
from shared.settings import Settings

_KEY = re.compile(METADATA_KEY_PATTERN)
_WORD = re.compile(r"\w+", re.UNICODE)
_MAX_QUERY_TERMS = 64
_DOC_ROWS = "SELECT id FROM chunks WHERE doc_id = ?"

SCHEMA = """
CREATE TABLE IF NOT EXISTS index_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS chunks (
    id INTEGER PRIMARY KEY,
    chunk_id TEXT NOT NULL UNIQUE,
    doc_id TEXT NOT NULL,
    generation TEXT NOT NULL,
    ordinal INTEGER NOT NULL,
    text TEXT NOT NULL,
    title TEXT,
    section TEXT,
    chunk_json TEXT NOT NULL,
    embedding BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS chunks_doc ON chunks (doc_id, generation);
CREATE VIRTUAL TABLE IF NOT EXISTS chunks_fts USING fts5(
    text, title, section, content='chunks', content_rowid='id',
    tokenize='unicode61 remove_diacritics 2'
);
CREATE TRIGGER IF NOT EXISTS chunks_ai AFTER INSERT ON chunks BEGIN
    INSERT INTO chunks_fts(rowid, text, title, section)
    VALUES (new.id, new.text, new.title, new.section);
END;
CREATE TRIGGER IF NOT EXISTS chunks_ad AFTER DELETE ON chunks BEGIN
    INSERT INTO chunks_fts(chunks_fts, rowid, text, title, section)
    VALUES ('delete', old.id, old.text, old.title, old.section);
END;
CREATE TABLE IF NOT EXISTS chunk_access (
    term TEXT NOT NULL,
    id INTEGER NOT NULL,
    PRIMARY KEY (term, id)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS chunk_access_id ON chunk_access (id);
CREATE TRIGGER IF NOT EXISTS chunks_access_ad AFTER DELETE ON chunks BEGIN
    DELETE FROM chunk_access WHERE id = old.id;
END;
-- Chunks stored before access lists existed are readable by everyone (once).
INSERT INTO chunk_access (term, id)
    SELECT '*', id FROM chunks
    WHERE NOT EXISTS (SELECT 1 FROM index_meta WHERE key = 'access_terms');
INSERT OR IGNORE INTO index_meta (key, value) VALUES ('access_terms', '1');
"""


# ---- pure builders ----------------------------------------------------------


def build_filter_sql(filters: Filters, alias: str = "c") -> tuple[str, list[Any]]:
    """``AND``-joined conditions on ``metadata.<key>``.

    A value list matches any of its values; a stored list matches if any of
    its elements matches (OpenSearch term semantics on multi-valued fields).
    """
    clauses: list[str] = []
    params: list[Any] = []
    for key, wanted in filters.items():
        if not _KEY.match(key):
            raise ValueError(f"invalid filter key {key!r}")
        values = wanted if isinstance(wanted, list) else [wanted]
        if not values:
            clauses.append("0")
            continue
        marks = ", ".join("?" for _ in values)
        clauses.append(
            f"EXISTS (SELECT 1 FROM json_each({alias}.chunk_json, ?) AS m "
            f"WHERE m.value IN ({marks}))"
        )
        params.append(f'$.metadata."{key}"')
        params.extend(int(v) if isinstance(v, bool) else v for v in values)
    return (" AND ".join(clauses) or "1"), params


def build_access_sql(access: Access, alias: str = "c") -> tuple[str, list[Any]]:
    """The mandatory access condition; ``rowid IN (…)`` lets SQLite drive the
    scan from the term index instead of visiting every chunk."""
    if access.unrestricted:
        return "1", []
    terms = access.terms()
    marks = ", ".join("?" for _ in terms)
    return f"{alias}.id IN (SELECT id FROM chunk_access WHERE term IN ({marks}))", terms


def build_where(filters: Filters, access: Access, alias: str = "c") -> tuple[str, list[Any]]:
    """Access AND the client's filters: a filter can only narrow the scope."""
    access_sql, access_params = build_access_sql(access, alias)
    filter_sql, filter_params = build_filter_sql(filters, alias)
    return f"{access_sql} AND {filter_sql}", access_params + filter_params


def build_fts_query(text: str) -> str | None:
    """Quote every word and OR them (OpenSearch ``match`` semantics); None if
    the text has no words. Quoting keeps FTS5 operators in user text inert."""
    words = _WORD.findall(text.lower())[:_MAX_QUERY_TERMS]
    if not words:
        return None
    return " OR ".join(f'"{w}"' for w in dict.fromkeys(words))


def build_weighted_fts_query(
    text: str, expansion: Sequence[tuple[str, float]]
) -> tuple[str, list[float]] | None:
    """The question's words (weight 1 each) and the expansion's words (their
    own weights) as one OR query, and each phrase's weight in query order for
    ``weighted_bm25``. A word in both keeps the question's weight."""
    weights: dict[str, float] = dict.fromkeys(_WORD.findall(text.lower())[:_MAX_QUERY_TERMS], 1.0)
    for word, weight in expansion:
        for part in _WORD.findall(word.lower()):
            weights.setdefault(part, float(weight))
    if not weights:
        return None
    return " OR ".join(f'"{w}"' for w in weights), list(weights.values())


# FTS5's bm25 constants (sqlite's fts5_aux.c).
_BM25_K1 = 1.2
_BM25_B = 0.75


def weighted_bm25(api: apsw.FTS5ExtensionApi, *args: apsw.SQLiteValue) -> float:
    """FTS5's bm25 with a weight per phrase: ``weighted_bm25(fts, column
    weights..., phrase weights...)`` = -sum of weight x the phrase's bm25 term
    (negated like bm25, so ORDER BY ascending puts the best first). With every
    phrase weight 1 it is bm25 itself (tests/contract: same scores)."""
    columns = api.column_count
    column_weights = [float(a) for a in args[:columns]]  # type: ignore[arg-type]
    phrase_weights = [float(a) for a in args[columns:]]  # type: ignore[arg-type]
    data = api.aux_data
    if data is None:
        rows_total = api.row_count
        idf = []
        for phrase in range(api.phrase_count):
            hits = 0

            def count(_api: apsw.FTS5ExtensionApi, _closure: None) -> None:
                nonlocal hits
                hits += 1

            api.query_phrase(phrase, count, None)
            idf.append(max(1e-6, math.log((rows_total - hits + 0.5) / (hits + 0.5))))
        data = (idf, api.column_total_size(-1) / rows_total)
        api.aux_data = data
    idf, average = data
    length_norm = _BM25_K1 * (1 - _BM25_B + _BM25_B * api.column_size(-1) / average)
    score = 0.0
    for phrase, phrase_idf in enumerate(idf):
        freq = sum(
            (column_weights[c] if c < len(column_weights) else 1.0) * len(offsets)
            for c, offsets in enumerate(api.phrase_locations(phrase))
        )
        if freq:
            weight = phrase_weights[phrase] if phrase < len(phrase_weights) else 1.0
            score += weight * phrase_idf * freq * (_BM25_K1 + 1) / (freq + length_norm)
    return -score


def vector_blob(vector: Vector) -> bytes:
    return np.asarray(vector, dtype=np.float32).tobytes()


def _hit(row: tuple[Any, ...], source: str) -> SearchHit:
    chunk_json, score, chunk_id = row
    return SearchHit(
        chunk=Chunk.model_validate_json(chunk_json),
        score=float(score),
        store_id=str(chunk_id),
        rank_sources=(source,),
    )


# ---- the adapter ------------------------------------------------------------


class SqliteVectorIndex:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._db = SqliteWorker(path, schema=SCHEMA, load_vec=True, name="sqlite-index")

    def _dimension(self, conn: apsw.Connection) -> int | None:
        found = rows(conn, "SELECT value FROM index_meta WHERE key = 'dimension'")
        return int(found[0][0]) if found else None

    async def ensure_index(self, dimension: int) -> None:
        if dimension < 1:
            raise ConfigurationError(f"vector dimension must be positive, got {dimension}")

        def _ensure(conn: apsw.Connection) -> None:
            with write_transaction(conn):
                conn.execute(
                    "INSERT OR IGNORE INTO index_meta (key, value) VALUES ('dimension', ?)",
                    (str(dimension),),
                )
            existing = self._dimension(conn)
            if existing != dimension:
                raise DimensionMismatch(
                    f"the index at {self.path} holds {existing}-d vectors but the embedder "
                    f"makes {dimension}-d ones: use another data folder or delete it to re-index"
                )

        await self._db.run(_ensure)

    async def write(self, chunks: Sequence[EmbeddedChunk]) -> None:
        if not chunks:
            return
        await self.ensure_index(int(np.asarray(chunks[0].vector).shape[-1]))

        def _write(conn: apsw.Connection) -> None:
            dimension = self._dimension(conn)
            failures: list[str] = []
            with write_transaction(conn):
                for item in chunks:
                    size = int(np.asarray(item.vector).size)
                    if size != dimension:
                        failures.append(
                            f"{item.chunk.chunk_id}: vector has {size} dimensions, "
                            f"index expects {dimension}"
                        )
                        continue
                    self._insert(conn, item)
            if failures:
                raise IndexWriteError(f"{len(failures)} of {len(chunks)} chunks failed", failures)

        await self._db.run(_write)

    @staticmethod
    def _insert(conn: apsw.Connection, item: EmbeddedChunk) -> None:
        chunk = item.chunk
        # Delete-then-insert (not REPLACE) so the FTS delete trigger fires.
        conn.execute("DELETE FROM chunks WHERE chunk_id = ?", (chunk.chunk_id,))
        conn.execute(
            "INSERT INTO chunks (chunk_id, doc_id, generation, ordinal, text, title, section, "
            "chunk_json, embedding) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                chunk.chunk_id,
                chunk.doc_id,
                chunk.generation,
                chunk.ordinal,
                chunk.text,
                chunk.title,
                chunk.section,
                chunk.model_dump_json(),
                vector_blob(item.vector),
            ),
        )
        row_id = conn.last_insert_rowid()
        for term in access_terms(chunk.groups):
            conn.execute("INSERT INTO chunk_access (term, id) VALUES (?, ?)", (term, row_id))

    async def generations(self, doc_id: str) -> dict[str, int]:
        def _gens(conn: apsw.Connection) -> dict[str, int]:
            found = rows(
                conn,
                "SELECT generation, count(*) FROM chunks WHERE doc_id = ? GROUP BY generation",
                (doc_id,),
            )
            return {str(g): int(n) for g, n in found}

        return await self._db.run(_gens)

    async def doc_ids(self) -> list[str]:
        def _ids(conn: apsw.Connection) -> list[str]:
            return [str(r[0]) for r in rows(conn, "SELECT DISTINCT doc_id FROM chunks ORDER BY 1")]

        return await self._db.run(_ids)

    async def chunk_ids(self, doc_id: str, except_generation: str | None = None) -> list[str]:
        def _ids(conn: apsw.Connection) -> list[str]:
            found = rows(
                conn,
                "SELECT id FROM chunks WHERE doc_id = ? AND generation IS NOT ?",
                (doc_id, except_generation),
            )
            return [str(r[0]) for r in found]

        return await self._db.run(_ids)

    async def delete_chunks(self, store_ids: Sequence[str]) -> int:
        def _delete(conn: apsw.Connection) -> int:
            with write_transaction(conn):
                conn.executemany("DELETE FROM chunks WHERE id = ?", [(int(i),) for i in store_ids])
            return len(store_ids)

        return await self._db.run(_delete)

    async def set_groups(self, doc_id: str, groups: Sequence[str] | None) -> int:
        stored = json.dumps(None if groups is None else list(groups))
        terms = access_terms(groups)

        def _relabel(conn: apsw.Connection) -> int:
            with write_transaction(conn):
                ids = [int(r[0]) for r in rows(conn, _DOC_ROWS, (doc_id,))]
                for row_id in ids:
                    conn.execute("DELETE FROM chunk_access WHERE id = ?", (row_id,))
                    conn.executemany(
                        "INSERT INTO chunk_access (term, id) VALUES (?, ?)",
                        [(term, row_id) for term in terms],
                    )
                conn.execute(
                    "UPDATE chunks SET chunk_json = json_set(chunk_json, '$.groups', json(?)) "
                    "WHERE doc_id = ?",
                    (stored, doc_id),
                )
                return len(ids)

        return await self._db.run(_relabel)

    async def metadata_keys(self) -> frozenset[str]:
        def _keys(conn: apsw.Connection) -> frozenset[str]:
            found = rows(
                conn,
                "SELECT DISTINCT m.key FROM chunks AS c, "
                "json_each(c.chunk_json, '$.metadata') AS m",
            )
            return frozenset(str(row[0]) for row in found)

        return await self._db.run(_keys)

    async def readable(self, doc_ids: Sequence[str], access: Access) -> set[str]:
        if not doc_ids:
            return set()
        access_sql, params = build_access_sql(access)
        marks = ", ".join("?" for _ in doc_ids)

        def _readable(conn: apsw.Connection) -> set[str]:
            found = rows(
                conn,
                f"SELECT DISTINCT c.doc_id FROM chunks AS c WHERE c.doc_id IN ({marks}) "
                f"AND {access_sql}",
                (*doc_ids, *params),
            )
            return {str(r[0]) for r in found}

        return await self._db.run(_readable)

    async def knn_search(
        self, vector: Vector, k: int, filters: Filters, access: Access
    ) -> list[SearchHit]:
        where, params = build_where(filters, access)
        query = vector_blob(vector)

        def _knn(conn: apsw.Connection) -> list[SearchHit]:
            dimension = _require_documents(conn, self._dimension(conn))
            if len(query) != dimension * 4:
                raise DimensionMismatch(
                    f"query vector has {len(query) // 4} dimensions, index has {dimension}"
                )
            found = rows(
                conn,
                "SELECT chunk_json, 1.0 - vec_distance_cosine(embedding, ?) AS score, chunk_id "
                f"FROM chunks AS c WHERE {where} ORDER BY score DESC, chunk_id LIMIT ?",
                (query, *params, k),
            )
            return [_hit(r, "knn") for r in found]

        return await self._db.run(_knn)

    async def keyword_search(
        self,
        text: str,
        k: int,
        filters: Filters,
        access: Access,
        expansion: Sequence[tuple[str, float]] = (),
    ) -> list[SearchHit]:
        where, params = build_where(filters, access)
        # Same field weights as the OpenSearch adapter's multi_match.
        score_sql = "-bm25(chunks_fts, 1.0, 2.0, 1.5)"
        if expansion:
            weighted = build_weighted_fts_query(text, expansion)
            match = weighted[0] if weighted else None
            phrase_weights = weighted[1] if weighted else []
            score_sql = "-weighted_bm25(chunks_fts, 1.0, 2.0, 1.5, {})".format(
                ", ".join("?" * len(phrase_weights))
            )
        else:
            match, phrase_weights = build_fts_query(text), []

        def _keyword(conn: apsw.Connection) -> list[SearchHit]:
            _require_documents(conn, self._dimension(conn))
            if match is None:
                return []
            if expansion:
                conn.register_fts5_function("weighted_bm25", weighted_bm25)
            found = rows(
                conn,
                f"SELECT c.chunk_json, {score_sql} AS score, c.chunk_id "
                "FROM chunks_fts JOIN chunks AS c ON c.id = chunks_fts.rowid "
                f"WHERE chunks_fts MATCH ? AND {where} ORDER BY score DESC, c.chunk_id LIMIT ?",
                (*phrase_weights, match, *params, k),
            )
            return [_hit(r, "keyword") for r in found]

        return await self._db.run(_keyword)

    async def document_ids(self) -> dict[str, int]:
        """Chunk count per stored document (for ``rag docs`` and the page)."""

        def _ids(conn: apsw.Connection) -> dict[str, int]:
            found = rows(conn, "SELECT doc_id, count(*) FROM chunks GROUP BY doc_id")
            return {str(d): int(n) for d, n in found}

        return await self._db.run(_ids)

    async def close(self) -> None:
        await self._db.close()


def _require_documents(conn: apsw.Connection, dimension: int | None) -> int:
    """Same answer as OpenSearch before the first document: nothing indexed yet."""
    if dimension is None or not rows(conn, "SELECT 1 FROM chunks LIMIT 1"):
        raise NoDocumentsIndexed("no documents have been indexed yet")
    return dimension


def from_settings(settings: Settings) -> SqliteVectorIndex:
    return SqliteVectorIndex(Path(settings.data_dir) / INDEX_DB)
