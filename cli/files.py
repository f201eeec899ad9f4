"""Finding files to ingest and turning them into ingest messages (pure, plus reads)."""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from cli.paths import SAMPLES_DIR
from shared.access import GROUP_PATTERN
from shared.errors import ConfigurationError
from shared.ingest import MAX_INLINE_BYTES, IndexOperation, MetadataValue

CONTENT_TYPES = {
    ".txt": "text/plain",
    ".text": "text/plain",
    ".md": "text/markdown",
    ".markdown": "text/markdown",
    ".html": "text/html",
    ".htm": "text/html",
    ".pdf": "application/pdf",
}
SUPPORTED = ", ".join(sorted(CONTENT_TYPES))
__all__ = ["SAMPLES_DIR", "SourceFile", "discover"]


@dataclass(frozen=True)
class SourceFile:
    path: Path
    doc_id: str
    content_type: str


@dataclass(frozen=True)
class Skipped:
    path: Path
    reason: str


def content_type_for(name: str) -> str | None:
    return CONTENT_TYPES.get(Path(name).suffix.lower())


def _hidden(relative: Path) -> bool:
    return any(part.startswith(".") for part in relative.parts)


def _walk(folder: Path) -> Iterable[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file())


def id_collision(doc_id: str, first: Path, second: Path) -> ConfigurationError:
    return ConfigurationError(
        f"two files would both be document {doc_id!r}: {first} and {second}; "
        f"ingest them in separate runs with --id-prefix (e.g. --id-prefix "
        f"{second.parent.name or 'b'}/ gives {second.parent.name or 'b'}/{doc_id}), "
        "or ingest their common parent folder so the ids include the folder names"
    )


def discover(paths: Sequence[Path], id_prefix: str = "") -> tuple[list[SourceFile], list[Skipped]]:
    """Files under ``paths``; a file's doc id is ``id_prefix`` + its path relative
    to the folder given (``guide/intro.md``), or + its name when the file itself
    was given. Two files with one id raise ConfigurationError naming both."""
    found: dict[str, SourceFile] = {}
    skipped: list[Skipped] = []
    for given in paths:
        if given.is_dir():
            candidates = [
                (p, p.relative_to(given).as_posix())
                for p in _walk(given)
                if not _hidden(p.relative_to(given))
            ]
        elif given.is_file():
            candidates = [(given, given.name)]
        else:
            skipped.append(Skipped(given, "no such file or folder"))
            continue
        for path, doc_id in candidates:
            content_type = content_type_for(path.name)
            if content_type is None:
                skipped.append(Skipped(path, f"unsupported file type (supported: {SUPPORTED})"))
                continue
            doc_id = id_prefix + doc_id
            if doc_id in found and found[doc_id].path.resolve() != path.resolve():
                raise id_collision(doc_id, found[doc_id].path, path)
            found[doc_id] = SourceFile(path, doc_id, content_type)
    return list(found.values()), skipped


def file_digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def build_index_message(
    doc_id: str,
    data: bytes,
    content_type: str,
    title: str | None = None,
    metadata: dict[str, MetadataValue] | None = None,
    groups: list[str] | None = None,
) -> IndexOperation:
    """Inline text when it is UTF-8 and small enough, base64 bytes otherwise."""
    body: dict[str, str] = {}
    if content_type.startswith("text/") and len(data) <= MAX_INLINE_BYTES:
        try:
            body["text"] = data.decode("utf-8")
        except UnicodeDecodeError:
            body["data_base64"] = base64.b64encode(data).decode()
    else:
        body["data_base64"] = base64.b64encode(data).decode()
    return IndexOperation(
        doc_id=doc_id,
        title=title,
        content_type=content_type,
        metadata=metadata or {},
        groups=groups,
        **body,
    )


def parse_groups(text: str | None) -> list[str] | None:
    """``--groups hr,finance`` → ``["finance", "hr"]``; ``--groups ""`` → ``[]``
    (nobody but admins); no option → None (every authenticated user)."""
    if text is None:
        return None
    groups = sorted({g.strip() for g in text.split(",") if g.strip()})
    bad = [g for g in groups if not re.match(GROUP_PATTERN, g)]
    if bad:
        raise ValueError(
            f"--groups: {', '.join(map(repr, bad))} is not a group name (letters, digits "
            "and _.:@+/=-, starting with a letter or digit, at most 128 characters)"
        )
    return groups


def manifest_digest(data: bytes, groups: list[str] | None) -> str:
    """A file's digest for "unchanged?" checks: a new access list is a change too."""
    digest = file_digest(data)
    return digest if groups is None else f"{digest}:groups={','.join(groups)}"


def parse_metadata(pairs: Sequence[str]) -> dict[str, MetadataValue]:
    """``["team=hr", "year=2024"]`` → ``{"team": "hr", "year": 2024}``."""
    out: dict[str, MetadataValue] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise ValueError(f"metadata must look like key=value, got {pair!r}")
        out[key] = int(value) if value.isdigit() else value
    return out
