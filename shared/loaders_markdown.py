"""Markdown: the text is kept as written; headings become sections and breaks.

Recognises ATX headings (``## Install``) and setext headings (a line
underlined with ``===`` or ``---``), but not inside fenced code blocks or a
leading YAML front matter block (which is dropped from the text). A
heading's section is its path, e.g. ``"Install > Linux"``; the title is the
first level-1 heading (or the front matter's ``title:``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from shared.documents import LoadedDocument

_ATX = re.compile(r"^ {0,3}(#{1,6})(?:[ \t]+(.*?))?(?:[ \t]+#+)?[ \t]*$")
_SETEXT = re.compile(r"^ {0,3}(=+|-+)[ \t]*$")
_FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})")
_FENCE_CLOSE = re.compile(r"^ {0,3}(`{3,}|~{3,})[ \t]*$")
_FRONT_MATTER_FIELD = re.compile(r"""^(title|description):\s*["']?(.*?)["']?\s*$""")
_LINK = re.compile(r"!?\[([^\]]*)\]\([^)]*\)")
_INLINE_MARKS = re.compile(r"[*_`]+")


@dataclass(frozen=True)
class _Heading:
    offset: int
    level: int
    text: str


def load_markdown(text: str) -> LoadedDocument:
    lines = text.splitlines(keepends=True)
    offsets = _line_offsets(lines)
    body_from, front = _front_matter(lines)
    # Front matter is metadata, not prose: it is left out of the indexed text,
    # except a description, the page's own one-line summary (npm's "Set access
    # level on published packages"), which leads the text as its first line.
    base = offsets[body_from] if body_from < len(offsets) else len(text)
    lead = f"{front['description']}\n\n" if front.get("description") else ""
    shift = len(lead) - base
    headings = [
        _Heading(h.offset + shift, h.level, h.text) for h in _headings(lines, offsets, body_from)
    ]
    sections = _section_paths(headings)
    title = front.get("title") or next((h.text for h in headings if h.level == 1), None)
    return LoadedDocument(
        text=lead + text[base:],
        title=title,
        sections=sections,
        breaks=[h.offset for h in headings if h.offset > 0],
    )


def heading_text(raw: str) -> str:
    """``**Install** on [Linux](x)`` -> ``Install on Linux``."""
    return " ".join(_INLINE_MARKS.sub("", _LINK.sub(r"\1", raw)).split())


def _line_offsets(lines: list[str]) -> list[int]:
    offsets, position = [], 0
    for line in lines:
        offsets.append(position)
        position += len(line)
    return offsets


def _front_matter(lines: list[str]) -> tuple[int, dict[str, str]]:
    """Index of the first body line, and the front matter's title and description."""
    if not lines or lines[0].rstrip() != "---":
        return 0, {}
    found: dict[str, str] = {}
    for i, line in enumerate(lines[1:], start=1):
        if line.rstrip() in ("---", "..."):
            return i + 1, found
        match = _FRONT_MATTER_FIELD.match(line.rstrip("\n"))
        if match and match.group(2) and match.group(1) not in found:
            found[match.group(1)] = match.group(2)
    return 0, {}  # no closing line: not front matter


def _headings(lines: list[str], offsets: list[int], body_from: int) -> list[_Heading]:
    headings: list[_Heading] = []
    fence: str | None = None
    previous_is_paragraph = False
    for i in range(body_from, len(lines)):
        line = lines[i].rstrip("\n")
        if fence is not None:
            if _closes(line, fence):
                fence = None
            continue
        fence_match = _FENCE.match(line)
        if fence_match:
            fence, previous_is_paragraph = fence_match.group(1), False
            continue
        heading = _heading_at(lines, offsets, i, previous_is_paragraph)
        if heading is not None and heading.text:
            headings.append(heading)
        previous_is_paragraph = heading is None and bool(line.strip())
    return headings


def _closes(line: str, fence: str) -> bool:
    closing = _FENCE_CLOSE.match(line)
    if closing is None:
        return False
    marker = closing.group(1)
    return marker[0] == fence[0] and len(marker) >= len(fence)


def _heading_at(
    lines: list[str], offsets: list[int], i: int, previous_is_paragraph: bool
) -> _Heading | None:
    line = lines[i].rstrip("\n")
    atx = _ATX.match(line)
    if atx:
        return _Heading(offsets[i], len(atx.group(1)), heading_text(atx.group(2) or ""))
    setext = _SETEXT.match(line)
    # A single line above only: a multi-line paragraph's setext heading is rare,
    # and "---" after one is far more often a thematic break.
    if setext and previous_is_paragraph and (i < 2 or not lines[i - 2].strip()):
        level = 1 if setext.group(1)[0] == "=" else 2
        return _Heading(offsets[i - 1], level, heading_text(lines[i - 1]))
    return None


def _section_paths(headings: list[_Heading]) -> list[tuple[int, str]]:
    stack: list[_Heading] = []
    sections = []
    for heading in headings:
        while stack and stack[-1].level >= heading.level:
            stack.pop()
        stack.append(heading)
        path = " > ".join(h.text for h in stack if h.text)
        sections.append((heading.offset, path))
    return sections
