"""What a reader checks before believing that a source backs a sentence. Pure functions.

    read(text, first_word_is_name)        -> Reading   a clause's specifics and content words
    read_passage(pieces, singles)         -> Passage   one source sentence, read the same way
    specifics_hold, polarity_holds        -> bool      the checks below
    coverage(clause, passage)             -> float     the share of the clause's words the
                                                         passage holds (attribution.backing_by
                                                         runs the three on each passage)

A clause is backed by a passage (one sentence of the source, a definition
list's term joined to its line) when

- every **specific** of the clause is in the passage: numbers (``1,000`` =
  ``1000``; ``two`` = ``2``), dates, versions, hex values, flags
  (``--log-level``, ``-DX=1``), identifiers (``SQLITE_MAX_LENGTH``,
  ``CMakeLists.txt``, ``OFF``), proper names (``Windows``, ``Library of
  Congress``), hyphenated terms (``comma-separated``) and formulas
  (``a + b - c``); a name the source is about (in its first line, or three
  times in it) is taken as present in each of its sentences;
- in the **same relation**: a number's unit (``1000 pages``) is in the
  passage, and each specific has at least one of its neighbours in the
  clause (the nearest other specific, else the nearest content words) in
  the passage too, so two values of a source exchanged, or a version moved
  to another feature, do not pass;
- with the **same polarity**: a negation (``not``, ``no``, ``never``,
  ``without``, ``n't``…) in one of them whose word is affirmed in the other,
  or a pair of opposites (``enabled``/``disabled``, ``before``/``after``,
  ``encouraged``/``discouraged``) breaks it;
- and its content words are mostly there (the share is the result; the
  caller decides the bar).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_TOKEN = re.compile(
    r"""
    (?P<flag>(?<![\w\-/.])--?[A-Za-z][\w\-]*(?:=[^\s,;)\]]+)?)
  | (?P<date>(?<![\w.])\d{4}-\d{2}-\d{2}(?![\w]))
  | (?P<hex>(?<![\w.])0[xX][0-9A-Fa-f]+(?![\w]))
  | (?P<num>(?<![\w.])\d+(?:,\d{3})*(?:\.\d+)*(?:[eE][+-]?\d+)?%?)
  | (?P<word>[A-Za-z_$#][\w$#]*(?:[.\-'’][\w$#]+)*)
  | (?P<punct>[,;:()]|\s[-+*/=]\s)
    """,
    re.VERBOSE,
)
_FORMULA = re.compile(r"[\w.]+(?:\s+[-+*/]\s+[\w.]+)+")
_QUOTED = re.compile(r'"[^"]{1,40}"')  # a literal value: "0x3e8", "sqlite_sequence"
_NUMBER_WORDS = {
    "two": "2",
    "three": "3",
    "four": "4",
    "five": "5",
    "six": "6",
    "seven": "7",
    "eight": "8",
    "nine": "9",
    "ten": "10",
    "eleven": "11",
    "twelve": "12",
    "twenty": "20",
    "hundred": "100",
    "thousand": "1000",
    "million": "1000000",
    "billion": "1000000000",
    "twice": "2",
    "half": "0.5",
    "dozen": "12",
}
_NEGATION_TEXT = "not no never cannot without none nothing neither nor nobody unable"
_NEGATIONS = frozenset(_NEGATION_TEXT.split())
# Words between a negation and the word it negates ("does not *need* to",
# "will never be *used*").
_GAP_TEXT = """be been being is are was were do does did have has had to the a an any also
    always ever yet longer more directly explicitly necessarily"""
_NEGATION_GAP = frozenset(_GAP_TEXT.split())
_OPPOSITES = [
    ("enabl", "disabl"),
    ("befor", "after"),
    ("first", "last"),
    ("true", "false"),
    ("always", "never"),
    ("allow", "forbid"),
    ("includ", "exclud"),
    ("same", "different"),
    ("accept", "reject"),
    ("larger", "smaller"),
    ("increas", "decreas"),
    ("rais", "lower"),
    ("faster", "slower"),
    ("above", "below"),
    ("stdout", "stderr"),
    ("minimum", "maximum"),
    ("higher", "lower"),
    ("continu", "stop"),
    ("pass", "fail"),
    ("success", "failur"),
    ("requir", "optional"),
    ("synchronous", "asynchronous"),
    ("automatic", "manual"),
    ("ascend", "descend"),
    ("positiv", "negativ"),
    ("insid", "outsid"),
    ("global", "local"),
    ("open", "clos"),
    ("good", "poor"),
    ("fast", "slow"),
    ("chang", "unchang"),
    ("chang", "stay"),
    ("perform", "skip"),
    ("encourag", "discourag"),
    ("easy", "hard"),
    ("safe", "unsafe"),
]
_OPPOSITE_STEMS: list[tuple[str, str]] = []  # filled once stem() is defined
_CONTINUATION_TEXT = "which this that it they these those such its their"
_CONTINUATIONS = frozenset(_CONTINUATION_TEXT.split())
# Software documentation says a feature is new in a version; answers say added.
_SAME_STEM = {"introduc": "new", "add": "new", "ad": "new"}
_NEGATIVE_PREFIXES = ("un", "in", "im", "dis", "non")
_STOPWORD_TEXT = """a about above after again against all also am an and any are as at be
    because been before being below between both but by can could did do does doing down
    during each few for from further had has have having he her here hers him his how i if in
    into is it its itself just let me more most my no nor not now of off on once only or other
    our out over own same she should so some such than that the their them then there these
    they this those through to too under until up very was we were what when where which while
    who whom why will with would you your yours may might must shall well yes one ones via
    whose whether either else etc e.g i.e per both within upon onto"""
_STOPWORDS = frozenset(_STOPWORD_TEXT.split())
# Capitalised in documentation without being names (headings, notes).
_CAPITALISED_TEXT = "Note Notes New See Use Example Examples Warning Options Synopsis"
_CAPITALISED = frozenset(_CAPITALISED_TEXT.split())
_CLAUSE_BREAK = re.compile(r"[,;:]|\s(?:but|so|whereas|although|though)\s", re.IGNORECASE)


@dataclass(frozen=True)
class Token:
    text: str  # as written
    kind: str  # flag date hex num word
    key: str  # normalised: what is compared
    start: int  # in the text read


def _number_key(raw: str) -> str:
    return raw.replace(",", "").rstrip("%").lower()


def stem(word: str) -> str:
    """Crude, but the same on both sides: ``invoked``/``invokes``/``invoke`` -> ``invok``."""
    word = word.lower().strip("'’")
    if word.endswith("ies") and len(word) > 4:
        word = word[:-3] + "y"
    for suffix in ("ations", "ation", "ings", "ing", "edly", "ied", "ed", "es", "ly", "s"):
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            if suffix == "s" and word.endswith("ss"):
                break
            word = word[: -len(suffix)]
            break
    if word.endswith("e") and len(word) > 3:
        word = word[:-1]
    return word[:7]


def tokens(text: str) -> list[Token]:
    out: list[Token] = []
    for match in _TOKEN.finditer(text):
        kind = match.lastgroup or "word"
        raw = match.group()
        if kind == "punct":
            out.append(Token(raw.strip(), "punct", raw.strip(), match.start()))
            continue
        if kind == "num":
            raw = raw.rstrip(",")
            key = _number_key(raw)
        elif kind == "word" and raw.lower() in _NUMBER_WORDS:
            kind, key = "num", _NUMBER_WORDS[raw.lower()]
        else:
            key = raw.lower().rstrip(".")
        out.append(Token(raw, kind, key, match.start()))
    return out


def _is_identifier(raw: str) -> bool:
    core = raw.rstrip(".")
    if any(ch.isdigit() for ch in core) or "_" in core or "." in core:
        return True
    uppers = sum(ch.isupper() for ch in core)
    if uppers >= 2 and len(core) >= 2:
        return True
    return uppers >= 1 and any(ch.isupper() for ch in core[1:])


def _is_compound(raw: str) -> bool:
    parts = raw.split("-")
    return len(parts) > 1 and all(p.isalpha() and len(p) >= 2 for p in parts)


def specific_key(token: Token, first: bool, call: bool = False) -> str | None:
    """The key a specific is compared by, or None for a plain word.
    ``first``: the sentence's first word (capitalised anyway); ``call``: the
    word is followed by "(" (a command or function: ``endif()``)."""
    if call and token.kind == "word":
        return "@" + token.text.lower()
    if token.kind in ("num", "date", "hex"):
        return "#" + token.key
    if token.kind == "flag":
        return "-" + token.key
    if token.kind != "word":
        return None
    raw = token.text.rstrip(".")
    if _is_identifier(raw):
        if raw.isupper() and len(raw) <= 3:
            return "=" + raw  # ON/OFF, NEW/OLD: case matters
        base = raw.lower()
        if raw[:-1].isupper() and raw.endswith("s"):  # ROWIDs
            base = base[:-1]
        return "@" + base
    if _is_compound(raw):
        return "~" + raw.lower().replace("-", " ")
    if first or raw.lower() in _STOPWORDS or raw in _CAPITALISED:
        return None
    if raw[:1].isupper() and raw[1:].islower() and len(raw) >= 2:
        return "@" + raw.lower()  # a proper name: Windows, Congress
    return None


def _content_stem(token: Token) -> str | None:
    if token.kind != "word":
        return None
    lower = token.key
    if lower in _STOPWORDS or lower in _NEGATIONS or len(lower) < 3 or lower.endswith("n't"):
        return None
    stemmed = stem(lower)
    return _SAME_STEM.get(stemmed, stemmed)


@dataclass(frozen=True)
class Reading:
    """A piece of text as the checks read it."""

    specifics: tuple[str, ...]  # keys, in order of appearance
    stems: tuple[str, ...]  # content-word stems, in order
    tokens: tuple[Token, ...]
    negated: frozenset[str]  # stems a negation applies to
    affirmed: frozenset[str]  # stems that occur without a negation
    units: tuple[tuple[str, str], ...]  # (number key, the word after it)
    formulas: tuple[str, ...]
    words: frozenset[str]  # every word's stem, function words too (before/after)
    # specific -> (the nearest other specifics, the two nearest content words)
    neighbours: tuple[tuple[str, tuple[str, ...], tuple[str, ...]], ...]


def _negation_scope(toks: list[Token]) -> tuple[set[str], set[str]]:
    negated: set[str] = set()
    for i, token in enumerate(toks):
        low = token.key
        if token.kind != "word" or not (low in _NEGATIONS or low.endswith("n't")):
            continue
        for nxt in toks[i + 1 : i + 6]:
            if nxt.kind == "punct":
                break
            if nxt.kind == "word" and nxt.key in _NEGATION_GAP:
                continue
            content = _content_stem(nxt)
            if content is not None:
                negated.add(content)
            break
    affirmed: set[str] = set()
    for i, token in enumerate(toks):
        content = _content_stem(token)
        if content is None:
            continue
        before = [t.key for t in toks[max(0, i - 4) : i] if t.kind == "word"]
        if not any(w in _NEGATIONS or w.endswith("n't") for w in before):
            affirmed.add(content)
    return negated, affirmed


def read(text: str, first_word_is_name: bool = True) -> Reading:
    toks = tokens(text)
    words = [t for t in toks if t.kind != "punct"]
    specifics: list[str] = []
    stems: list[str] = []
    positions: list[tuple[int, str, bool]] = []  # (index, key or stem, is specific)
    units: list[tuple[str, str]] = []
    for index, token in enumerate(words):
        first = index == 0 and not first_word_is_name
        call = text[token.start + len(token.text) : token.start + len(token.text) + 1] == "("
        key = specific_key(token, first, call)
        if key is not None:
            specifics.append(key)
            positions.append((index, key, True))
            if token.kind == "num" and index + 1 < len(words):
                nxt = words[index + 1]
                gap = text[token.start + len(token.text) : nxt.start]
                unit = _content_stem(nxt)
                if unit is not None and gap in ("", " ", "-") and specific_key(nxt, False) is None:
                    units.append((key, unit))
            continue
        content = _content_stem(token)
        if content is not None:
            stems.append(content)
            positions.append((index, content, False))
    negated, affirmed = _negation_scope(toks)
    return Reading(
        specifics=tuple(specifics),
        stems=tuple(stems),
        tokens=tuple(toks),
        negated=frozenset(negated),
        affirmed=frozenset(affirmed),
        units=tuple(units),
        formulas=tuple(_squash(f.group()).rstrip(".") for f in _FORMULA.finditer(text))
        + tuple(_squash(q.group()) for q in _QUOTED.finditer(text)),
        words=frozenset(stem(t.key) for t in toks if t.kind == "word"),
        neighbours=tuple(_neighbours(positions)),
    )


def _squash(text: str) -> str:
    return re.sub(r"\s+", "", text).lower()


def _neighbours(
    positions: list[tuple[int, str, bool]],
) -> list[tuple[str, tuple[str, ...], tuple[str, ...]]]:
    """Per specific: the other specifics by distance, and the two nearest
    content words: what it must still stand next to in the source."""
    out = []
    for i, (_, key, special) in enumerate(positions):
        if not special:
            continue
        others = sorted((abs(j - i), k) for j, (_, k, s) in enumerate(positions) if s and j != i)
        words = sorted((abs(j - i), k) for j, (_, k, s) in enumerate(positions) if not s)
        out.append((key, tuple(k for _, k in others), tuple(k for _, k in words[:2])))
    return out


# ---- claims: an answer sentence, clause by clause ----------------------------


@dataclass(frozen=True)
class Clause:
    text: str
    reading: Reading

    @property
    def weight(self) -> int:
        return len(self.reading.specifics) + len(self.reading.stems)


def whole(text: str) -> Clause:
    return Clause(text, read(text, first_word_is_name=False))


def clauses(text: str) -> list[Clause]:
    """The sentence split at , ; : and "but"/"so", pieces with fewer than two
    words to check joined to the one before (or after): "In theory, …"."""
    pieces: list[str] = []
    position = 0
    for match in _CLAUSE_BREAK.finditer(text):
        pieces.append(text[position : match.start()])
        position = match.end()
    pieces.append(text[position:])
    first_is_name = True
    out: list[Clause] = []
    pending = ""
    for piece in pieces:
        joined = f"{pending} {piece}".strip() if pending else piece.strip()
        reading = read(joined, first_word_is_name=not (first_is_name and not out))
        if len(reading.specifics) + len(reading.stems) < 2:
            pending = joined
            continue
        pending = ""
        out.append(Clause(joined, reading))
    if pending:
        if out:
            last = out.pop()
            joined = f"{last.text} {pending}"
            out.append(Clause(joined, read(joined, first_word_is_name=len(out) > 0)))
        else:
            out.append(Clause(pending, read(pending, first_word_is_name=False)))
    return out


# ---- passages: a source, sentence by sentence ---------------------------------


@dataclass(frozen=True)
class Passage:
    start: int  # offsets in the source's collapsed text (the citation excerpt's)
    end: int
    reading: Reading
    specifics: frozenset[str]
    stems: frozenset[str]
    squashed: str
    parts: tuple[frozenset[str], ...]  # per source sentence: its specifics and stems
    singles: tuple[Passage, ...] = ()  # a pair's two sentences, read alone


def _sentence_words(text: str) -> tuple[Reading, frozenset[str], frozenset[str]]:
    """A source sentence's reading; its first word counts both as a word and,
    capitalised, as a name (``Zero arguments…``, ``Oracle is…``)."""
    reading = read(text, first_word_is_name=False)
    specifics = set(reading.specifics)
    stems = set(reading.stems)
    words = [t for t in reading.tokens if t.kind == "word"]
    # Any word answers to a name or command written as one: "while" to while().
    specifics.update("@" + w.key for w in words)
    specifics.update("~" + w.key.replace("-", " ") for w in words if "-" in w.key)
    stems.update(stem(k[1:]) for k in specifics if k[0] == "@" and k[1:].isalpha())
    return reading, frozenset(specifics), frozenset(stems)


def read_passage(pieces: list[tuple[int, int, str]], singles: tuple[Passage, ...] = ()) -> Passage:
    """One or two adjacent source sentences: (start, end, text) each; a pair
    also gets its sentences' own passages (``singles``)."""
    readings = [_sentence_words(text) for _, _, text in pieces]
    whole = " ".join(text for _, _, text in pieces)
    specifics = frozenset().union(*(r[1] for r in readings))
    stems = frozenset().union(*(r[2] for r in readings))
    negated = frozenset().union(*(r[0].negated for r in readings))
    affirmed = frozenset().union(*(r[0].affirmed for r in readings))
    units = tuple(u for r in readings for u in r[0].units)
    first = readings[0][0]
    reading = Reading(
        specifics=tuple(specifics),
        stems=tuple(stems),
        tokens=first.tokens,
        negated=negated,
        affirmed=affirmed,
        units=units,
        formulas=(),
        words=frozenset().union(*(r[0].words for r in readings)),
        neighbours=(),
    )
    return Passage(
        pieces[0][0],
        pieces[-1][1],
        reading,
        specifics,
        stems,
        _squash(whole),
        tuple(r[1] | r[2] for r in readings),
        singles,
    )


def topic_names(titles: str) -> frozenset[str]:
    """Names the sources are about: those in their documents' titles
    ("add_subdirectory — CMake 3.25.1 Documentation")."""
    keys = (specific_key(t, False) for t in tokens(titles))
    return frozenset(k for k in keys if k is not None and k[0] in "@=")


# ---- the checks ------------------------------------------------------------------


def _has(passage: Passage, key: str, topic: frozenset[str]) -> bool:
    if key in passage.specifics or key in topic:
        return True
    if key[0] == "~":  # a hyphenated term, written with a space or a hyphen
        return key[1:].replace(" ", "") in passage.squashed.replace("-", "")
    if key[0] == "-":  # a flag: also inside a longer one (-DX=1 holds -DX)
        return key[1:] in passage.squashed
    if key[0] == "@":  # an identifier also counts inside a longer one (foo in foo_bar())
        return any(s.startswith("@") and key[1:] in s for s in passage.specifics)
    return False


def specifics_hold(clause: Reading, passage: Passage, topic: frozenset[str]) -> bool:
    if not all(_has(passage, key, topic) for key in clause.specifics):
        return False
    if not all(f in passage.squashed for f in clause.formulas):
        return False
    for _number, unit in clause.units:
        if unit not in passage.stems and not any(u == unit for _, u in passage.reading.units):
            return False
    for key, specifics, words in clause.neighbours:
        if key in topic:
            continue
        # The nearest specifics that are not what every source is about, else
        # the nearest words, in the same source sentence as the specific itself.
        near = [k for k in specifics if k not in topic][:1] or list(words)
        if not near:
            continue
        parts = [p for p in _related_parts(passage) if key in p] or list(passage.parts)
        if not any(n in part for part in parts for n in near):
            return False
    return True


def _related_parts(passage: Passage) -> list[frozenset[str]]:
    """A pair whose second sentence goes on about the first ("Which is…",
    "This option…") is one statement; other pairs are two."""
    if len(passage.singles) == 2 and passage.singles[1].reading.tokens:
        opener = passage.singles[1].reading.tokens[0].key
        if opener in _CONTINUATIONS:
            return [passage.parts[0] | passage.parts[1]]
    return list(passage.parts)


def polarity_holds(clause: Reading, passage: Passage) -> bool:
    """False when a negation or a pair of opposites turns the passage's statement
    around; a pair of sentences is read sentence by sentence, each one that
    holds half the clause's words or more."""
    if passage.singles:
        related = [p for p in passage.singles if coverage(clause, p) >= 0.5]
        return all(_polarity(clause, p) for p in related or passage.singles)
    return _polarity(clause, passage)


def _polarity(clause: Reading, passage: Passage) -> bool:
    theirs = passage.reading
    if clause.negated & (theirs.affirmed - theirs.negated):
        return False
    if theirs.negated & (clause.affirmed - clause.negated):
        return False
    mine, other = set(clause.words), set(theirs.words)
    for a, b in _OPPOSITE_STEMS:
        if _turned(mine, other, a, b) or _turned(mine, other, b, a):
            return False
    mine, other = set(clause.stems), set(theirs.stems)
    for word in mine - other:
        for prefix in _NEGATIVE_PREFIXES:
            if stem(prefix + word) in other or (
                word.startswith(prefix) and stem(word[len(prefix) :]) in other
            ):
                base = word[len(prefix) :] if word.startswith(prefix) else word
                if len(base) >= 4:
                    return False
    return True


_OPPOSITE_STEMS[:] = [(stem(a), stem(b)) for a, b in _OPPOSITES]


def _turned(mine: set[str], other: set[str], a: str, b: str) -> bool:
    """The clause says ``a`` where the passage says its opposite ``b`` (and
    neither says both)."""
    return (
        _holds_word(mine, a)
        and _holds_word(other, b)
        and not _holds_word(other, a)
        and not _holds_word(mine, b)
    )


def _holds_word(stems: set[str], prefix: str) -> bool:
    return any(s.startswith(prefix[:7]) for s in stems if len(s) >= min(len(prefix), 3))


def coverage(clause: Reading, passage: Passage) -> float:
    """Share of the clause's words in the passage; specifics count double."""
    stems = set(clause.stems)
    specifics = set(clause.specifics)
    total = 2 * len(specifics) + len(stems)
    if total == 0:
        return 0.0
    found = 2 * len(specifics)  # checked by specifics_hold
    found += sum(1 for s in stems if s in passage.stems)
    return found / total
