"""``rag ingest`` a user can trust: ids never collide silently, failed files
aren't re-sent forever, ``--sync`` removes what was deleted from a folder."""

from __future__ import annotations

from pathlib import Path

import pytest

from cli.documents import ingest as ingesting
from cli.files import discover
from cli.local_parts import LocalParts
from shared.documents import DocState
from shared.errors import ConfigurationError
from shared.settings import Settings


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path / "data")


def readme(folder: Path, text: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "README.md"
    path.write_text(text)
    return path


async def states(settings: Settings) -> dict[str, str]:
    parts = LocalParts(settings)
    try:
        return {s.doc_id: s.state.value for s in await parts.status.list()}
    finally:
        await parts.close()


async def ingest(settings: Settings, *targets: Path, **options: object) -> int:
    defaults: dict[str, object] = {"force": False, "meta": [], "wait": True}
    return await ingesting.ingest(settings, list(targets), **{**defaults, **options})  # type: ignore[arg-type]


async def test_same_file_name_from_another_folder_is_refused_naming_both(
    tmp_path: Path, settings: Settings
) -> None:
    # GIVEN a/README.md ingested as "README.md"
    first = readme(tmp_path / "a", "# A\n\nalpha")
    second = readme(tmp_path / "b", "# B\n\nbeta")
    await ingest(settings, first, wait=False)
    # WHEN b/README.md is ingested on its own
    with pytest.raises(ConfigurationError) as refused:
        await ingest(settings, second, wait=False)
    # THEN it is refused, naming both files and the option that keeps both
    message = str(refused.value)
    assert str(first.resolve()) in message and str(second) in message
    assert "--id-prefix b/" in message
    assert await states(settings) == {"README.md": "queued"}
    # AND with the prefix both documents exist
    await ingest(settings, second, wait=False, id_prefix="b/")
    assert await states(settings) == {"README.md": "queued", "b/README.md": "queued"}


async def test_a_moved_file_keeps_its_id(tmp_path: Path, settings: Settings) -> None:
    first = readme(tmp_path / "a", "# A\n\nalpha")
    await ingest(settings, first, wait=False)
    moved = readme(tmp_path / "b", "# A\n\nalpha, moved")
    first.unlink()
    await ingest(settings, moved, wait=False)
    assert await states(settings) == {"README.md": "queued"}


def test_one_run_with_two_files_of_one_id_is_refused(tmp_path: Path) -> None:
    readme(tmp_path / "a", "a")
    readme(tmp_path / "b", "b")
    with pytest.raises(ConfigurationError, match="two files would both be document"):
        discover([tmp_path / "a", tmp_path / "b"])
    assert [f.doc_id for f in discover([tmp_path / "b"], "b/")[0]] == ["b/README.md"]


async def test_unchanged_failed_files_are_skipped_until_changed_or_forced(
    tmp_path: Path, settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "empty.txt").write_text("   \n")
    (folder / "ok.md").write_text("# Fine\n\nSome text about llamas.")
    # GIVEN a run where one document failed
    assert await ingest(settings, folder) == 1
    capsys.readouterr()
    # WHEN the same unchanged folder is ingested again
    # THEN nothing is re-sent, one summary line says why, and the run succeeds
    assert await ingest(settings, folder) == 0
    out = capsys.readouterr().out
    assert "1 unchanged file(s) that failed before skipped" in out
    assert "--force re-sends" in out
    # AND --force re-sends it (and it fails again, with its reason)
    assert await ingest(settings, folder, force=True) == 1
    assert "empty.txt: failed" in capsys.readouterr().err
    # AND a changed file is sent again
    (folder / "empty.txt").write_text("now there is text about alpacas")
    assert await ingest(settings, folder) == 0
    assert (await states(settings))["empty.txt"] == DocState.INDEXED


async def test_sync_deletes_documents_whose_files_are_gone(
    tmp_path: Path, settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "docs"
    (folder / "sub").mkdir(parents=True)
    (folder / "keep.md").write_text("# Keep\n\nllamas eat grass")
    (folder / "sub" / "gone.md").write_text("# Gone\n\nalpacas hum")
    assert await ingest(settings, folder) == 0
    (folder / "sub" / "gone.md").unlink()
    # WHEN ingesting without --sync THEN the vanished file's document stays
    assert await ingest(settings, folder) == 0
    assert (await states(settings))["sub/gone.md"] == "indexed"
    capsys.readouterr()
    # WHEN ingesting with --sync THEN it is deleted, and only it
    assert await ingest(settings, folder, sync=True) == 0
    assert "1 deleted" in capsys.readouterr().out
    assert await states(settings) == {"keep.md": "indexed", "sub/gone.md": "deleted"}
    parts = LocalParts(settings)
    try:
        assert await parts.index.generations("sub/gone.md") == {}
    finally:
        await parts.close()
