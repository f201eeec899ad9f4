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
  ``1000``; ``two`` = ``2``, ``twenty six`` = ``26``, ``55 million`` =
  ``55000000``), dates, spans of time (``a week``), versions, hex values, flags
  (``--log-level``, ``-DX=1``), identifiers (``SQLITE_MAX_LENGTH``,
  ``CMakeLists.txt``, ``OFF``), proper names (``Windows``, ``Library of
  Congress``), hyphenated terms (``comma-separated``) and formulas
  (``a + b - c``); a name of the source documents' titles is taken as
  present in each sentence; a source's capitalised name holds its initials
  (``SPI``), a possessive is its name;
- in the **same relation**: a number's unit (``1000 pages``) is in the
  passage, and each specific has at least one of its neighbours in the
  clause (the nearest other specific, else the nearest content words) in
  the passage too, so two values of a source exchanged, or a version moved
  to another feature, do not pass; two counts of the same thing keep their
  order; across two source sentences the clause's values are said of its
  subject; a name keeps what a parenthesis says it is ("Dale Scheetz
  (Secretary)");
- with the **same polarity**: a negation (``not``, ``no``, ``never``,
  ``without``, ``n't``…) in one of them whose word is affirmed (and not also
  negated) in the other, a negative prefix (``unreachable``), a pair of
  opposites (``enabled``/``disabled``, ``allow``/``prevent``,
  ``required``/``optional``) — in a sentence that says both ("enabled by
  default but can be disabled"), in the part of it sharing the most of the
  clause's words, and part by part for a clause that says both — the ends
  of "from … to …", or a count of the same thing the passage's count does
  not allow ("several writers" / "only one writer", "a handful" /
  "twenty six") breaks it;
- and its content words are mostly there (the share is the result; the
  caller decides the bar; a manner word or a light verb the passage lacks
  is not counted).

Words are compared by a crude stem (``used``/``using`` -> ``use``), read as
their synonym group's first word (``raise`` -> ``increase``; a short list of
verbs technical prose uses interchangeably, ``_SYNONYM_TEXT``); a hyphenated
source word holds its parts (``run-time`` holds ``run`` and ``time``), and a
source that raises or lowers something changes it.
"""

from __future__ import annotations

import functools
import itertools
import re
from collections.abc import Iterable
from dataclasses import dataclass, replace

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
_POSSESSIVE = re.compile(r"['’]s$")  # "Debian's" is Debian
_FORMULA = re.compile(r"[\w.]+(?:\s+[-+*/]\s+[\w.]+)+")
_QUOTED = re.compile(r'"[^"]{1,40}"')  # a literal value: "0x3e8", "sqlite_sequence"
_ONES_TEXT = """two three four five six seven eight nine ten eleven twelve thirteen fourteen
    fifteen sixteen seventeen eighteen nineteen"""
_TENS_TEXT = "twenty thirty forty fifty sixty seventy eighty ninety"
_NUMBER_WORDS = {
    **{w: str(n) for n, w in enumerate(_ONES_TEXT.split(), 2)},
    **{w: str(10 * n) for n, w in enumerate(_TENS_TEXT.split(), 2)},
    "hundred": "100",
    "thousand": "1000",
    "million": "1000000",
    "billion": "1000000000",
    "twice": "2",
    "half": "0.5",
    "dozen": "12",
}
# Words that scale the number before them: "55 million", "nine hundred".
_SCALES = {"hundred": 100, "thousand": 1000, "million": 10**6, "billion": 10**9}
_NEGATION_TEXT = "not no never cannot without none nothing neither nor nobody unable"
_NEGATIONS = frozenset(_NEGATION_TEXT.split())
# Words between a negation and the word it negates ("does not *need* to",
# "will never be *used*").
_GAP_TEXT = """be been being is are was were do does did have has had to the a an any also
    always ever yet longer more directly explicitly necessarily try tries tried trying attempt
    able"""
_NEGATION_GAP = frozenset(_GAP_TEXT.split())
_OPPOSITES = [  # words; compared by their stems' synonym groups
    ("enabled", "disabled"),
    ("before", "after"),
    ("first", "last"),
    ("true", "false"),
    ("always", "never"),
    ("allow", "prevent"),  # forbid, prohibit, disallow: one group below
    ("include", "exclude"),
    ("same", "different"),
    ("accept", "reject"),
    ("larger", "smaller"),
    ("increase", "decrease"),  # raise, lower, reduce: one group below
    ("faster", "slower"),
    ("above", "below"),
    ("stdout", "stderr"),
    ("minimum", "maximum"),
    ("higher", "lower"),
    ("continue", "stop"),
    ("pass", "fail"),
    ("success", "failure"),
    ("required", "optional"),  # need, must, mandatory: one group below
    ("synchronous", "asynchronous"),
    ("automatic", "manual"),
    ("ascending", "descending"),
    ("positive", "negative"),
    ("inside", "outside"),
    ("global", "local"),
    ("open", "closed"),
    ("good", "poor"),
    ("fast", "slow"),
    ("changed", "unchanged"),
    ("changed", "stays"),
    ("performed", "skipped"),
    ("encouraged", "discouraged"),
    ("easy", "hard"),
    ("safe", "unsafe"),
    ("explicit", "implicit"),
    ("absolute", "relative"),
    ("newer", "older"),
    ("earlier", "later"),
    ("deprecated", "recommended"),
    ("added", "removed"),  # new, introduce / delete, drop: one group each below
    ("keep", "replace"),  # stay, remain, retain: one group below
    ("merge", "separate"),
]
_OPPOSITE_STEMS: list[tuple[str, str]] = []  # filled once stem() is defined
_CONTINUATION_TEXT = "which this that it they these those such its their"
_CONTINUATIONS = frozenset(_CONTINUATION_TEXT.split())
# Words documentation and answers use for the same thing; each group is read
# as its first word, on both sides (in the word share and in the opposites).
# Only words that mean the same in any technical text: a paraphrase changes
# the verb, not the fact. (Software documentation says a feature is new in a
# version; answers say added.)
_SYNONYM_TEXT = """
    new introduce add
    change modify alter
    keep kept stay remain retain preserve
    increase raise
    decrease lower reduce
    need require must necessary mandatory
    override supersede precedence win
    allow permit
    prevent forbid prohibit disallow
    run execute invoke
    create generate
    delete remove erase drop
    large big huge
    small tiny
    show display
    specify give
    start begin prefix preface
    arise come
    maximum max
    minimum min
    before prior previous earlier
    """
_SAME_STEM: dict[str, str] = {}  # filled once stem() is defined
# Quantity words, as the counts they allow: "several writers" where the source
# says "only one writer", "a handful of countries" where it counts twenty-six.
_MANY = float("inf")
_QUANTITY: dict[str, tuple[float, float]] = {
    "one": (1, 1),
    "single": (1, 1),
    "sole": (1, 1),
    "couple": (2, 3),
    "few": (2, 9),
    "handful": (2, 9),
    "several": (2, 19),
    "multiple": (2, _MANY),
    "many": (3, _MANY),
    "numerous": (10, _MANY),
    "dozens": (24, _MANY),
    "hundreds": (200, _MANY),
    "thousands": (2000, _MANY),
}
# Before a number, words that make it a bound or an estimate ("over fifty").
_ROUGHLY_TEXT = "over more than around about nearly almost some up least roughly approximately"
_ROUGHLY = frozenset(_ROUGHLY_TEXT.split())
_TIME_UNIT_TEXT = "minute hour day week month year decade century"  # not "second": also an ordinal
_NEGATIVE_PREFIXES = ("un", "in", "im", "dis", "non")
_STOPWORD_TEXT = """a about above after again against all also am an and any are as at be
    because been before being below between both but by can could did do does doing down
    during each few for from further had has have having he her here hers him his how i if in
    into is it its itself just let me more most my no nor not now of off on once only or other
    our out over own same she should so some such than that the their them then there these
    they this those through to too under until up very was we were what when where which while
    who whom why will with would you your yours may might shall well yes one ones via
    whose whether either else etc e.g i.e per both within upon onto"""
_STOPWORDS = frozenset(_STOPWORD_TEXT.split())
# Capitalised in documentation without being names (headings, notes).
_CAPITALISED_TEXT = "Note Notes New See Use Example Examples Warning Options Synopsis"
_CAPITALISED = frozenset(_CAPITALISED_TEXT.split())
# Where a source sentence turns: "enabled by default but can be disabled".
_SOURCE_CLAUSE = re.compile(
    r";|\s(?:but|whereas|whileas|while|whilst|however|although|though|except|unless)\s",
    re.IGNORECASE,
)
# Not inside a number or a date: "9,000", "July 24th, 1998", "08:00".
_CLAUSE_BREAK = re.compile(
    r",(?!\d)(?!\s\d{4}\b)|;|:(?!\d)|\s(?:but|so|whereas|although|though)\s", re.IGNORECASE
)


@dataclass(frozen=True)
class Token:
    text: str  # as written
    kind: str  # flag date hex num word
    key: str  # normalised: what is compared
    start: int  # in the text read


def _number_key(raw: str) -> str:
    return raw.replace(",", "").rstrip("%").lower()


@functools.lru_cache(maxsize=1 << 16)
def stem(word: str) -> str:
    """Crude, but the same on both sides: ``invoked``/``invokes``/``invoke`` ->
    ``invok``, ``used``/``using`` -> ``use``, ``modified``/``modify`` ->
    ``modifi``, ``running`` -> ``run``, ``reachable`` -> ``reach``."""
    word = word.lower().strip("'’")
    if word.endswith(("ies", "ied")) and len(word) > 4:
        word = word[:-3] + "y"
    for suffix in _SUFFIXES:
        rest = len(word) - len(suffix)
        if not word.endswith(suffix) or rest < _SUFFIX_REST.get(suffix, 3):
            continue
        if rest == 2 and word[1] in "aeiou":
            break  # need, feed, bing: not a suffix
        if suffix == "s" and word.endswith(("ss", "us", "is")):
            break
        word = word[: -len(suffix)]
        if suffix in ("ing", "ed", "ings", "edly"):
            if len(word) == 2 and word[-1] not in "aeiou":
                word += "e"  # us(ed) -> use; but ne(ed) stays need
            elif len(word) >= 4 and word[-1] == word[-2] and word[-1] not in "lsz":
                word = word[:-1]  # runn(ing) -> run, embedd(ed) -> embed
        break
    if word.endswith("e") and len(word) > 3:
        word = word[:-1]
    if word.endswith("y") and len(word) > 3:
        word = word[:-1] + "i"  # modify, modifi(ed)
    return word[:7]


# Suffixes stripped, longest first, and the letters each must leave: "apply"
# keeps its "ly", "table" its "able", "used" becomes "use" (two letters + e).
_SUFFIXES: tuple[str, ...] = (
    "ations",
    "ation",
    "ings",
    "ing",
    "edly",
    "ables",
    "ibles",
    "able",
    "ible",
)
_SUFFIXES += ("ed", "es", "ly", "s")
_SUFFIX_REST = {"ing": 2, "ed": 2, "ables": 4, "ibles": 4, "able": 4, "ible": 4, "ly": 4}


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
        elif kind == "word" and _word_number(raw) is not None:
            kind, key = "num", str(_word_number(raw))
        else:
            key = _POSSESSIVE.sub("", raw.lower().rstrip("."))
        out.append(Token(raw, kind, key, match.start()))
    return _joined_numbers(text, out)


def _word_number(raw: str) -> int | float | None:
    """``fifteen`` -> 15, ``twenty-six`` -> 26; None for other words."""
    parts = raw.lower().split("-")
    if not all(p in _NUMBER_WORDS for p in parts):
        return None
    values = [float(_NUMBER_WORDS[p]) for p in parts]
    value = sum(values) if len(values) > 1 else values[0]
    return int(value) if value == int(value) else value


def _joined_numbers(text: str, toks: list[Token]) -> list[Token]:
    """A number said in several words is one number: "55 million" = 55,000,000,
    "one hundred and sixty" = 160, "twenty six" = 26 (as a reader adds them)."""
    out: list[Token] = []
    i = 0
    while i < len(toks):
        run = [toks[i]] if _starts_number(toks, i) else []
        j = i + 1
        while run and j < len(toks):
            nxt, last = toks[j], run[-1]
            if nxt.kind == "num" and _is_word(nxt) and (nxt.key in _SCALE_KEYS or _adds_to(last)):
                run.append(nxt)
            elif (
                nxt.key == "and"
                and last.key in _SCALE_KEYS
                and j + 1 < len(toks)
                and toks[j + 1].kind == "num"
                and _is_word(toks[j + 1])
            ):
                j += 1
                continue
            else:
                break
            j += 1
        if len(run) < 2:
            out.append(toks[i])
            i += 1
            continue
        end = run[-1].start + len(run[-1].text)
        raw = text[run[0].start : end]
        out.append(Token(raw, "num", _sum_number(run), run[0].start))
        i = j
    return out


_SCALE_KEYS = frozenset(str(v) for v in _SCALES.values())


def _is_word(token: Token) -> bool:
    return token.text[:1].isalpha()


def _starts_number(toks: list[Token], i: int) -> bool:
    """A number, or "one" right before a scale ("one hundred")."""
    token = toks[i]
    if token.kind == "num":
        return True
    nxt = toks[i + 1] if i + 1 < len(toks) else None
    return (
        token.key in ("one", "a") and nxt is not None and nxt.key in _SCALE_KEYS and _is_word(nxt)
    )


def _adds_to(last: Token) -> bool:
    """ "twenty" + "six", "hundred" + "sixty": a tens or a scale word before."""
    if last.key in _SCALE_KEYS:
        return True
    return _is_word(last) and last.key.isdigit() and int(last.key) % 10 == 0 and int(last.key) < 100


def _sum_number(run: list[Token]) -> str:
    total, current = 0.0, 0.0
    for token in run:
        value = 1.0 if token.kind != "num" else float(token.key)
        if token.kind == "num" and token.key in _SCALE_KEYS and _is_word(token):
            current = (current or 1.0) * value
            if value >= 1000:
                total, current = total + current, 0.0
        else:
            current += value
    value = total + current
    return str(int(value)) if value == int(value) else str(value)


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
    raw = _POSSESSIVE.sub("", token.text.rstrip("."))
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
    return canonical(stem(lower))


@dataclass(frozen=True)
class Reading:
    """A piece of text as the checks read it."""

    specifics: tuple[str, ...]  # keys, in order of appearance
    stems: tuple[str, ...]  # content-word stems, in order
    tokens: tuple[Token, ...]
    negated: frozenset[str]  # stems a negation applies to
    affirmed: frozenset[str]  # stems that occur without a negation
    units: tuple[tuple[str, str], ...]  # (number key, the word after it)
    # each number, in order, with the content words of the two words after it
    counted: tuple[tuple[str, frozenset[str]], ...]
    formulas: tuple[str, ...]
    words: frozenset[str]  # every word's stem, function words too (before/after)
    poles: frozenset[tuple[int, int]]  # (pair of _OPPOSITES, side) its words say
    # (the counts a quantity word or a count allows, the noun counted, said in digits)
    quantities: frozenset[tuple[float, float, str, bool]]
    # specific -> (the nearest other specifics, the two nearest content words)
    neighbours: tuple[tuple[str, tuple[str, ...], tuple[str, ...]], ...]
    # manner words ("heavily", "actually") and light verbs ("make", "got"): what
    # a paraphrase adds or drops without changing the fact
    soft: frozenset[str] = frozenset()
    # a name and what a parenthesis right after it says it is, both ways:
    # "Dale Scheetz (Secretary)" -> (@scheetz, @secretary), (@secretary, @scheetz)
    appositions: frozenset[tuple[str, str]] = frozenset()
    # what it says things go from and to: ("unst", "from"), ("test", "to")
    directions: frozenset[tuple[str, str]] = frozenset()
    # its parts around "but", "while", ";"...: (stems, poles) each, when two or more
    parts: tuple[tuple[frozenset[str], frozenset[tuple[int, int]]], ...] = ()


def _negation_scope(toks: list[Token]) -> tuple[set[str], set[str]]:
    negated: set[str] = set()
    for i, token in enumerate(toks):
        low = token.key
        if token.kind != "word" or not (low in _NEGATIONS or low.endswith("n't")):
            continue
        if i and toks[i - 1].key in ("need", "needs"):
            negated.add("need")  # "need not be quoted": the need is what is denied
        for nxt in toks[i + 1 : i + 6]:
            if nxt.kind == "punct":
                break
            if nxt.kind == "word" and (nxt.key in _NEGATION_GAP or _is_manner(nxt.key)):
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
    counted: list[tuple[str, frozenset[str]]] = []
    for index, token in enumerate(words):
        first = index == 0 and not first_word_is_name
        call = text[token.start + len(token.text) : token.start + len(token.text) + 1] == "("
        key = specific_key(token, first, call)
        if key is not None:
            specifics.append(key)
            positions.append((index, key, True))
            if token.kind == "num":
                after = (_content_stem(t) for t in words[index + 1 : index + 3])
                counted.append((key, frozenset(a for a in after if a is not None)))
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
        counted=tuple(counted),
        formulas=tuple(_squash(f.group()).rstrip(".") for f in _FORMULA.finditer(text))
        + tuple(_squash(q.group()) for q in _QUOTED.finditer(text)),
        words=(words_read := frozenset(canonical(stem(t.key)) for t in toks if t.kind == "word")),
        poles=poles_of(words_read),
        quantities=frozenset(_quantities(text, toks)),
        neighbours=tuple(_neighbours(positions)),
        parts=_turns(text),
        directions=_directions(toks),
        appositions=_appositions(toks),
        soft=frozenset(
            c
            for t in toks
            if (c := _content_stem(t)) is not None and (_is_manner(t.key) or c in _LIGHT)
        ),
    )


# -ly words that are not manner adverbs, or that say when, how often or how
# much, which is the fact ("invoked immediately", "hardly used")
_NOT_MANNER_TEXT = """apply reply supply multiply comply imply rely family assembly july italy
    only early daily weekly monthly yearly hardly barely scarcely rarely seldom friendly
    immediately previously recently eventually initially originally finally currently
    subsequently formerly lately shortly instantly frequently occasionally usually
    always automatically manually explicitly implicitly exclusively entirely partially fully"""
_NOT_MANNER = frozenset(_NOT_MANNER_TEXT.split())
_LIGHT_TEXT = "make made get got gotten take took taken bring brought put go went"
_LIGHT: frozenset[str] = frozenset()  # filled once stem() is defined


def _is_manner(word: str) -> bool:
    """An adverb of manner or degree: "heavily", "actually", "simply"."""
    return word.endswith("ly") and len(word) >= 6 and word not in _NOT_MANNER


def _appositions(toks: list[Token]) -> frozenset[tuple[str, str]]:
    out: set[tuple[str, str]] = set()
    for i, token in enumerate(toks):
        if token.key != "(" or i == 0:
            continue
        owner = specific_key(toks[i - 1], False)
        inside = []
        for t in toks[i + 1 : i + 6]:
            if t.key == ")":
                break
            if (key := specific_key(t, False)) is not None:
                inside.append(key)
        if owner is not None and inside:
            out.update({(owner, inside[0]), (inside[0], owner)})
    return frozenset(out)


_DIRECTION = {"from": "from", "to": "to", "into": "to", "onto": "to", "until": "to", "till": "to"}


def _spans(reading: Reading) -> bool:
    """It says where from and where to ("compared to earlier releases" alone does not)."""
    return {way for _, way in reading.directions} == {"from", "to"}


def _directions(toks: list[Token]) -> frozenset[tuple[str, str]]:
    """The word right after "from" and after "to"/"into"/"until" (past an
    article): where something moves from and to, or a span's two ends."""
    out: set[tuple[str, str]] = set()
    for i, token in enumerate(toks):
        way = _DIRECTION.get(token.key) if token.kind == "word" else None
        if way is None:
            continue
        rest = [t for t in toks[i + 1 : i + 3] if t.key not in ("the", "a", "an")][:1]
        for t in rest:
            key = "#" + t.key if t.kind == "num" else _content_stem(t)
            if key is not None:
                out.add((key, way))
    return frozenset(out)


def _turns(text: str) -> tuple[tuple[frozenset[str], frozenset[tuple[int, int]]], ...]:
    """The parts of a text around where it turns ("powerpc was dropped, whereas
    mips64el was introduced"): their words and the sides of opposites they say."""
    pieces = _SOURCE_CLAUSE.split(text)
    if len(pieces) < 2:
        return ()
    out = []
    for piece in pieces:
        toks = tokens(piece)
        stems = frozenset(c for t in toks if (c := _content_stem(t)) is not None)
        words = frozenset(canonical(stem(t.key)) for t in toks if t.kind == "word")
        out.append((stems, poles_of(words)))
    return tuple(out)


def _quantities(text: str, toks: list[Token]) -> set[tuple[float, float, str, bool]]:
    """(the counts allowed, noun, in digits) for each quantity word and the first
    content word or two after it (a count too):
    "only one writer" -> (1, 1, writer), "multiple WAL files" -> (2, inf, wal),
    (2, inf, fil); "over 160 participants" -> (80, inf, particip). Not years,
    nor "64-bit"."""
    out: set[tuple[float, float, str, bool]] = set()
    for i, token in enumerate(toks):
        amount = _amount(toks, i)
        if amount is None:
            continue
        digits = token.kind == "num"
        after = toks[i + 1 : i + 3]
        if digits and after and text[token.start + len(token.text) : after[0].start] != " ":
            continue
        nouns = [c for t in after if t.key not in _QUANTITY and (c := _content_stem(t)) is not None]
        out.update((*amount, noun, digits) for noun in nouns)
    return out


def _amount(toks: list[Token], i: int) -> tuple[float, float] | None:
    token = toks[i]
    if token.kind == "word":
        known = _QUANTITY.get(token.key)
        roughly = i and toks[i - 1].key in _ROUGHLY  # "more than one"
        return (known[0], _MANY) if known and roughly else known
    if token.kind != "num" or not token.key.isdigit():
        return None
    count = float(token.key)
    if len(token.key) == 4 and 1900 <= count <= 2100:
        return None  # a year
    return (count / 2, _MANY) if i and toks[i - 1].key in _ROUGHLY else (count, count)


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
    singles: tuple[Passage, ...] = ()  # a window's sentences, read alone
    # a sentence's parts around "but", "whereas", ";"...: (stems, poles) each
    clauses: tuple[tuple[frozenset[str], frozenset[tuple[int, int]]], ...] = ()
    # statements: sentences joined when one goes on about the one before
    # ("… SQLITE_MAX_FUNCTION_ARG … . The default value of this limit is 100."):
    # their specifics and stems, and their text squashed
    statements: tuple[tuple[frozenset[str], str], ...] = ()


def _sentence_words(text: str) -> tuple[Reading, frozenset[str], frozenset[str]]:
    """A source sentence's reading; its first word counts both as a word and,
    capitalised, as a name (``Zero arguments…``, ``Oracle is…``); a word also
    says what it implies ("raise" a change)."""
    reading = read(text, first_word_is_name=False)
    implied = {_IMPLIES[s] for s in reading.affirmed if s in _IMPLIES}
    reading = replace(reading, affirmed=reading.affirmed | implied)
    specifics = set(reading.specifics)
    stems = set(reading.stems) | {_IMPLIES[s] for s in reading.stems if s in _IMPLIES}
    if any(k[0] == "#" and "." in k for k in specifics):
        stems.add(_VERSION)  # "Perl 5.28" is a version of Perl
    words = [t for t in reading.tokens if t.kind == "word"]
    # A name of several capitalised words answers to its initials: "Software in
    # the Public Interest" to SPI, "United States" to US.
    specifics.update(_initials(reading.tokens))
    # Any word answers to a name or command written as one: "while" to while().
    specifics.update("@" + w.key for w in words)
    specifics.update("~" + w.key.replace("-", " ") for w in words if "-" in w.key)
    stems.update(canonical(stem(k[1:])) for k in specifics if k[0] == "@" and k[1:].isalpha())
    # "run-time" holds "run" and "time" (an answer writes "at run time").
    stems.update(
        canonical(stem(part))
        for w in words
        if "-" in w.key
        for part in w.key.split("-")
        if len(part) >= 3 and part not in _STOPWORDS
    )
    return reading, frozenset(specifics), frozenset(stems)


_NAME_JOINERS = frozenset({"of", "the", "in", "for", "and", "de"})


def _initials(toks: Iterable[Token]) -> set[str]:
    out: set[str] = set()
    run: list[str] = []
    for token in [*toks, Token("", "punct", "", 0)]:
        if token.kind == "word" and token.text[:1].isupper():
            if run or token.key not in _STOPWORDS:  # not a sentence's "The"
                run.append(token.text[0])
            continue
        if token.kind == "word" and token.key in _NAME_JOINERS and run:
            continue
        if len(run) >= 2:
            initials = "".join(run)
            out.update({"=" + initials, "@" + initials.lower()})
        run = []
    return out


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
        counted=tuple(c for r in readings for c in r[0].counted),
        formulas=(),
        words=frozenset().union(*(r[0].words for r in readings)),
        poles=frozenset().union(*(r[0].poles for r in readings)),
        quantities=frozenset().union(*(r[0].quantities for r in readings)),
        directions=frozenset().union(*(r[0].directions for r in readings)),
        appositions=frozenset().union(*(r[0].appositions for r in readings)),
        neighbours=(),
    )
    statements: list[tuple[frozenset[str], str]] = []
    previous = ""
    for (_, _, text), (sentence, keys, words) in zip(pieces, readings, strict=True):
        # "… using a command-line option like this:" goes on in what follows it
        if statements and (_goes_on(sentence) or previous.endswith(":")):
            last_keys, last_text = statements.pop()
            statements.append((last_keys | keys | words, last_text + _squash(text)))
        else:
            statements.append((keys | words, _squash(text)))
        previous = text
    return Passage(
        pieces[0][0],
        pieces[-1][1],
        reading,
        specifics,
        stems,
        _squash(whole),
        tuple(r[1] | r[2] for r in readings),
        singles,
        _turns(whole) if len(pieces) == 1 else (),
        tuple(statements),
    )


