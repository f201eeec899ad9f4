"""Sentence-level attribution: which prompt sources back each answer sentence.

Pure functions, then a small class that keeps the sources' readings between
``prepare`` (while the model generates) and ``attribute`` (after it ends):

    split_sentences(answer)   -> [Sentence]        character spans + the [n] markers in each
    read_source(text)         -> SourceReading     the source's sentences (passages) with offsets
    attribute(answer, sources)-> [AnswerSentence]  per sentence: supported / unsupported / no_claim,
                                                   the backing sources and their passages

A source backs a sentence only through specific passages of it (one
sentence each, a definition list's term joined to its line): every clause of
the answer sentence must be backed by one passage of that source, by the
rules of ``services.query.answer.claims`` (every number, date, unit, version, flag,
identifier and name in the clause is in the passage, next to what it stands
next to in the clause; no negation or opposite turns it around; at least
``CLAUSE_COVERAGE`` of its words are there). The passages are reported as
offsets into the source's excerpt, so a client can show what backs what.

A ``[n]`` marker is a claim to test, never evidence: it does not lower any
bar, and a marker whose source does not back the sentence is reported in
``unsupported_markers``. A sentence is ``no_claim`` only when it has nothing
to check: a pleasantry ("Hope this helps!", "Good luck with your build!") or
a lead-in without content words ("Here is how:"); "Windows is not
supported." is a claim.

Offsets into the answer are Python string indices (Unicode code points) into
the answer text, i.e. the concatenated ``token`` texts; offsets into a source
are indices into its excerpt (the chunk text with whitespace collapsed).

The bars and rules were set on the labelled sets ``evalsets/attribution/``
``cmake.jsonl``, ``sqlite.jsonl`` and ``debian-history.jsonl`` (tuning sets;
a newer held-out set is run only by the lead) — docs/evaluation.md,
"Attribution".
"""

from __future__ import annotations

import functools
import itertools
import logging
import re
import time
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from services.query.answer.claims import (
    Clause,
    Passage,
    clauses,
    coverage,
    polarity_holds,
    read_passage,
    specifics_hold,
    topic_names,
    whole,
)
from services.query.answer.text import Sentence, split_sentences, without_markers
from shared.ports import Embedder
from shared.protocol import AnswerSentence, BackingPassage, Grounding, SentenceSupport

# Share of a clause's words (specifics double) one passage must hold: a
# paraphrase changes a verb or two, an invented fact brings its own words.
CLAUSE_COVERAGE = 0.75
# Two adjacent sentences back a clause only with a clearer lead: their words
# together are more, and one of them may be about something else.
PAIR_PENALTY = 0.10
# Just short of the bar, a clause is still backed when its meaning is close to
# the passage's (cosine of the embedder's sentence vectors): the paraphrase
# that changed three words. Only when the service has the embedder's say
# (RAG_QUERY__ATTRIBUTION_MEANING, off by default: on the labelled sets it
# backed 1 more supported sentence in 170 at 25-40 times the cost).
# Negations, swapped values and other specifics were checked before and are
# not forgiven.
BORDERLINE_COVERAGE = 0.65
MEANING = 0.80
MAX_SOURCE_SENTENCES = 64  # per source; chunks are ~200 tokens, so rarely reached
_CACHE_SIZE = 256  # sources' readings kept across questions and turns

log = logging.getLogger(__name__)

# ---- sources -------------------------------------------------------------------


@dataclass(frozen=True)
class SourceReading:
    excerpt: str  # the chunk text, whitespace collapsed: what offsets index
    passages: tuple[Passage, ...]
    first_line: str


def collapse(text: str) -> str:
    return " ".join(text.split())


def source_spans(text: str) -> list[tuple[int, int]]:
    """The source's sentences as spans of its collapsed text; a short line
    without a full stop (a definition list's term, a heading) is joined to
    the sentence after it, which says what it means."""
    excerpt = collapse(text)
    spans: list[tuple[int, int]] = []
    position = 0
    pending: int | None = None
    for sentence in split_sentences(text)[:MAX_SOURCE_SENTENCES]:
        piece = collapse(sentence.text)
        found = excerpt.find(piece, position)
        if found < 0:
            continue
        end = found + len(piece)
        position = end
        start = found if pending is None else pending
        if _is_term_line(text, sentence):
            pending = start
            continue
        pending = None
        spans.append((start, end))
    if pending is not None:
        spans.append((pending, position))
    return spans


