"""Sentence-level attribution: which prompt sources support each answer sentence.

Pure functions, then one small async class that feeds them the embedder's
vectors (an answer's sentences and a text's words come from ``text.py``):

    split_sentences(answer)          -> [Sentence]  character spans + the [n] markers in each
    split_source(text)               -> [str]       a source's sentences
    lexical_support(sentence, ...)   -> 0..1        share of the sentence's rare-word weight
                                                    (numbers, identifiers count more) found
                                                    in the source
    decide(...)                      -> SentenceAttribution

A sentence is *supported* by a source when its meaning is close to one of the
source's sentences (cosine of MiniLM vectors) and its specific words are in
the source; a very close meaning or a near-verbatim word match is enough on
its own. The model's own ``[n]`` marker lowers the bar for that source a
little (it is evidence, not proof): a marker whose source still falls short is
reported in ``unsupported_markers``. Sentences with fewer than
``MIN_CLAIM_TERMS`` content words ("Here is how:", "I hope this helps.")
that no source backs and that cite nothing make no checkable claim and are
reported as ``no_claim``.

Offsets are Python string indices (Unicode code points) into the answer
text, i.e. the concatenated ``token`` texts.

The thresholds were set by hand on answers of the packaged model and of a
larger one over the sample corpus (docs/query.md, "Attribution"); the tests
pin the behaviour on small hand-made cases.
"""

from __future__ import annotations

import math
import time
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from services.query.answer.text import Sentence, Terms, split_sentences, terms, without_markers
from shared.ports import Embedder
from shared.protocol import AnswerSentence, SentenceSupport

MIN_CLAIM_TERMS = 3
# Cosine of MiniLM sentence vectors: >= STRONG_MEANING alone supports;
# >= MEANING with LEXICAL of the words supports; VERBATIM of the words alone too.
STRONG_MEANING = 0.80
MEANING = 0.55
LEXICAL = 0.45
VERBATIM = 0.85
MARKER_BONUS = 0.10  # the model cited this source for this sentence
MAX_SOURCE_SENTENCES = 64  # per source; chunks are ~200 tokens, so rarely reached
_CACHE_SIZE = 4096


def split_source(text: str) -> list[str]:
    """What an answer sentence is compared with: the source chunk's sentences
    (the same rules) and the whole chunk, whose vector carries the gist of a
    passage no single line states (a code example, a list)."""
    sentences = [s.text for s in split_sentences(text)][:MAX_SOURCE_SENTENCES]
    whole = " ".join(text.split())
    return sentences if whole in sentences else [*sentences, whole]


def word_weights(sources: Sequence[Terms]) -> dict[str, float]:
    """Inverse document frequency over the prompt's sources (+1 smoothing):
    a word every source has tells little about which one supports a sentence."""
    count = len(sources)
    frequency: dict[str, int] = {}
    for source in sources:
        for word in source.words:
            frequency[word] = frequency.get(word, 0) + 1
    return {word: math.log(1 + (count + 1) / (df + 0.5)) for word, df in frequency.items()}


def lexical_support(sentence: Terms, source: Terms, weights: dict[str, float]) -> float:
    """Weighted share of the sentence's content words that the source contains.
    A word no source has gets the mean weight (new to the answer, but often
    just a paraphrase's verb); numbers and identifiers count double."""
    if not sentence.words:
        return 0.0
    unseen = sum(weights.values()) / len(weights) if weights else 1.0
    total = found = 0.0
    for word in sentence.words:
        weight = weights.get(word, unseen) * (2.0 if word in sentence.special else 1.0)
        total += weight
        if word in source.words:
            found += weight
    return found / total


# ---- the decision -------------------------------------------------------------


@dataclass(frozen=True)
class Evidence:
    """How well one source backs one sentence."""

    n: int
    meaning: float  # best cosine against the source's sentences
    lexical: float


def supports(evidence: Evidence, marked: bool) -> bool:
    bonus = MARKER_BONUS if marked else 0.0
    meaning, lexical = evidence.meaning + bonus, evidence.lexical + bonus
    return (
        meaning >= STRONG_MEANING
        or (meaning >= MEANING and lexical >= LEXICAL)
        or lexical >= VERBATIM
    )


