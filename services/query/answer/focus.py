"""Query-focused extraction: trim each retrieved source to a token budget. Pure.

A small model on a CPU pays for every prompt token before its first answer
token (prefill, ~200 tokens/s for SmolLM2-135M on 2 cores), so five whole
chunks (~1,000 tokens) cost ~5 s. Most of a chunk does not bear on the
question; the sentences that share its rare words and identifiers usually do.
So, per source:

    sentences = split_sentences(chunk)              code fences stay whole
    score     = sum of the question terms' weights the sentence holds
                (weight: rarity across the sentences of all the prompt's
                sources; numbers and identifiers count double)
    keep      = best-scoring sentences while they fit the budget (ties: the
                earlier one), then shown in their original order; a gap
                between kept runs is marked " … "

Sentences that share no word with the question are left out even when budget
is left (every prompt token delays the first answer token); a source no term
matches keeps its opening sentence. Words are compared by a crude stem (their first
``_STEM`` letters) so that "annotate" meets "annotating".

Only the prompt changes: citations, excerpts and sentence attribution keep
the whole chunk (docs/query.md, "Prompt budget for small local models").
"""

from __future__ import annotations

import itertools
import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from services.query.answer.text import Sentence, split_sentences, terms

GAP = " … "
NEIGHBOUR = 0.5
_STEM = 6
_SPECIAL_WEIGHT = 2.0


def _stems(words: frozenset[str]) -> set[str]:
    return {word[:_STEM] for word in words}


def _weights(sentence_stems: Sequence[set[str]]) -> dict[str, float]:
    """Inverse document frequency over sentences: a word in every sentence of
    the five sources tells nothing about which sentence answers."""
    frequency: dict[str, int] = {}
    for stems in sentence_stems:
        for stem in stems:
            frequency[stem] = frequency.get(stem, 0) + 1
    total = len(sentence_stems)
    return {stem: math.log(1 + (total + 1) / (df + 0.5)) for stem, df in frequency.items()}


def sentence_scores(
    question: str, sentences: Sequence[str], weights: dict[str, float]
) -> list[float]:
    """Per sentence, the weight of the question's terms it holds."""
    asked = terms(question)
    special = _stems(asked.special)
    wanted = {
        stem: weights.get(stem, 0.0) * (_SPECIAL_WEIGHT if stem in special else 1.0)
        for stem in _stems(asked.words)
    }
    scores = []
    for text in sentences:
        held = _stems(terms(text).words)
        scores.append(sum(weight for stem, weight in wanted.items() if stem in held))
    return scores


def clip(text: str, budget: int, count: Callable[[str], int]) -> str:
    """The longest word-boundary prefix of ``text`` that fits ``budget`` with a
    trailing ``…`` (one sentence or code block longer than the whole budget)."""
    words = text.split(" ")
    low, high = 0, len(words)
    while low < high:  # binary search on the number of words kept
        middle = (low + high + 1) // 2
        if count(" ".join(words[:middle]) + " …") <= budget:
            low = middle
        else:
            high = middle - 1
    return " ".join(words[:low]) + " …" if low else ""


def prose_view(text: str) -> str:
    """``text`` with the line breaks of hard-wrapped prose turned into spaces
    (same length, so offsets stay valid): a wrapped README paragraph is split
    into its sentences, not into its lines. Breaks before an indented line, a
    list item, a heading or a blank line, and after a blank or indented line, stay."""
    out = list(text)
    lines = text.split("\n")
    position = 0
    for line, following in itertools.pairwise(lines):
        position += len(line)
        prose = line.strip() and not line[0].isspace()  # not a code/quote line
        if prose and following.strip() and not _BLOCK_START.match(following):
            out[position] = " "
        position += 1
    return "".join(out)


_BLOCK_START = re.compile(r"\s|[-*+•#>|`=~]|\d{1,3}[.)]\s|\.\. ")


@dataclass
class _Source:
    text: str
    sentences: list[Sentence]
    scores: list[float]
    kept: set[int]

    def render(self, kept: set[int] | None = None) -> str:
        return _render(self.text, self.sentences, self.kept if kept is None else kept)


def _render(text: str, sentences: Sequence[Sentence], kept: set[int]) -> str:
    """Runs of adjacent kept sentences as they stand in ``text``; gaps as `` … ``."""
    if not kept:
        return ""
    parts: list[str] = []
    run_start: int | None = None
    for index, sentence in enumerate(sentences):
        if index in kept and run_start is None:
            run_start = sentence.start
        if index in kept and index + 1 not in kept:
            assert run_start is not None
            parts.append(text[run_start : sentence.end])
            run_start = None
    out = GAP.join(parts)
    if min(kept) > 0:
        out = "… " + out
    if max(kept) < len(sentences) - 1:
        out += " …"
    return out


def focus_sources(
    question: str, texts: Sequence[str], budget: int, count: Callable[[str], int]
) -> list[str]:
    """``texts`` trimmed towards ``question`` to ``budget`` tokens each on
    average (``count``'s units): the sources share ``budget * len(texts)``,
    so the one that holds the answer may take more than the others.

    Greedy: repeatedly keep the best remaining sentence of any source that
    still fits the shared budget. A kept sentence lends ``NEIGHBOUR`` of its
    own score to the sentence after it (the answer often follows the sentence that
    names the question's terms). A source left with nothing shows its opening
    words (its heading, usually), clipped to a third of ``budget``.
    """
    sources = []
    for text in texts:
        sentences = split_sentences(prose_view(text))
        sources.append(_Source(text, sentences, [0.0] * len(sentences), set()))
    weights = _weights([_stems(terms(s.text).words) for src in sources for s in src.sentences])
    for src in sources:
        src.scores = sentence_scores(question, [s.text for s in src.sentences], weights)
    if sum(count(text) for text in texts) <= budget * len(texts):
        return list(texts)
    _keep_best(sources, budget * len(texts), count)
    out = []
    for src in sources:
        if src.kept:
            out.append(src.render())
        elif src.sentences:
            out.append(clip(src.sentences[0].text, max(budget // 3, 1), count))
        else:
            out.append(clip(src.text, max(budget // 3, 1), count))
    return out


def _keep_best(sources: list[_Source], total: int, count: Callable[[str], int]) -> None:
    costs = [0] * len(sources)
    lent: dict[tuple[int, int], float] = {}
    tried: set[tuple[int, int]] = set()
    while True:
        candidates = [
            (score + lent.get((i, j), 0.0), i, j)
            for i, src in enumerate(sources)
            for j, score in enumerate(src.scores)
            if (i, j) not in tried and score + lent.get((i, j), 0.0) > 0
        ]
        if not candidates:
            return
        _, i, j = max(candidates, key=lambda c: (c[0], -c[1], -c[2]))
        tried.add((i, j))
        src = sources[i]
        cost = count(src.render(src.kept | {j}))
        if sum(costs) - costs[i] + cost <= total:
            src.kept.add(j)
            costs[i] = cost
            if j + 1 < len(src.sentences):  # own score only: no chain to the chunk's end
                own = NEIGHBOUR * src.scores[j]
                lent[(i, j + 1)] = max(lent.get((i, j + 1), 0.0), own)
