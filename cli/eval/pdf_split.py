"""Split a long PDF manual into one PDF per outline entry (chapter), for an
evaluation set whose source is one big PDF that ships unmodified in the repo.

The parts are built at run time into a cache folder, never committed: the
repo carries the package's file as it was published. A part holds the pages
from its entry's first page to the page before the next entry's (entries
that start on the same page share it), and its ``/Title`` is the entry's
title, as a manual split by chapters would be titled.
"""

from __future__ import annotations

import hashlib
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
    """Parts from the outline entries at ``depth`` (0 = top level)."""
    entries: list[tuple[str, int, bool]] = []  # (title, page, is a part) in order

    def walk(items: list[Any], level: int) -> None:
        for item in items:
            if isinstance(item, list):
                walk(item, level + 1)
            elif level <= depth:
                page = reader.get_destination_page_number(item)
                entries.append((str(item.title).strip(), page, level == depth))

    walk(reader.outline, 0)
    parts: list[Part] = []
    for i, (title, page, is_part) in enumerate(entries):
        if not is_part or title in skip:
            continue
        following = [p for _, p, _ in entries[i + 1 :] if p >= page]
        last = max(page, following[0] - 1) if following else len(reader.pages) - 1
        parts.append(Part(f"{len(parts) + 1:03d}-{_slug(title)}.pdf", title, page, last))
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


def source_digest(source: Path) -> str:
    return hashlib.sha256(source.read_bytes()).hexdigest()[:16]
