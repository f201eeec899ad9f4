"""No quiet waits (issue #24, item 11).

GIVEN the waits a new user sits through (the first `scripts/run` installing
for minutes; `rag ingest` piped into a file), THEN each says what it is doing:
the bootstrap names each slow step before it starts, and the piped progress
ends with the real count, not `0/3 documents`.
"""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
from pathlib import Path

from tests.local.conftest import REPO, rag

STUB = "#!/usr/bin/env bash\nexit 0\n"


def stub_checkout(root: Path) -> Path:
    """A checkout whose .venv tools do nothing (a test double: the real
    install takes minutes), so only the bootstrap's own words are seen."""
    (root / "scripts").mkdir(parents=True)
    shutil.copy(REPO / "scripts" / "bootstrap", root / "scripts" / "bootstrap")
    for name in ("pyproject.toml", "uv.lock", "requirements-models.txt"):
        shutil.copy(REPO / name, root / name)
    bin_dir = root / ".venv" / "bin"
    bin_dir.mkdir(parents=True)
    for tool in ("python", "uv", "pip"):
        path = bin_dir / tool
        path.write_text(STUB)
        path.chmod(path.stat().st_mode | stat.S_IEXEC)
    return root


def test_a_first_bootstrap_says_each_slow_step_before_it(tmp_path: Path) -> None:
    root = stub_checkout(tmp_path / "checkout")
    result = subprocess.run(
        ["bash", "scripts/bootstrap"],
        cwd=root,
        env={**os.environ, "RAG_PYTHON": "python3"},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    said = result.stderr
    assert "installing the locked packages" in said and "a few minutes" in said
    assert "model weights" in said
    assert said.index("installing the locked packages") < said.index("model weights")
    assert "ready in" in said
    # a second run with nothing changed stays silent (a stamp check)
    again = subprocess.run(
        ["bash", "scripts/bootstrap"], cwd=root, capture_output=True, text=True, check=False
    )
    assert again.returncode == 0 and again.stderr == ""


async def test_the_indexing_line_counts_documents_as_they_finish() -> None:
    """The count moved only on a 1 s tick, so the last line drawn (piped: the
    only one) could still say 0/3 after all three were done."""
    import io

    from rich.console import Console
    from rich.progress import Progress, TextColumn

    from cli.destination import Sent
    from cli.destination.embedded import IndexingProgress

    class NoChunks:  # the index as the watcher reads it (a test double)
        async def generations(self, doc_id: str) -> dict[str, int]:
            return {}

    class Parts:
        index = NoChunks()

    sent = [Sent(f"{n}.txt", f"m-{n}", 10) for n in "abc"]
    progress = Progress(TextColumn("{task.fields[detail]}"), console=Console(file=io.StringIO()))
    watcher = IndexingProgress(Parts(), sent, progress)  # type: ignore[arg-type]
    await watcher.start()
    watcher.finished(sent[:1])
    assert progress.tasks[0].fields["detail"] == "1/3 documents"
    watcher.finished(sent[1:])
    assert progress.tasks[0].fields["detail"] == "3/3 documents"


def test_piped_ingest_progress_ends_at_the_real_count(tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    for name in ("a", "b", "c"):
        (docs / f"{name}.txt").write_text(f"Document {name} is about llamas and their barns.\n")
    result = rag("ingest", "--data-dir", str(tmp_path / "data"), str(docs), timeout=300)
    assert result.returncode == 0, result.stderr
    assert "3 document(s) indexed" in result.stdout
    assert "3/3 documents" in result.stderr
    assert "0/3 documents" not in result.stderr
