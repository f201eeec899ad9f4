"""Split a loaded document into chunks sized in the embedding model's tokens.

Rules, in order of strength:

- a chunk holds at most ``chunk_tokens`` tokens (never more than 254, the
  256-token window of all-MiniLM-L6-v2 minus [CLS] and [SEP], less the
  32 tokens kept for the context header when one is embedded);
- a chunk ends only between words: where whitespace separates two tokens, after
  a punctuation mark, or next to a CJK ideograph (each is a word for BERT), so
  a WordPiece ``##`` continuation never starts a chunk;
- within the second half of the window the strongest boundary wins, latest
  first: a heading (``LoadedDocument.breaks``) > blank line > sentence end >
  line break > other word boundary;
- consecutive chunks share up to ``overlap_tokens`` tokens, starting on a word
  boundary (a sentence or line start when one is near); there is no overlap
  across a heading.

With ``strategy="words"`` the rules above give way to windows of
``chunk_words`` whitespace-separated words overlapping by ``overlap_words``,
blind to headings (the naive yardstick's unit, cli/eval/naive.py); the
embedder reads what fits its window and truncates the rest.

Two escape hatches keep every input chunkable. A "word" that WordPiece reads as
one ``[UNK]`` because it is longer than 100 characters (say a hex dump, or a
stretch of base64 without ``+`` or ``/``) is counted as one token per
character, an upper bound of what the embedder sees for any part of it, and
preferably cut every 100 characters. And if a window has no allowed boundary at
all (a word longer than the window), the chunk is cut at the token boundary
where the window ends, mid-word: the only mid-word cuts the chunker makes.

Small-to-big: with ``context_tokens`` > 0 a chunk's text runs on past its
embedded window by up to that many tokens (ending at the best boundary in the
second half of that span); ``chunk.embedded_end`` marks where the embedder
stops reading. The embedded windows are exactly those without context, so
only what the model and keyword search read changes.

Offsets: ``chunk.text == loaded.text[chunk.start:chunk.end]``; chunks carry no
leading or trailing whitespace, and together they cover every non-whitespace
character (text the tokenizer drops, such as control characters, stays inside
the chunk before it).
"""

from __future__ import annotations

import unicodedata
from bisect import bisect_right
from collections.abc import Mapping, Sequence
from enum import IntEnum
from itertools import chain
from typing import TypeVar

import numpy as np
from numpy.typing import NDArray

from shared.context_header import HEADER_TOKENS, HEADER_VERSION
from shared.documents import Chunk, LoadedDocument, chunk_id_for
from shared.errors import EmptyDocument
from shared.ingest import MetadataValue
from shared.ports import TokenCounter
from shared.settings import ChunkingSettings

# Bump when the algorithm changes so that documents are re-chunked on re-send.
CHUNKER_VERSION = "2"  # 2: context header; HTML definition terms break
TOKENIZER_ID = "all-MiniLM-L6-v2-wordpiece"
MAX_WINDOW_TOKENS = 254
# WordPiece reads a longer run of word characters as one [UNK].
MAX_TOKEN_CHARS = 100

IntArray = NDArray[np.int64]
T = TypeVar("T")

# Unicode White_Space as BERT splits on it (not str.isspace(), which also
# counts \x1c-\x1f: control characters that BERT deletes inside a word).
BERT_WHITESPACE = "".join(
    map(
        chr,
        [
            *(0x09, 0x0A, 0x0D, 0x20, 0xA0, 0x1680),
            *range(0x2000, 0x200B),
            *(0x2028, 0x2029, 0x202F, 0x205F, 0x3000),
        ],
    )
)
_WHITESPACE = np.array([ord(c) for c in BERT_WHITESPACE], dtype=np.uint32)
_NEWLINES = np.array([0x0A, 0x2028, 0x2029], dtype=np.uint32)
_SENTENCE_END = frozenset(".!?。！？…")
_ASCII_PUNCT = np.zeros(128, dtype=bool)
for _c in chain(range(33, 48), range(58, 65), range(91, 97), range(123, 127)):
    _ASCII_PUNCT[_c] = True
_CJK_RANGES = (
    (0x4E00, 0x9FFF),
    (0x3400, 0x4DBF),
    (0x20000, 0x2A6DF),
    (0x2A700, 0x2B73F),
    (0x2B740, 0x2B81F),
    (0x2B820, 0x2CEAF),
    (0xF900, 0xFAFF),
    (0x2F800, 0x2FA1F),
)


