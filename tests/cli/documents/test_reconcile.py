"""``rag reconcile`` on a local data folder: drift made by hand, found, repaired."""

from __future__ import annotations

import asyncio
from pathlib import Path

from typer.testing import CliRunner

from cli.local_parts import LocalParts
from cli.main import app
from shared.settings import Settings


def chunk_counts(data: Path, doc_id: str) -> dict[str, int]:
    async def read() -> dict[str, int]:
        parts = LocalParts(Settings(_env_file=None, data_dir=data))
        try:
            return await parts.index.generations(doc_id)
        finally:
            await parts.close()

    return asyncio.run(read())


def drop_chunks(data: Path, doc_id: str) -> None:
    async def drop() -> None:
        parts = LocalParts(Settings(_env_file=None, data_dir=data))
        try:
            await parts.index.delete_chunks(await parts.index.chunk_ids(doc_id))
        finally:
            await parts.close()

    asyncio.run(drop())


def test_reconcile_finds_missing_chunks_and_reindexes_them(tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "a.md").write_text("# Alpha\n\nThe first document.")
    (docs / "b.md").write_text("# Beta\n\nThe second document.")
    data = tmp_path / "data"
    runner = CliRunner()
    args = ["--data-dir", str(data)]
    assert runner.invoke(app, ["ingest", str(docs), *args]).exit_code == 0
    indexed = chunk_counts(data, "a.md")
    assert sum(indexed.values()) > 0

    # GIVEN a.md's chunks lost behind the status record's back
    drop_chunks(data, "a.md")
    # WHEN checked: reported, exit 1, nothing changed
    check = runner.invoke(app, ["reconcile", "--dry-run", *args], terminal_width=200)
    assert check.exit_code == 1, check.output
    assert "missing_chunks" in check.output and "a.md" in check.output
    assert chunk_counts(data, "a.md") == {}
    # WHEN repaired: re-queued and indexed again, exactly as before
    fix = runner.invoke(app, ["reconcile", *args], terminal_width=200)
    assert fix.exit_code == 0, fix.output
    assert "re-queued 1" in fix.output
    assert chunk_counts(data, "a.md") == indexed
    # THEN a second check finds nothing
    again = runner.invoke(app, ["reconcile", "--dry-run", *args], terminal_width=200)
    assert again.exit_code == 0 and "drift in 0" in again.output