_ANAPHORS = frozenset({"this", "these", "such"})


def _goes_on(sentence: Reading) -> bool:
    """The sentence is about the one before it: it opens with "Which", "This",
    "It"…, or points back in its first words without a name of its own ("The
    default value of this limit is 100"; not "The WAL approach inverts this")."""
    words = [t.key for t in sentence.tokens if t.kind == "word"][:6]
    if not words:
        return False
    if words[0] in _CONTINUATIONS:
        return True
    pointing = any(w in _ANAPHORS for w in words[:-1])  # a determiner: "this limit"
    return pointing and not any(k[0] in "@=" for k in sentence.specifics)


def topic_names(titles: Iterable[str]) -> frozenset[str]:
    """Names the sources are about: those in their documents' titles
    ("add_subdirectory — CMake 3.25.1 Documentation"), and a title's one-word
    subject, however written ("message — CMake 3.25.1 Documentation")."""
    names: set[str] = set()
    for title in titles:
        keys = (specific_key(t, False) for t in tokens(title))
        names.update(k for k in keys if k is not None and k[0] in "@=")
        subject = _TITLE_SUBJECT.match(title)
        if subject is not None:
            names.add("@" + subject.group(1).lower())
    return frozenset(names)


# A page title naming one thing before a separator: "message — CMake …".
_TITLE_SUBJECT = re.compile(r"\s*([A-Za-z_][\w.]*)\s+[—–|:-]\s")


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
    # A span of time is a value: "delayed by a month" where the source says a week.
    if any(w in _TIME_UNITS and w not in passage.stems for w in clause.stems):
        return False
    for _number, unit in clause.units:
        if unit not in passage.stems and not any(u == unit for _, u in passage.reading.units):
            return False
    if _exchanged(clause.counted, passage.reading.counted):
        return False
    if len(passage.statements) > 1 and not _values_of_subject(clause, passage, topic):
        return False
    for key, specifics, words in clause.neighbours:
        if key in topic:
            continue
        # The nearest specifics that are not what every source is about, else
        # the nearest words, in the same source sentence as the specific itself.
        near = [k for k in specifics if k not in topic][:1] or list(words)
        if not near:
            continue
        statements = [s for s in passage.statements if _in(key, s)] or passage.statements
        if not any(_in(n, s) for s in statements for n in near):
            return False
        if specifics and near[0] == specifics[0] and _apart(key, near[0], passage):
            return False
    return True


