"""Plain-text helpers of the answer: an answer's sentences (with the ``[n]``
markers written in them) and a text's content words.

Attribution (``attribution.py``) checks each sentence against the sources, and
the focus step (``focus.py``) picks the source sentences that share the
question's words; both read text the same way through this module.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# [1], [1, 3], [1][2], [Source 2], [source 1, 2]
_MARKER = re.compile(r"\[(?:sources?\s*)?(\d+(?:\s*,\s*\d+)*)\]", re.IGNORECASE)
_FENCE = re.compile(r"```.*?(?:```|\Z)", re.DOTALL)
# A sentence ends at . ! ? (optionally followed by closing quotes/brackets and
# [n] markers) before whitespace, or at a line break.
_END = re.compile(r"""[.!?]+["')\]*_]*(?:\s*\[(?:sources?\s*)?\d+(?:\s*,\s*\d+)*\])*(?=\s|$)""")
_ABBREVIATIONS = {"e.g", "i.e", "etc", "vs", "mr", "mrs", "dr", "fig", "no", "approx", "cf"}
_BULLET = re.compile(r"\s*(?:[-*+•]|\d{1,3}[.)]|#{1,6})\s+")
_TERM = re.compile(r"[A-Za-z_][\w.\-]*\w|\w+")
# Function words and the filler of answers ("based on the sources provided").
_STOPWORD_TEXT = """a about above after again against all also am an and any are as at be
    because been
    before being below between both but by can could did do does doing down during each few
    for from further had has have having he her here hers him his how i if in into is it its
    itself just let me more most my no nor not now of off on once only or other our out over
    own same she should so some such than that the their them then there these they this
    those through to too under until up very was we were what when where which while who whom
    why will with would you your yours use used using can't don't doesn't it's you'll example
    following based source sources provided information answer question way make need like
    one get also may might must shall well yes know help hope sure here's there's let's"""
_STOPWORDS = frozenset(_STOPWORD_TEXT.split())


@dataclass(frozen=True)
class Sentence:
    start: int
    end: int
    text: str  # answer[start:end]
    markers: tuple[int, ...]  # the [n] numbers written in it, in order, deduplicated


@dataclass(frozen=True)
class Terms:
    """A text's content words with their kind: identifiers and numbers are specific."""

    words: frozenset[str]
    special: frozenset[str]  # numbers and identifiers (dotted, snake_case, CamelCase, x())


# ---- splitting --------------------------------------------------------------


def split_sentences(answer: str) -> list[Sentence]:
    """Sentences of an answer with their spans; a fenced code block is one sentence,
    each line (list item, heading) ends a sentence too."""
    sentences: list[Sentence] = []
    position = 0
    for fence in _FENCE.finditer(answer):
        sentences += _split_prose(answer, position, fence.start())
        sentences += _span(answer, fence.start(), fence.end())
        position = fence.end()
    sentences += _split_prose(answer, position, len(answer))
    return sentences


def _split_prose(answer: str, start: int, end: int) -> list[Sentence]:
    out: list[Sentence] = []
    line_start = start
    while line_start < end:
        newline = answer.find("\n", line_start, end)
        line_end = end if newline == -1 else newline
        out += _split_line(answer, line_start, line_end)
        line_start = line_end + 1
    return out


def _split_line(answer: str, start: int, end: int) -> list[Sentence]:
    out: list[Sentence] = []
    bullet = _BULLET.match(answer, start, end)
    begin = bullet.end() if bullet else start
    for match in _END.finditer(answer, begin, end):
        if _is_abbreviation(answer, begin, match.start()):
            continue
        out += _span(answer, begin, match.end())
        begin = match.end()
    out += _span(answer, begin, end)
    return out


def _is_abbreviation(answer: str, begin: int, dot: int) -> bool:
    words = answer[begin:dot].split()
    if not words:
        return True
    last = words[-1].lower().lstrip("(")
    return last in _ABBREVIATIONS or (len(last) == 1 and last.isalpha())


def _span(answer: str, start: int, end: int) -> list[Sentence]:
    text = answer[start:end]
    stripped = text.strip()
    if not stripped or not any(ch.isalnum() for ch in stripped):
        return []
    start += len(text) - len(text.lstrip())
    end = start + len(stripped)
    return [Sentence(start, end, stripped, markers_in(stripped))]


def markers_in(text: str) -> tuple[int, ...]:
    found: list[int] = []
    for match in _MARKER.finditer(text):
        for part in match.group(1).split(","):
            if (n := int(part)) not in found:
                found.append(n)
    return tuple(found)


def without_markers(text: str) -> str:
    return _MARKER.sub(" ", text)


def terms(text: str) -> Terms:
    words: set[str] = set()
    special: set[str] = set()
    for raw in _TERM.findall(without_markers(text).replace("`", " ")):
        token = raw.strip(".-_")
        lower = token.lower()
        if not lower or lower in _STOPWORDS or (len(lower) < 3 and not lower.isdigit()):
            continue
        words.add(lower)
        if _is_specific(token):
            special.add(lower)
            # ``ws.prepare`` also answers to ``prepare``; ``web.get`` to ``get``.
            words.update(
                p for p in re.split(r"[.\-]", lower) if len(p) >= 3 and p not in _STOPWORDS
            )
    return Terms(frozenset(words), frozenset(special))


def _is_specific(token: str) -> bool:
    if any(ch.isdigit() for ch in token):
        return True
    if "_" in token or "." in token.strip("."):
        return True
    return any(ch.isupper() for ch in token[1:]) and any(ch.islower() for ch in token)
