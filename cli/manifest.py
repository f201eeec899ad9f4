"""What ``rag ingest`` last sent per document id: the file's digest (so unchanged
files are skipped) and where it came from (so an id can't silently change
files, and ``--sync`` knows which documents a folder's vanished files were)."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

MANIFEST_FILE = "ingested.json"


@dataclass(frozen=True)
class Entry:
    digest: str
    source: str | None = None  # absolute path of the file, when known


def _entry(raw: Any) -> Entry | None:
    if isinstance(raw, str):  # manifests written before sources were kept
        return Entry(raw)
    if isinstance(raw, dict) and isinstance(raw.get("digest"), str):
        source = raw.get("source")
        return Entry(raw["digest"], source if isinstance(source, str) else None)
    return None


class Manifest:
    def __init__(self, path: Path, entries: dict[str, Entry]) -> None:
        self.path = path
        self._entries = entries

    @classmethod
    def load(cls, data_dir: Path) -> Manifest:
        path = data_dir / MANIFEST_FILE
        try:
            raw = json.loads(path.read_text())
        except (FileNotFoundError, json.JSONDecodeError):
            raw = {}
        entries: dict[str, Entry] = {}
        for doc_id, value in raw.items() if isinstance(raw, dict) else []:
            entry = _entry(value)
            if entry is not None:
                entries[str(doc_id)] = entry
        return cls(path, entries)

    def digest(self, doc_id: str) -> str | None:
        entry = self._entries.get(doc_id)
        return entry.digest if entry else None

    def source(self, doc_id: str) -> str | None:
        entry = self._entries.get(doc_id)
        return entry.source if entry else None

    def record(self, doc_id: str, digest: str, source: Path | None = None) -> None:
        where = str(source.resolve()) if source is not None else self.source(doc_id)
        self._entries[doc_id] = Entry(digest, where)

    def forget(self, doc_id: str) -> None:
        self._entries.pop(doc_id, None)

    def under(self, folder: Path) -> dict[str, Path]:
        """Document ids whose recorded source file is inside ``folder``."""
        root = folder.resolve()
        found: dict[str, Path] = {}
        for doc_id, entry in self._entries.items():
            if entry.source is not None and Path(entry.source).is_relative_to(root):
                found[doc_id] = Path(entry.source)
        return found

    def save(self) -> None:
        # Write-then-rename: a crash never leaves half a manifest behind.
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(f".{os.getpid()}.tmp")
        body = {
            doc_id: {"digest": e.digest, "source": e.source} if e.source else e.digest
            for doc_id, e in self._entries.items()
        }
        tmp.write_text(json.dumps(body, indent=1, sort_keys=True))
        tmp.replace(self.path)
