"""Retrieval metrics over one ranked list of chunks per question. Pure functions.

Every metric here is *document-level*: a retrieved chunk counts as relevant
when its ``doc_id`` is one of the question's expected documents. Ranks are
positions in the chunk list the retriever returned (1-based), because that is
the order in which the query service hands sources to the chat model.

- ``recall_at_k``: 1.0 if any expected document appears among the first ``k``
  chunks, else 0.0 (the "hit rate" reading of recall@k that RAG evaluations
  use: one relevant source in the prompt is enough to answer).
- ``reciprocal_rank``: 1 / rank of the first chunk from an expected document,
  0.0 if none was retrieved. Its mean over questions is MRR.
- ``ndcg_at_k``: binary relevance, and each expected document earns its gain
  once, at the rank of its *first* chunk; later chunks of the same document
  earn nothing. Without that rule a retriever could score above the ideal by
  returning three chunks of one relevant document, and the per-document cap
  of the query service would change nDCG for reasons unrelated to ranking.
  The ideal ranking puts ``min(len(expected), k)`` relevant documents first.
- ``passage_hit``: whether any retrieved chunk contains the expected passage
  (any one of its 1–3 alternative key strings), compared case-insensitively
  with runs of whitespace collapsed (loaders re-flow text, e.g. PDF line
  breaks). The runner only offers it chunks of expected documents, so a key
  string that happens to occur in an unrelated page does not count.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Sequence
from statistics import fmean

_SPACE = re.compile(r"\s+")


def recall_at_k(ranked_doc_ids: Sequence[str], expected: Iterable[str], k: int) -> float:
    wanted = set(expected)
    return 1.0 if any(doc in wanted for doc in ranked_doc_ids[:k]) else 0.0


def reciprocal_rank(ranked_doc_ids: Sequence[str], expected: Iterable[str]) -> float:
    wanted = set(expected)
    for rank, doc in enumerate(ranked_doc_ids, start=1):
        if doc in wanted:
            return 1.0 / rank
    return 0.0


def ndcg_at_k(ranked_doc_ids: Sequence[str], expected: Iterable[str], k: int) -> float:
    wanted = set(expected)
    if not wanted:
        return 0.0
    credited: set[str] = set()
    dcg = 0.0
    for rank, doc in enumerate(ranked_doc_ids[:k], start=1):
        if doc in wanted and doc not in credited:
            credited.add(doc)
            dcg += 1.0 / math.log2(rank + 1)
    ideal = sum(1.0 / math.log2(rank + 1) for rank in range(1, min(len(wanted), k) + 1))
    return dcg / ideal


def normalise_text(text: str) -> str:
    return _SPACE.sub(" ", text).strip().casefold()


def passage_hit(chunk_texts: Iterable[str], passage: str | Sequence[str]) -> bool:
    alternatives = [passage] if isinstance(passage, str) else list(passage)
    needles = [normalise_text(p) for p in alternatives]
    return any(
        needle in haystack
        for haystack in (normalise_text(text) for text in chunk_texts)
        for needle in needles
    )


def mean(values: Iterable[float]) -> float:
    """Mean that is 0.0 for no values (an empty question set scores nothing)."""
    collected = list(values)
    return fmean(collected) if collected else 0.0