def _is_term_line(text: str, sentence: Sentence) -> bool:
    line_end = text.find("\n", sentence.end)
    alone = text[sentence.end : line_end if line_end >= 0 else len(text)].strip() == ""
    return alone and len(sentence.text.split()) <= 4 and sentence.text[-1] not in ".!?:"


def read_source(text: str) -> SourceReading:
    """Its passages: each sentence, and each pair of adjacent ones (a clause
    may join what two short sentences say)."""
    excerpt = collapse(text)
    pieces = [(s, e, excerpt[s:e]) for s, e in source_spans(text)]
    singles = [read_passage([piece]) for piece in pieces]
    passages = list(singles)
    passages += [
        read_passage([a, b], (singles[i], singles[i + 1]))
        for i, (a, b) in enumerate(itertools.pairwise(pieces))
    ]
    first_line = text.strip().split("\n", 1)[0] if text.strip() else ""
    return SourceReading(excerpt, tuple(passages), first_line)


# ---- answer sentences ------------------------------------------------------------

_PLEASANTRY = re.compile(
    r"^\W*(?:i\s+hope|hope\b|good\s+(?:luck|question)|happy\b|have\s+(?:fun|a\s+(?:good|great|nice))|"
    r"glad\b|thanks?\b|thank\s+you|you'?re\s+welcome|let\s+me\s+know|feel\s+free|cheers|"
    r"enjoy\b|great\s+question|best\s+of\s+luck|i'?m\s+happy|happy\s+to|sure\b|certainly\b|"
    r"of\s+course|hello|hi\b|hey\b)",
    re.IGNORECASE,
)
_PLEASANTRY_TEXT = """hope helps help helpful luck good great happy glad thanks thank welcome
    feel free ask questions question let know cheers fun enjoy anything else need further
    clarify clarifies things follow details detail want answer answers clears sure certainly
    course hello hi here how following steps summary note started works work hear idea sorry
    unfortunately unsure"""
_PLEASANTRY_WORDS = frozenset(_PLEASANTRY_TEXT.split())


def is_pleasantry(text: str, clause_list: Sequence[Clause]) -> bool:
    """Nothing to check: a courtesy, or a lead-in with no content word ("Here is how:")."""
    specifics = [k for c in clause_list for k in c.reading.specifics]
    if specifics:
        return False
    stems = [s for c in clause_list for s in c.reading.stems]
    if _PLEASANTRY.match(text) and len(text.split()) <= 14:
        return True
    if _is_remark(text, clause_list, len(stems)):
        return True
    return all(any(w.startswith(s) for w in _PLEASANTRY_WORDS) for s in stems)


# "…, isn't it?", "…, right?": a question put to the reader, not a claim.
_TAG_QUESTION = re.compile(
    r",\s*(?:is|are|was|were|do|does|did|has|have)n['’]t\s+\w+\s*\?$|,\s*(?:right|huh|eh)\s*\?$",
    re.IGNORECASE,
)
_REMARK_WORDS = 4


def _is_remark(text: str, clause_list: Sequence[Clause], stems: int) -> bool:
    """An exclamation or a tag question with no name, number or negation and a
    few words at most ("Quite a story from the early days!", "Stay safe out
    there!", "Fun bit of trivia, isn't it?"): a remark to the reader. "Windows
    is not supported!" (a name, a negation) and "It is much faster now!" (a
    subject and its verb) are claims; "It runs faster!" would pass as a remark."""
    body = _TAG_QUESTION.sub("", text.rstrip())
    if body == text.rstrip() and not text.rstrip().endswith("!"):
        return False
    if any(c.reading.negated or c.reading.specifics for c in clause_list):
        return False  # a name, a number or a negation: a claim
    words = {w.lower() for w in re.findall(r"[\w']+", body)}
    if words & _NEGATION_WORDS or words & _STATING_WORDS:
        return False  # "It is much faster now!" states something of something
    return 0 < stems <= _REMARK_WORDS


