"""Split a long PDF manual into one PDF per outline entry (chapter), for an
evaluation set whose source is one big PDF that ships unmodified in the repo.

The parts are built at run time into a cache folder, never committed: the
repo carries the package's file as it was published. Every page goes to
exactly one part (see ``outline_parts``), and a part's ``/Title`` is its
chapters' titles, as a manual split by chapters would be titled.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pypdf import PdfReader, PdfWriter


@dataclass(frozen=True)
class Part:
    name: str
    title: str
    first_page: int  # 0-based, inclusive
    last_page: int  # 0-based, inclusive


def _slug(title: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-") or "part"


def outline_parts(reader: PdfReader, depth: int, skip: frozenset[str]) -> list[Part]:
    """Parts from the outline entries at ``depth`` (0 = top level).

    PDF pages cannot be cut, so chapters that start on the same page form one
    part (titled with all their titles), and a part runs to the page before
    the next chapter's first page: every page belongs to one part only, and
    a chapter's tail on the next part's first page is read with that part.
    """
    starts: list[int] = []  # first pages of every entry down to ``depth``
    kept: list[tuple[str, int]] = []

    def walk(items: list[Any], level: int) -> None:
        for item in items:
            if isinstance(item, list):
                walk(item, level + 1)
            elif level <= depth:
                page = reader.get_destination_page_number(item)
                if page is None:  # an entry pointing nowhere bounds nothing
                    continue
                starts.append(page)
                title = str(item.title).strip()
                if level == depth and title not in skip:
                    kept.append((title, page))

    walk(reader.outline, 0)
    groups: list[tuple[list[str], int]] = []
    for title, page in kept:
        if groups and groups[-1][1] == page:
            groups[-1][0].append(title)
        else:
            groups.append(([title], page))
    parts: list[Part] = []
    for titles, page in groups:
        later = [p for p in starts if p > page]
        last = min(later) - 1 if later else len(reader.pages) - 1
        name = f"{len(parts) + 1:03d}-{_slug(titles[0])}.pdf"
        parts.append(Part(name, ", ".join(titles), page, last))
    return parts


def split_pdf(source: Path, out_dir: Path, depth: int, skip: frozenset[str]) -> list[Path]:
    """Write the parts into ``out_dir`` (kept when already complete)."""
    reader = PdfReader(source)
    parts = outline_parts(reader, depth, skip)
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for part in parts:
        target = out_dir / part.name
        if not target.exists():
            writer = PdfWriter()
            for number in range(part.first_page, part.last_page + 1):
                writer.add_page(reader.pages[number])
            writer.add_metadata({"/Title": part.title})
            tmp = target.with_suffix(".tmp")
            with tmp.open("wb") as handle:
                writer.write(handle)
            tmp.replace(target)
        written.append(target)
    return written


# Bump when the way parts are cut changes: the cache folder is keyed by it.
SPLIT_VERSION = "2"


def split_digest(source: Path, spec: dict[str, Any]) -> str:
    """Names the folder of parts: the source's bytes, the spec, the cutting rules."""
    described = json.dumps(spec, sort_keys=True) + SPLIT_VERSION
    return hashlib.sha256(source.read_bytes() + described.encode()).hexdigest()[:16]