class Level(IntEnum):
    """How good a place between two tokens is for a chunk boundary."""

    FORCED = 0  # inside a word
    PIECE = 1  # between pieces of an over-long word
    GLUE = 2  # no whitespace, but after punctuation or beside a CJK ideograph
    WORD = 3
    LINE = 4
    SENTENCE = 5
    PARAGRAPH = 6
    HEADING = 7


def settings_fingerprint(chunking: ChunkingSettings, embedder_model_id: str) -> str:
    """Everything that shapes a document's chunks and vectors, for its generation."""
    # context_tokens only when set, so that documents indexed before it existed
    # keep their generation.
    context = f";context_tokens={chunking.context_tokens}" if chunking.context_tokens else ""
    if chunking.strategy == "words":
        unit = f"words={chunking.chunk_words};overlap_words={chunking.overlap_words}"
    else:
        unit = f"chunk_tokens={chunking.chunk_tokens};overlap_tokens={chunking.overlap_tokens}"
    return (
        f"chunker={CHUNKER_VERSION};tokenizer={TOKENIZER_ID};{unit};"
        f"embedder={embedder_model_id};"
        f"context_header={chunking.context_header}/{HEADER_VERSION}{context}"
    )


def window_tokens(chunking: ChunkingSettings) -> int:
    """Largest chunk: the configured size, within the window minus the header's room."""
    reserve = 0 if chunking.context_header == "none" else HEADER_TOKENS
    return min(chunking.chunk_tokens, MAX_WINDOW_TOKENS - reserve)


def chunk_document(
    doc_id: str,
    loaded: LoadedDocument,
    *,
    generation: str,
    settings: ChunkingSettings,
    counter: TokenCounter,
    title: str | None = None,
    source_uri: str | None = None,
    metadata: Mapping[str, MetadataValue] | None = None,
) -> list[Chunk]:
    """Chunks of ``loaded.text`` in order. Raises EmptyDocument if there is no text."""
    text = loaded.text
    if not text.strip():
        raise EmptyDocument("the document has no text")
    starts, ends, pieces = _tokenize(text, counter)
    if len(starts) == 0:
        raise EmptyDocument("the document has no indexable text")
    levels = _boundary_levels(text, starts, ends, pieces, loaded.breaks)
    if settings.strategy == "words":
        ranges = _word_ranges(text, starts, ends, settings.chunk_words, settings.overlap_words)
    else:
        ranges = _token_ranges(levels, window_tokens(settings), settings.overlap_tokens)
    doc_title = title if title is not None else loaded.title
    meta = dict(metadata or {})
    page_offsets = [offset for offset, _ in loaded.pages]
    section_offsets = [offset for offset, _ in loaded.sections]
    chunks = []
    previous_end = 0
    for ordinal, (first, stop) in enumerate(ranges):
        start = len(text) - len(text.lstrip()) if first == 0 else int(starts[first])
        embedded_end = _end_char(text, starts, ends, stop)
        extended = _extend(levels, stop, settings.context_tokens)
        end = _end_char(text, starts, ends, extended) if extended > stop else embedded_end
        # Page and section of the chunk's own text, not of its overlap.
        anchor = start if ordinal == 0 else int(starts[previous_end])
        chunks.append(
            Chunk(
                chunk_id=chunk_id_for(doc_id, generation, ordinal),
                doc_id=doc_id,
                generation=generation,
                ordinal=ordinal,
                text=text[start:end],
                start=start,
                end=end,
                embedded_end=embedded_end if end > embedded_end else None,
                page=_value_at(page_offsets, loaded.pages, anchor),
                section=_value_at(section_offsets, loaded.sections, anchor),
                title=doc_title,
                source_uri=source_uri,
                metadata=meta,
            )
        )
        previous_end = stop
    return chunks


# ---- tokens -----------------------------------------------------------------


def _tokenize(text: str, counter: TokenCounter) -> tuple[IntArray, IntArray, IntArray]:
    """Token starts and ends, plus the indexes of tokens that begin a piece of an
    over-long word (see the module docstring)."""
    starts, ends = _span_arrays(counter.token_spans(text))
    long_tokens = np.flatnonzero(ends - starts > MAX_TOKEN_CHARS)
    if len(long_tokens) == 0:
        return starts, ends, np.zeros(0, dtype=np.int64)
    return _split_long_tokens(starts, ends, long_tokens)