_NEGATION_WORDS = frozenset({"not", "no", "never", "none", "nothing", "cannot", "without"})
# A subject and a finite verb: what a statement has and a remark does not.
_STATING_TEXT = """is are was were will would can could should must has have had does do did
    it they this that these those he she we"""
_STATING_WORDS = frozenset(_STATING_TEXT.split())


@dataclass(frozen=True)
class Backing:
    n: int
    score: float  # mean coverage of the clauses
    spans: tuple[tuple[int, int], ...]  # the passages, in the source's excerpt


class Meaning:
    """Cosines of sentence vectors, for clauses whose words fall just short of
    the bar: what an attribution pass needs but does not have yet is noted in
    ``wanted`` (the service embeds it and runs the pass again)."""

    def __init__(self, vectors: Mapping[str, np.ndarray] | None = None) -> None:
        self.vectors = vectors or {}
        self.wanted: set[str] = set()

    def cosine(self, a: str, b: str) -> float | None:
        if a in self.vectors and b in self.vectors:
            return float(self.vectors[a] @ self.vectors[b])
        self.wanted.update(t for t in (a, b) if t not in self.vectors)
        return None


def backing_by(
    clause_list: Sequence[Clause],
    source: SourceReading,
    n: int,
    topic: frozenset[str],
    meaning: Meaning,
) -> tuple[Backing | None, float]:
    """The source backs the sentence if each clause has a passage that backs
    it; beside that, the best coverage of a passage of it that holds a
    clause's specifics but says the opposite (0 if none)."""
    opposed = 0.0
    spans: list[tuple[int, int]] = []
    scores: list[float] = []
    for clause in clause_list:
        best: tuple[float, Passage] | None = None
        near: tuple[float, Passage] | None = None
        against = 0.0  # the best coverage of a passage saying the opposite
        for passage in source.passages:
            if not specifics_hold(clause.reading, passage, topic):
                continue
            score = coverage(clause.reading, passage)
            score -= PAIR_PENALTY * (len(passage.parts) - 1)
            if not polarity_holds(clause.reading, passage):
                against = max(against, score)
                continue
            if score >= CLAUSE_COVERAGE and (best is None or score > best[0]):
                best = (score, passage)
            elif score >= BORDERLINE_COVERAGE and (near is None or score > near[0]):
                near = (score, passage)
        opposed = max(opposed, against)
        if best is None and near is not None:
            text = source.excerpt[near[1].start : near[1].end]
            cosine = meaning.cosine(clause.text, text)
            if cosine is not None and cosine >= MEANING:
                best = near
        if best is None:
            return None, opposed
        scores.append(best[0])
        span = (best[1].start, best[1].end)
        if span not in spans:
            spans.append(span)
    return Backing(n, sum(scores) / len(scores), tuple(sorted(spans))), opposed


def attribute_sentence(
    sentence: Sentence, sources: Sequence[SourceReading], topic: frozenset[str], meaning: Meaning
) -> AnswerSentence:
    plain = collapse(without_markers(sentence.text))
    claim = whole(plain)
    available = set(range(1, len(sources) + 1))
    markers = [n for n in sentence.markers if n in available]
    backings: list[Backing] = []
    if claim.weight == 0 or is_pleasantry(plain, [claim]):
        support = SentenceSupport.NO_CLAIM
    else:
        parts = _enumeration(plain, topic)
        opposed = by_parts = 0.0
        whole_backed = False
        for n, source in enumerate(sources, 1):
            found, against = backing_by([claim], source, n, topic, meaning)
            whole_backed = whole_backed or found is not None
            if found is None and parts:
                found, more = backing_by(parts, source, n, topic, meaning)
                by_parts = max(by_parts, more)
            if found is not None:
                backings.append(found)
            opposed = max(opposed, against)
        # A part read alone ("Debian 1.0 was never released") meets passages
        # about something else; it speaks against only when no passage backs
        # the whole sentence.
        if not whole_backed:
            opposed = max(opposed, by_parts)
        backings.sort(key=lambda b: -b.score)
        # The passage most like the sentence decides: when it says the
        # opposite, passages sharing fewer of its words do not outweigh it.
        if opposed >= CLAUSE_COVERAGE and opposed > (backings[0].score if backings else 0.0):
            backings = []
        support = SentenceSupport.SUPPORTED if backings else SentenceSupport.UNSUPPORTED
    numbers = [b.n for b in backings]
    return AnswerSentence(
        start=sentence.start,
        end=sentence.end,
        support=support,
        sources=numbers,
        markers=markers,
        unsupported_markers=[n for n in markers if n not in numbers],
        passages=[BackingPassage(source=b.n, start=s, end=e) for b in backings for s, e in b.spans],
    )


