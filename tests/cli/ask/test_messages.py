"""Messages a new user reads whole (issue #24, item 12).

A command in a message is never wrapped mid-way when piped; a missing folder
is named as missing; the supported file types are every extension the loaders
take; the README says `rag` is `.venv/bin/rag` and that the follow-up commands
run in a second terminal while `scripts/run` serves.
"""

from __future__ import annotations

import io
from pathlib import Path

from rich.console import Console

from cli.ask.asking import TerminalSink
from shared.protocol import ErrorCode, ErrorEvent
from tests.local.conftest import REPO, rag

LONG = (
    "no documents indexed yet: ingest some first (`rag ingest PATH` or a message on the "
    "ingest queue), then ask again"
)


async def test_an_error_from_the_server_is_one_line_on_a_narrow_pipe() -> None:
    out = io.StringIO()
    sink = TerminalSink(Console(file=out, width=80, color_system=None, soft_wrap=True))
    await sink.send(ErrorEvent(request_id="r", code=ErrorCode.NO_DOCUMENTS, message=LONG))
    assert f"error (no_documents): {LONG}" in out.getvalue()


def test_the_default_answer_console_never_wraps() -> None:
    from cli.ask import asking

    assert asking.console.soft_wrap


def test_a_missing_folder_is_named_as_missing(tmp_path: Path) -> None:
    missing = tmp_path / "no-such-folder"
    result = rag("ingest", "--data-dir", str(tmp_path / "data"), str(missing), timeout=120)
    assert result.returncode == 1
    said = " ".join(result.stderr.split())
    assert f"no such file or folder: {missing}" in said
    assert "no supported files" not in said


def test_no_supported_files_lists_every_extension_the_loaders_take(tmp_path: Path) -> None:
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "notes.docx").write_bytes(b"PK\x03\x04")
    result = rag("ingest", "--data-dir", str(tmp_path / "data"), str(tmp_path / "docs"))
    said = " ".join(result.stderr.split())
    assert result.returncode == 1
    for extension in (".txt", ".text", ".md", ".markdown", ".html", ".htm", ".pdf"):
        assert extension in said.split("no supported files")[1]


def test_the_readme_says_where_rag_is_and_to_use_a_second_terminal() -> None:
    readme = " ".join((REPO / "README.md").read_text().split())
    assert "`rag` is `.venv/bin/rag`" in readme
    assert "second terminal" in readme