def _apart(a: str, b: str, passage: Passage) -> bool:
    """The passage says in parentheses what each of two names next to each other
    in the clause is, and neither is the other: "Dale Scheetz ... Treasurer"
    where it reads "Dale Scheetz (Secretary), and Nils Lohner (Treasurer)"."""
    pairs = passage.reading.appositions
    of_a = {y for x, y in pairs if x == a}
    of_b = {y for x, y in pairs if x == b}
    return bool(of_a) and bool(of_b) and b not in of_a and a not in of_b


def _values_of_subject(clause: Reading, passage: Passage, topic: frozenset[str]) -> bool:
    """Across two source sentences, the clause's numbers and dates are said of
    its subject (its first name) in the sentence naming it: "Zacchiroli led
    Debian from April 2008" is not backed by one leader's dates beside the
    next leader's name."""
    names = [k for k in clause.specifics if k[0] in "@=" and k not in topic]
    values = [k for k in clause.specifics if k[0] == "#"]
    if not names or not values:
        return True
    statements = [s for s in passage.statements if _in(names[0], s)]
    return any(all(_in(v, s) for v in values) for s in statements)


def _exchanged(
    mine: tuple[tuple[str, frozenset[str]], ...], theirs: tuple[tuple[str, frozenset[str]], ...]
) -> bool:
    """Two numbers of the same thing in the other order ("250 packages from
    200 available packages" where the source uploaded 200 of 250): two values
    of the source exchanged."""
    where = {key: i for i, (key, _) in reversed(list(enumerate(theirs)))}
    units = dict(theirs)
    for (a, a_units), (b, b_units) in itertools.combinations(mine, 2):
        if a == b or a not in where or b not in where:
            continue
        shared = a_units & b_units & units[a] & units[b]
        if shared and where[a] > where[b]:
            return True
    return False