def _span_arrays(spans: Sequence[tuple[int, int]]) -> tuple[IntArray, IntArray]:
    flat = np.fromiter(chain.from_iterable(spans), dtype=np.int64, count=2 * len(spans))
    return flat[0::2].copy(), flat[1::2].copy()


def _split_long_tokens(
    starts: IntArray, ends: IntArray, long_tokens: IntArray
) -> tuple[IntArray, IntArray, IntArray]:
    """Count an over-long token as one token per character (WordPiece never makes
    more tokens than characters) and mark a piece start every MAX_TOKEN_CHARS.
    Re-tokenising instead would cost WordPiece's quadratic word matching."""
    chars = np.concatenate([np.arange(starts[i], ends[i], dtype=np.int64) for i in long_tokens])
    owner_starts = np.repeat(starts[long_tokens], ends[long_tokens] - starts[long_tokens])
    piece_first = (chars - owner_starts) % MAX_TOKEN_CHARS == 0

    keep = np.ones(len(starts), dtype=bool)
    keep[long_tokens] = False
    all_starts = np.concatenate([starts[keep], chars])
    all_ends = np.concatenate([ends[keep], chars + 1])
    flags = np.concatenate([np.zeros(int(keep.sum()), dtype=bool), piece_first])
    order = np.argsort(all_starts, kind="stable")
    return all_starts[order], all_ends[order], np.flatnonzero(flags[order])


# ---- boundary levels ----------------------------------------------------------


def _boundary_levels(
    text: str, starts: IntArray, ends: IntArray, pieces: IntArray, breaks: Sequence[int]
) -> NDArray[np.int8]:
    """``levels[i]`` rates the place before token ``i`` (``0 < i < n``)."""
    n = len(starts)
    codepoints = np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32)
    ws_before = _prefix_counts(np.isin(codepoints, _WHITESPACE))
    nl_before = _prefix_counts(np.isin(codepoints, _NEWLINES))
    gap_ws = ws_before[starts[1:]] - ws_before[ends[:-1]] > 0
    gap_nl = nl_before[starts[1:]] - nl_before[ends[:-1]]
    single = ends - starts == 1
    first = codepoints[starts]
    cjk = single & _is_cjk(first)
    punct = single & _is_punct(first)
    sentence_end = single & np.isin(first, [ord(c) for c in _SENTENCE_END])

    inner = np.zeros(n - 1, dtype=np.int8)
    inner[(punct | cjk)[:-1] | cjk[1:]] = Level.GLUE
    inner[gap_ws] = Level.WORD
    inner[gap_nl >= 1] = Level.LINE
    inner[sentence_end[:-1] & (gap_ws | cjk[1:] | cjk[:-1])] = Level.SENTENCE
    inner[gap_nl >= 2] = Level.PARAGRAPH
    levels = np.full(n + 1, Level.HEADING, dtype=np.int8)
    levels[1:n] = inner
    for piece in pieces:
        levels[piece] = max(levels[piece], Level.PIECE)
    for offset in breaks:
        i = int(np.searchsorted(starts, offset, side="left"))
        if 0 < i < n and ends[i - 1] <= offset:
            levels[i] = Level.HEADING
    return levels


def _prefix_counts(flags: NDArray[np.bool_]) -> IntArray:
    out = np.zeros(len(flags) + 1, dtype=np.int64)
    np.cumsum(flags, out=out[1:])
    return out


def _is_cjk(cps: NDArray[np.uint32]) -> NDArray[np.bool_]:
    out = np.zeros(len(cps), dtype=bool)
    for lo, hi in _CJK_RANGES:
        out |= (cps >= lo) & (cps <= hi)
    return out


def _is_punct(cps: NDArray[np.uint32]) -> NDArray[np.bool_]:
    """BERT's notion: ASCII symbols plus every Unicode punctuation category."""
    ascii_mask = cps < 128
    out = np.zeros(len(cps), dtype=bool)
    out[ascii_mask] = _ASCII_PUNCT[cps[ascii_mask]]
    others = np.flatnonzero(~ascii_mask)
    if len(others):
        unique = np.unique(cps[others])
        marks = [int(c) for c in unique if unicodedata.category(chr(int(c))).startswith("P")]
        out[others] = np.isin(cps[others], marks)
    return out


