"""A deterministic, hash-based fake Embedder.

Each lower-cased word is hashed to a (dimension, sign) pair and summed, then
the vector is L2-normalised: texts sharing words get a positive cosine, so
retrieval logic can be tested without the real model. Same text, same vector,
in every process (blake2b, not Python's salted ``hash``).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence

import numpy as np

from shared.documents import Vector

_WORD = re.compile(r"\w+", re.UNICODE)


class FakeEmbedder:
    def __init__(self, dimension: int = 384, model_id: str = "fake/hash-embedder") -> None:
        self._dimension = dimension
        self._model_id = model_id
        self.calls: list[list[str]] = []  # each embed_documents batch / [query]
        self.fail_with: Exception | None = None  # raised by the next call, then cleared

    @property
    def model_id(self) -> str:
        return self._model_id

    @property
    def dimension(self) -> int:
        return self._dimension

    async def embed_documents(self, texts: Sequence[str]) -> Vector:
        self._maybe_fail()
        self.calls.append(list(texts))
        out = np.zeros((len(texts), self._dimension), dtype=np.float32)
        for row, text in enumerate(texts):
            out[row] = self.vector(text)
        return out

    async def embed_query(self, text: str) -> Vector:
        self._maybe_fail()
        self.calls.append([text])
        return self.vector(text)

    def vector(self, text: str) -> Vector:
        """The vector of one text (synchronous, for building expectations)."""
        vec = np.zeros(self._dimension, dtype=np.float32)
        words = _WORD.findall(text.lower()) or ["\x00empty"]
        for word in words:
            digest = hashlib.blake2b(word.encode(), digest_size=8).digest()
            index = int.from_bytes(digest[:4], "little") % self._dimension
            vec[index] += 1.0 if digest[4] & 1 else -1.0
        norm = float(np.linalg.norm(vec))
        if norm == 0.0:  # words cancelled out: fall back to a fixed direction
            vec[0], norm = 1.0, 1.0
        return (vec / norm).astype(np.float32)

    def _maybe_fail(self) -> None:
        if self.fail_with is not None:
            error, self.fail_with = self.fail_with, None
            raise error