def _in(key: str, statement: tuple[frozenset[str], str]) -> bool:
    """``_has`` for one statement of the passage."""
    keys, squashed = statement
    if key in keys:
        return True
    if key[0] == "~":
        return key[1:].replace(" ", "") in squashed.replace("-", "")
    if key[0] == "-":
        return key[1:] in squashed
    if key[0] == "@":
        return key[1:] in squashed and any(s.startswith("@") and key[1:] in s for s in keys)
    return False


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
    # What the passage says only one way: a word it negates and also affirms
    # ("an alias for the ROWID (except in WITHOUT ROWID tables)") is neither,
    # and "unreachable" says "not reached" too.
    said = theirs.affirmed - theirs.negated - _prefixed_bases(theirs.stems)
    denied = theirs.negated - theirs.affirmed
    if clause.negated & said:
        return False
    if denied & (clause.affirmed - clause.negated):
        return False
    if _opposed(clause.poles, theirs.poles):
        return False
    # A sentence saying both ("enabled by default but can be disabled"): the
    # parts of it sharing the most of the clause's words (half or more) decide.
    stems = set(clause.stems)
    shared = [len(stems & part_stems) for part_stems, _ in passage.clauses]
    for count, (_, part_poles) in zip(shared, passage.clauses, strict=True):
        if count == max(shared) and 2 * count >= len(stems) and _opposed(clause.poles, part_poles):
            return False
    # "from testing into unstable" where the passage moves them from unstable to testing
    # (a word at both ends, "from November 1994 until November 1995", decides nothing)
    for key, way in clause.directions if _spans(clause) and _spans(theirs) else ():
        back = "to" if way == "from" else "from"
        if (key, back) in clause.directions:
            continue
        if (key, back) in theirs.directions and (key, way) not in theirs.directions:
            return False
    # A clause saying both ("added powerpc while mips64el was dropped"): each
    # part of it against the part of the passage sharing the most of its words.
    theirs_parts = passage.clauses or ((frozenset(theirs.stems), theirs.poles),)
    for part_stems, part_poles in clause.parts:
        if not part_poles:
            continue
        shared = [len(part_stems & stems) for stems, _ in theirs_parts]
        best = max(range(len(shared)), key=shared.__getitem__)
        if 2 * shared[best] >= len(part_stems) and _opposed(part_poles, theirs_parts[best][1]):
            return False
    # "several writers" where the passage counts "only one writer" (a count
    # in digits is the clause's specific, checked before).
    for low, high, noun, digits in clause.quantities:
        if digits:
            continue
        counts = [(lo, hi) for lo, hi, n, _ in theirs.quantities if n == noun]
        if counts and not any(lo <= high and low <= hi for lo, hi in counts):
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