# ---- windows ------------------------------------------------------------------


def _token_ranges(levels: NDArray[np.int8], size: int, overlap: int) -> list[tuple[int, int]]:
    """``(first, stop)`` token index ranges of the chunks."""
    n = len(levels) - 1
    ranges = []
    first = 0
    while n - first > size:
        stop = _pick_stop(levels, first, first + size)
        ranges.append((first, stop))
        first = _next_first(levels, first, stop, overlap)
    ranges.append((first, n))
    return ranges


def word_windows(count: int, size: int, overlap: int) -> list[range]:
    """``[0, size)``, ``[size - overlap, ...)``, ... covering ``count`` words
    (the last window may be short; none lies wholly inside the one before)."""
    step = size - overlap
    starts = range(0, max(count - overlap, 1), step)
    return [range(s, min(s + size, count)) for s in starts if s < count]


def _word_ranges(
    text: str, starts: IntArray, ends: IntArray, size: int, overlap: int
) -> list[tuple[int, int]]:
    """Token ranges of windows of ``size`` whitespace-separated words, blind to
    headings and line breaks (strategy "words"). A word is a run of tokens with
    no whitespace between them, so a window never splits one."""
    codepoints = np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32)
    ws_before = _prefix_counts(np.isin(codepoints, _WHITESPACE))
    gap_ws = ws_before[starts[1:]] - ws_before[ends[:-1]] > 0
    word_first = np.concatenate([[0], np.flatnonzero(gap_ws) + 1]).astype(np.int64)
    count, n = len(word_first), len(starts)
    return [
        (int(word_first[w.start]), int(word_first[w.stop]) if w.stop < count else n)
        for w in word_windows(count, size, overlap)
    ]


def _pick_stop(levels: NDArray[np.int8], first: int, limit: int) -> int:
    """The best boundary in (first, limit], looking in the window's second half
    first, then anywhere; mid-word at ``limit`` only if nothing else exists."""
    for lo in (first + max(1, (limit - first) // 2), first + 1):
        window = levels[lo : limit + 1]
        best = int(window.max())
        if best > Level.FORCED:
            return lo + len(window) - 1 - int(np.argmax(window[::-1] == best))
    return limit


def _extend(levels: NDArray[np.int8], stop: int, extra: int) -> int:
    """Where a chunk's context ends: up to ``extra`` tokens past ``stop``, at the
    best boundary in the second half of that span (the document's end if near)."""
    n = len(levels) - 1
    if extra == 0 or stop >= n:
        return stop
    limit = stop + extra
    return n if limit >= n else _pick_stop(levels, stop, limit)


def _next_first(levels: NDArray[np.int8], first: int, stop: int, overlap: int) -> int:
    """Start of the next chunk, at most ``overlap`` tokens before ``stop``: a
    sentence or line start in the first half of that span if there is one (it
    reads better), else the earliest word boundary. No overlap across a heading."""
    if overlap == 0 or levels[stop] == Level.HEADING:
        return stop
    lo = max(first + 1, stop - overlap)
    window = levels[lo:stop]
    strong = np.flatnonzero(window[: (len(window) + 1) // 2] >= Level.LINE)
    if len(strong):
        return lo + int(strong[0])
    allowed = np.flatnonzero(window > Level.FORCED)
    return lo + int(allowed[0]) if len(allowed) else stop


# ---- characters -----------------------------------------------------------------


def _end_char(text: str, starts: IntArray, ends: IntArray, stop: int) -> int:
    """One past the chunk's last character, including any non-whitespace
    characters the tokenizer dropped between it and the next chunk."""
    if stop == len(starts):
        return len(text.rstrip())
    last_end = int(ends[stop - 1])
    gap = text[last_end : int(starts[stop])]
    return last_end + len(gap.rstrip())


def _value_at(offsets: list[int], pairs: Sequence[tuple[int, T]], offset: int) -> T | None:
    """The value in effect at ``offset`` (pairs sorted by offset)."""
    i = bisect_right(offsets, offset)
    return pairs[i - 1][1] if i else None
