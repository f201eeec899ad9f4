"""Sending files to a :class:`~cli.destination.Destination`: what changed since
the last send (the manifest), ids that would collide, deletes of files gone.
What becomes of them is the destination's business (``Destination.wait``)."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from pathlib import Path

from cli.destination import Destination, Sent, Tick
from cli.files import SourceFile, build_index_message, manifest_digest
from cli.manifest import Manifest
from shared.errors import ConfigurationError
from shared.ingest import MetadataValue


async def is_unchanged(
    destination: Destination, manifest: Manifest, doc_id: str, digest: str
) -> bool:
    if manifest.digest(doc_id) != digest:
        return False
    return await destination.settled(doc_id)


def check_sources(manifest: Manifest, files: Sequence[SourceFile]) -> None:
    """Refuse (before sending anything) a file whose id already belongs to
    another file that still exists: it would silently replace that document."""
    for source in files:
        previous = manifest.source(source.doc_id)
        here = source.path.resolve()
        if previous is None or Path(previous) == here or not Path(previous).exists():
            continue
        folder = here.parent.name or "b"
        raise ConfigurationError(
            f"document id {source.doc_id!r} already belongs to {previous}; "
            f"{source.path} would silently replace it. To keep both, give this run "
            f"an id prefix: --id-prefix {folder}/ (id {folder}/{source.doc_id}); "
            f"to replace it, `rag delete {source.doc_id}` first"
        )


async def send_files(
    destination: Destination,
    files: Sequence[SourceFile],
    *,
    force: bool = False,
    metadata: dict[str, MetadataValue] | None = None,
    groups: list[str] | None = None,
    tick: Tick = lambda _: None,
) -> tuple[list[Sent], list[str]]:
    """Send every changed file; returns (sent, unchanged doc ids). Unchanged
    means the same bytes as last sent and (locally) indexed or failed; ``tick``
    gets each file's size in bytes."""
    manifest = Manifest.load(destination.parts.settings.data_dir)
    check_sources(manifest, files)
    sent: list[Sent] = []
    unchanged: list[str] = []
    for source in files:
        data = await asyncio.to_thread(source.path.read_bytes)
        digest = manifest_digest(data, groups)
        if not force and await is_unchanged(destination, manifest, source.doc_id, digest):
            unchanged.append(source.doc_id)
        else:
            message = build_index_message(
                source.doc_id, data, source.content_type, metadata=metadata, groups=groups
            )
            sent.append(Sent(source.doc_id, await destination.send(message), len(data)))
            manifest.record(source.doc_id, digest, source.path)
            manifest.save()
        tick(len(data))
    return sent, unchanged


def vanished(manifest: Manifest, folders: Sequence[Path]) -> list[str]:
    """Ids of documents ingested from under ``folders`` whose files are gone
    (``rag ingest --sync``)."""
    gone: list[str] = []
    for folder in folders:
        gone.extend(
            doc_id
            for doc_id, source in sorted(manifest.under(folder).items())
            if not source.exists()
        )
    return gone