def _enumeration(text: str, topic: frozenset[str]) -> list[Clause]:
    """The sentence's clauses when each names its own specific ("CUDA in 3.8,
    OBJC in 3.16"): then each may be backed by its own passage of the source."""
    parts = [p for c in _joined_modifiers(clauses(text)) for p in _list_items(c)]
    if len(parts) < 2:
        return []
    if all(any(k not in topic for k in c.reading.specifics) for c in parts):
        return parts
    return []


_AND = re.compile(r"\s+and\s+")


def _list_items(clause: Clause) -> list[Clause]:
    """A clause listing things with their values ("KDE Plasma 5.8 and
    LibreOffice 5.2.7", "came out on March 9th, 1999 and added two
    architectures"): each item, when each has a number or date and something
    beside it. (Not "AMD64 was added and m68k was dropped": short clauses
    without a value meet passages about other releases.)"""
    items = [whole(p) for p in _AND.split(clause.text)]
    if len(items) < 2:
        return [clause]
    for item in items:
        values = [k for k in item.reading.specifics if k[0] == "#"]
        if not values or item.weight < 2:
            return [clause]
    return items


# A short clause opening with one of these modifies the clause after it ("For
# the BOOL type, cmake-gui offers a checkbox"): the two are one claim.
_MODIFIER_TEXT = "for with without in on at by from since after before when whenever if unless once"
_MODIFIER_OPENERS = frozenset(_MODIFIER_TEXT.split())


def _joined_modifiers(parts: list[Clause]) -> list[Clause]:
    out: list[Clause] = []
    carried = ""
    for part in parts:
        text = f"{carried}, {part.text}" if carried else part.text
        words = part.text.split()
        opener = bool(words) and words[0].lower() in _MODIFIER_OPENERS and len(words) <= 5
        if not carried and opener and part is not parts[-1]:
            carried = text
            continue
        out.append(whole(text) if carried else part)
        carried = ""
    return out


def attribute(
    answer: str,
    sources: Sequence[SourceReading],
    titles: Sequence[str | None] = (),
    meaning: Meaning | None = None,
) -> list[AnswerSentence]:
    """Attribute every sentence of ``answer``; ``sources[i]`` is source ``i + 1``;
    ``titles`` are their documents' titles (what the sources are about)."""
    topic = topic_names(t for t in titles if t)
    meaning = meaning if meaning is not None else Meaning()
    return [attribute_sentence(s, sources, topic, meaning) for s in split_sentences(answer)]


def supporting_numbers(sentences: Sequence[AnswerSentence]) -> set[int]:
    return {n for s in sentences for n in s.sources}


def distinct_claims(answer: str, sentences: Sequence[AnswerSentence]) -> dict[str, bool]:
    """Each distinct claim (its text, whitespace and case folded) and whether a
    source backs it: a sentence the model repeated counts once."""
    claims: dict[str, bool] = {}
    for sentence in sentences:
        if sentence.support == SentenceSupport.NO_CLAIM:
            continue
        key = " ".join(without_markers(answer[sentence.start : sentence.end]).split()).casefold()
        backed = sentence.support == SentenceSupport.SUPPORTED
        claims[key] = claims.get(key, False) or backed
    return claims


def supported_share(answer: str, sentences: Sequence[AnswerSentence]) -> float | None:
    claims = distinct_claims(answer, sentences)
    return sum(claims.values()) / len(claims) if claims else None


def grounding(share: float | None, relevant: bool) -> Grounding | None:
    """The answer's verdict: no relevant source outranks everything; then the
    share of backed claims (all, at least half, fewer)."""
    if not relevant:
        return Grounding.NO_SOURCES
    if share is None:
        return None
    if share >= 1.0:
        return Grounding.SUPPORTED
    return Grounding.PARTLY if share >= 0.5 else Grounding.UNSUPPORTED


