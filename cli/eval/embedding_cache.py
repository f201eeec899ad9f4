"""An embedder wrapper that keeps every document vector on disk, keyed by
the model id and the exact text embedded (header included).

Evaluation runs index the same corpora again and again (every set, every
setting tried, every CI run); at ~15 chunks/s on two shared cores the
embedding is nearly all of their cost. Vectors are stored in one SQLite file
under ``~/.cache/serverless-rag`` (outside the tree), so a second run with
the same chunks and model embeds nothing. Questions are embedded afresh:
they are few.
"""

from __future__ import annotations

import hashlib
import sqlite3
import threading
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from shared.documents import Vector
from shared.ports import Embedder


def text_key(model_id: str, text: str) -> str:
    return hashlib.sha256(f"{model_id}\0{text}".encode()).hexdigest()


class CachingEmbedder:
    """Delegates to ``inner``; document vectors come from the cache when known."""

    def __init__(self, inner: Embedder, path: Path) -> None:
        self._inner = inner
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(path, check_same_thread=False)
        self._db.execute("CREATE TABLE IF NOT EXISTS vectors (key TEXT PRIMARY KEY, v BLOB)")
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0
        # Question vectors, for this process only: a bench runs every question
        # once per mode and per candidate setting.
        self._queries: dict[str, Vector] = {}

    @property
    def model_id(self) -> str:
        return self._inner.model_id

    @property
    def dimension(self) -> int:
        return self._inner.dimension

    def _lookup(self, keys: list[str]) -> dict[str, Vector]:
        found: dict[str, Vector] = {}
        with self._lock:
            for first in range(0, len(keys), 500):
                part = keys[first : first + 500]
                marks = ",".join("?" * len(part))
                rows = self._db.execute(
                    f"SELECT key, v FROM vectors WHERE key IN ({marks})", part
                ).fetchall()
                for key, blob in rows:
                    found[key] = np.frombuffer(blob, dtype=np.float32)
        return found

    async def embed_documents(self, texts: Sequence[str]) -> Vector:
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        keys = [text_key(self.model_id, t) for t in texts]
        known = self._lookup(list(dict.fromkeys(keys)))
        missing = [i for i, key in enumerate(keys) if key not in known]
        self.hits += len(texts) - len(missing)
        self.misses += len(missing)
        if missing:
            vectors = await self._inner.embed_documents([texts[i] for i in missing])
            new = {
                keys[i]: np.asarray(v, dtype=np.float32)
                for i, v in zip(missing, vectors, strict=True)
            }
            with self._lock, self._db:
                self._db.executemany(
                    "INSERT OR REPLACE INTO vectors VALUES (?, ?)",
                    [(key, v.tobytes()) for key, v in new.items()],
                )
            known.update(new)
        return np.stack([known[key] for key in keys])

    async def embed_query(self, text: str) -> Vector:
        if text not in self._queries:
            self._queries[text] = await self._inner.embed_query(text)
        return self._queries[text]

    def close(self) -> None:
        with self._lock:
            self._db.close()


def cached_embedder(inner: Embedder, root: Path) -> CachingEmbedder:
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in inner.model_id)
    return CachingEmbedder(inner, root / "embeddings" / f"{safe}.sqlite")