_TIME_UNITS = frozenset(stem(w) for w in _TIME_UNIT_TEXT.split())
_SAME_STEM.update(
    (stem(word), stem(group.split()[0]))
    for group in _SYNONYM_TEXT.strip().splitlines()
    for word in group.split()
)


# A passage saying one of these says the other too ("raise or lower" changes it).
_IMPLIES = {"increas": "chang", "decreas": "chang"}
_VERSION = "version"


def canonical(stemmed: str) -> str:
    """A stem read as its synonym group's first word (``rais`` -> ``increas``)."""
    return _SAME_STEM.get(stemmed, stemmed)


_LIGHT = frozenset(canonical(stem(w)) for w in _LIGHT_TEXT.split())
_OPPOSITE_STEMS[:] = sorted({(canonical(stem(a)), canonical(stem(b))) for a, b in _OPPOSITES})
_POLES: dict[str, list[tuple[int, int]]] = {}  # a side's stem -> (pair, side)
for _pair, _sides in enumerate(_OPPOSITE_STEMS):
    for _side, _stem in enumerate(_sides):
        _POLES.setdefault(_stem, []).append((_pair, _side))


def _opposed(mine: frozenset[tuple[int, int]], other: frozenset[tuple[int, int]]) -> bool:
    """The clause says one word of a pair where the passage says the other
    (and neither says both)."""
    for pair, side in mine:
        if (pair, 1 - side) in other and (pair, side) not in other and (pair, 1 - side) not in mine:
            return True
    return False


def _prefixed_bases(stems: Iterable[str]) -> set[str]:
    """unreach -> reach, invalid -> valid: the words a negative prefix denies."""
    return {
        w[len(p) :]
        for w in stems
        for p in _NEGATIVE_PREFIXES
        if w.startswith(p) and len(w) - len(p) >= 4
    }


def poles_of(words: frozenset[str]) -> frozenset[tuple[int, int]]:
    """Which side of which pair of opposites the words say: a word says a side
    when it starts with that side's stem (``disabl`` says "disabled")."""
    return frozenset(
        pole for w in words for k in range(1, len(w) + 1) for pole in _POLES.get(w[:k], ())
    )


def coverage(clause: Reading, passage: Passage) -> float:
    """Share of the clause's words in the passage; specifics count double; a
    manner word or a light verb the passage does not say is not counted."""
    stems = {s for s in clause.stems if s in passage.stems or s not in clause.soft}
    specifics = set(clause.specifics)
    total = 2 * len(specifics) + len(stems)
    if total == 0:
        return 0.0
    found = 2 * len(specifics)  # checked by specifics_hold
    found += sum(1 for s in stems if s in passage.stems)
    return found / total