def is_relevant(question: str, source: str) -> bool:
    """Whether a retrieved source has anything to do with the question: it holds
    one of the question's specifics or of its content words of four letters or
    more. k-NN always returns k chunks, however far; this is what says that
    none of them is about the question."""
    wanted = _asked(question)
    if not wanted:
        return True  # nothing to compare ("why?"): not for this check to refuse
    return not wanted.isdisjoint(_held(source))


@functools.lru_cache(maxsize=64)
def _asked(question: str) -> frozenset[str]:
    """The question's specifics and long content words, read once per
    question (the service asks once per source)."""
    asked = whole(collapse(question)).reading
    return frozenset(asked.specifics) | {w for w in asked.stems if len(w) >= 4}


@functools.lru_cache(maxsize=_CACHE_SIZE)
def _held(source: str) -> frozenset[str]:
    passage = read_passage([(0, 0, collapse(source))])
    return passage.stems | passage.specifics


def passage_ends(sentences: Sequence[AnswerSentence]) -> dict[int, int]:
    """Per source number, where its last backing passage ends: its excerpt
    must reach that far for a client to show the passage."""
    ends: dict[int, int] = {}
    for sentence in sentences:
        for passage in sentence.passages:
            ends[passage.source] = max(ends.get(passage.source, 0), passage.end)
    return ends


# ---- the service's attributor ------------------------------------------------------


@dataclass(frozen=True)
class Attribution:
    sentences: list[AnswerSentence]
    ms: float  # wall time of the attribution after the answer ended


class Attributor:
    """Keeps the sources' readings by text (sources recur across questions and
    turns); ``prepare`` reads them ahead, while the model is still generating.
    The checks are the product's own, the same for every model backend; the
    embedder only settles clauses just short of the bar (``Meaning``), and
    without it (or when it fails) they stay unsupported."""

    def __init__(self, embedder: Embedder | None = None, cache_size: int = _CACHE_SIZE) -> None:
        self._embedder = embedder
        self._cache: OrderedDict[str, SourceReading] = OrderedDict()
        self._vectors: OrderedDict[str, np.ndarray] = OrderedDict()
        self._cache_size = cache_size

    async def prepare(self, sources: Sequence[str]) -> None:
        self._readings(sources)

    async def attribute(
        self, answer: str, sources: Sequence[str], titles: Sequence[str | None] = ()
    ) -> Attribution:
        started = time.perf_counter()
        readings = self._readings(sources)
        topic = topic_names(t for t in titles if t)
        split = split_sentences(answer)
        sentences: list[AnswerSentence] = []
        wanted: dict[int, set[str]] = {}  # sentence -> the texts its borderline clauses need
        for index, sentence in enumerate(split):
            meaning = Meaning(self._vectors)
            sentences.append(attribute_sentence(sentence, readings, topic, meaning))
            if meaning.wanted:
                wanted[index] = meaning.wanted
        if wanted and self._embedder is not None:
            try:
                await self._embed(sorted(set().union(*wanted.values())))
            except Exception as exc:  # the lexical verdicts stand
                log.warning("embedding borderline clauses failed: %r", exc)
            else:  # a second pass for the sentences that asked, with their vectors
                for index in wanted:
                    meaning = Meaning(self._vectors)
                    sentences[index] = attribute_sentence(split[index], readings, topic, meaning)
        return Attribution(sentences, (time.perf_counter() - started) * 1000)

    async def _embed(self, texts: list[str]) -> None:
        assert self._embedder is not None
        vectors = await self._embedder.embed_documents(texts)
        for text, vector in zip(texts, vectors, strict=True):
            self._vectors[text] = np.asarray(vector, dtype=np.float32)
        while len(self._vectors) > 16 * self._cache_size:
            self._vectors.popitem(last=False)

    def _readings(self, sources: Sequence[str]) -> list[SourceReading]:
        out = []
        for text in sources:
            reading = self._cache.get(text)
            if reading is None:
                reading = self._cache[text] = read_source(text)
            self._cache.move_to_end(text)
            out.append(reading)
        while len(self._cache) > self._cache_size:
            self._cache.popitem(last=False)
        return out
