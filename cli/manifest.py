"""What ``rag ingest`` last sent per document id, so unchanged files are skipped."""

from __future__ import annotations

import json
import os
from pathlib import Path

MANIFEST_FILE = "ingested.json"


class Manifest:
    def __init__(self, path: Path, digests: dict[str, str]) -> None:
        self.path = path
        self._digests = digests

    @classmethod
    def load(cls, data_dir: Path) -> Manifest:
        path = data_dir / MANIFEST_FILE
        try:
            raw = json.loads(path.read_text())
        except (FileNotFoundError, json.JSONDecodeError):
            raw = {}
        return cls(path, {str(k): str(v) for k, v in raw.items()} if isinstance(raw, dict) else {})

    def digest(self, doc_id: str) -> str | None:
        return self._digests.get(doc_id)

    def record(self, doc_id: str, digest: str) -> None:
        self._digests[doc_id] = digest

    def forget(self, doc_id: str) -> None:
        self._digests.pop(doc_id, None)

    def save(self) -> None:
        # Write-then-rename: a crash never leaves half a manifest behind.
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps(self._digests, indent=1, sort_keys=True))
        tmp.replace(self.path)