def decide(sentence: Sentence, claim_terms: int, evidence: Sequence[Evidence]) -> AnswerSentence:
    """One sentence's verdict from its evidence against every source. A short
    sentence no source backs is ``no_claim`` unless the model cited something
    in it (then the marker is what is being checked)."""
    available = {e.n for e in evidence}
    markers = [n for n in sentence.markers if n in available]
    backing = sorted(
        (e for e in evidence if supports(e, e.n in sentence.markers)),
        key=lambda e: -(e.meaning + e.lexical),
    )
    numbers = [e.n for e in backing]
    if numbers:
        support = SentenceSupport.SUPPORTED
    elif claim_terms < MIN_CLAIM_TERMS and not markers:
        support = SentenceSupport.NO_CLAIM
    else:
        support = SentenceSupport.UNSUPPORTED
    return AnswerSentence(
        start=sentence.start,
        end=sentence.end,
        support=support,
        sources=numbers,
        markers=markers,
        unsupported_markers=[n for n in markers if n not in numbers],
    )


def best_cosines(sentence_vectors: np.ndarray, source_vectors: np.ndarray) -> np.ndarray:
    """Per answer sentence, the best cosine against one source's sentences (0 if none)."""
    if len(sentence_vectors) == 0 or len(source_vectors) == 0:
        return np.zeros(len(sentence_vectors), dtype=np.float32)
    scores: np.ndarray = (sentence_vectors @ source_vectors.T).max(axis=1)
    return scores


def attribute_with_vectors(
    answer: str,
    sources: Sequence[str],
    embed: dict[str, np.ndarray],
) -> list[AnswerSentence]:
    """Attribute every sentence of ``answer``; ``sources[i]`` is source ``i + 1``;
    ``embed`` maps each answer sentence (without markers) and each source
    sentence to its unit vector."""
    sentences = split_sentences(answer)
    source_terms = [terms(text) for text in sources]
    weights = word_weights(source_terms)
    plain = [without_markers(s.text).strip() for s in sentences]
    sentence_vectors = _stack([embed[p] for p in plain])
    meaning_by_source = [
        best_cosines(sentence_vectors, _stack([embed[t] for t in split_source(text)]))
        for text in sources
    ]
    out = []
    for i, sentence in enumerate(sentences):
        sentence_terms = terms(plain[i])
        evidence = [
            Evidence(
                n, float(meaning_by_source[n - 1][i]), lexical_support(sentence_terms, t, weights)
            )
            for n, t in enumerate(source_terms, 1)
        ]
        out.append(decide(sentence, len(sentence_terms.words), evidence))
    return out


def _stack(vectors: list[np.ndarray]) -> np.ndarray:
    if not vectors:
        return np.zeros((0, 1), dtype=np.float32)
    return np.vstack(vectors).astype(np.float32)


def texts_to_embed(answer: str | None, sources: Sequence[str]) -> list[str]:
    """Every distinct text ``attribute_with_vectors`` will look up."""
    wanted: dict[str, None] = {}
    for text in sources:
        for line in split_source(text):
            wanted[line] = None
    if answer is not None:
        for sentence in split_sentences(answer):
            wanted[without_markers(sentence.text).strip()] = None
    return list(wanted)


def supporting_numbers(sentences: Sequence[AnswerSentence]) -> set[int]:
    return {n for s in sentences for n in s.sources}


# ---- with the embedder ----------------------------------------------------------


@dataclass(frozen=True)
class Attribution:
    sentences: list[AnswerSentence]
    ms: float  # wall time of the attribution after the answer ended


class Attributor:
    """Embeds sentences with the service's embedder, caching vectors by text
    (sources recur across questions and turns). ``prepare`` embeds the
    sources' sentences ahead, while the model is still generating."""

    def __init__(self, embedder: Embedder, cache_size: int = _CACHE_SIZE) -> None:
        self._embedder = embedder
        self._cache: OrderedDict[str, np.ndarray] = OrderedDict()
        self._cache_size = cache_size

    async def prepare(self, sources: Sequence[str]) -> None:
        await self._vectors(texts_to_embed(None, sources))

    async def attribute(self, answer: str, sources: Sequence[str]) -> Attribution:
        started = time.perf_counter()
        vectors = await self._vectors(texts_to_embed(answer, sources))
        sentences = attribute_with_vectors(answer, sources, vectors)
        return Attribution(sentences, (time.perf_counter() - started) * 1000)

    async def _vectors(self, texts: list[str]) -> dict[str, np.ndarray]:
        missing = [t for t in texts if t not in self._cache]
        if missing:
            embedded = await self._embedder.embed_documents(missing)
            for text, vector in zip(missing, embedded, strict=True):
                self._cache[text] = np.asarray(vector, dtype=np.float32)
        out = {}
        for text in texts:
            self._cache.move_to_end(text)
            out[text] = self._cache[text]
        while len(self._cache) > self._cache_size:
            self._cache.popitem(last=False)
        return out
