"""Pseudo-relevance feedback for the keyword side (RM3-style), pure.

A first search ranks chunks; the words that the best few of them share and
that the rest of what was retrieved mostly lacks are added to the keyword
query with small weights, so a page that says ``string_agg`` can be reached
by a question that says "comma-separated string per group" once one good
chunk mentions both. The question's own words keep weight 1 each and the
added words together weigh ``weight`` times the question's words, so a
chunk matching the question still outranks one matching only the added
words (the drift RM3 is known for, tests/query/test_expansion.py).

Relevance model (RM1): P(w|R) = sum over feedback chunks d of P(w|d) P(d|q),
P(w|d) = tf / |d|, P(d|q) proportional to the first search's fused score.
Each word's P(w|R) is multiplied by its rarity in the candidate pool (every
chunk the first search returned, ~50): BM25's idf, floored at 0, so words
half the candidates have ("the", the corpus's own name) add nothing. The
pool stands in for corpus statistics that the two keyword backends (FTS5,
OpenSearch) would report differently; both see the same expansion.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from shared.documents import Chunk

_WORD = re.compile(r"\w+", re.UNICODE)
# Shorter words are mostly inflections, numbers and markup debris ("s", "1", "id").
MIN_WORD_CHARS = 3


@dataclass(frozen=True)
class Feedback:
    """A first-pass chunk and its fused score (higher is better)."""

    chunk: Chunk
    score: float


def words(text: str) -> list[str]:
    return [w for w in _WORD.findall(text.lower()) if len(w) >= MIN_WORD_CHARS and not w.isdigit()]


def chunk_words(chunk: Chunk) -> list[str]:
    """What the keyword side reads of a chunk: title, section path and text."""
    return words(" ".join(part for part in (chunk.title, chunk.section, chunk.text) if part))


def relevance_model(feedback: Sequence[Feedback]) -> dict[str, float]:
    """RM1: P(w|R) over the feedback chunks, each weighted by its share of
    their summed scores (equal shares when the scores do not say)."""
    total = sum(max(f.score, 0.0) for f in feedback)
    model: dict[str, float] = {}
    for item in feedback:
        share = max(item.score, 0.0) / total if total > 0 else 1 / len(feedback)
        counts = Counter(chunk_words(item.chunk))
        length = sum(counts.values())
        for word, tf in counts.items():
            model[word] = model.get(word, 0.0) + share * tf / length
    return dict(model)


def pool_rarity(pool: Sequence[Chunk]) -> dict[str, float]:
    """BM25's idf of each word over the candidate pool, log((N - df + 0.5) /
    (df + 0.5)), floored at 0: a word half the candidates have adds nothing."""
    df: Counter[str] = Counter()
    for chunk in pool:
        df.update(set(chunk_words(chunk)))
    n = len(pool)
    return {
        word: max(0.0, math.log((n - count + 0.5) / (count + 0.5))) for word, count in df.items()
    }


def expansion_terms(
    question: str,
    feedback: Sequence[Feedback],
    pool: Sequence[Chunk],
    terms: int,
    weight: float,
) -> list[tuple[str, float]]:
    """Up to ``terms`` words not in the question, each with a weight relative
    to a question word's 1; the weights sum to ``weight`` times the number of
    distinct question words. Empty without feedback or question words."""
    asked = set(_WORD.findall(question.lower()))
    if not feedback or not asked or terms <= 0 or weight <= 0:
        return []
    rarity = pool_rarity(pool)
    scored = {
        word: p * rarity.get(word, 0.0)
        for word, p in relevance_model(feedback).items()
        if word not in asked
    }
    best = sorted(
        ((w, s) for w, s in scored.items() if s > 0), key=lambda item: (-item[1], item[0])
    )[:terms]
    mass = sum(s for _, s in best)
    if mass <= 0:
        return []
    budget = weight * len(asked)
    return [(word, budget * s / mass) for word, s in best]
