"""The `rag` CLI as a new user meets it: quick to start (heavy modules load
only in the commands that need them), conventional flags, one-line errors,
a per-user data folder, a busy port named before anything loads."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from cli.announce import ANNOUNCE_FILE, announce, read_announcement, withdraw
from cli.options import settings_for
from tests.local.conftest import REPO, rag

# Nothing a bare `import cli.main` (hence `rag --help`) may load.
HEAVY = ["numpy", "aiohttp", "pydantic_settings", "shared.settings", "rich.console", "apsw"]
HEAVY_FOR_DOCS = [
    "numpy",
    "aiohttp",
    "rich",
    "services.query.answer.service",
    "xllamacpp",
    "tokenizers",
]


def loaded_after(code: str) -> list[str]:
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True
    )
    return list(json.loads(done.stdout.splitlines()[-1]))


def test_importing_the_cli_loads_no_heavy_module() -> None:
    code = (
        f"import json, sys, cli.main; print(json.dumps([m for m in {HEAVY!r} if m in sys.modules]))"
    )
    assert loaded_after(code) == []


def test_rag_docs_loads_neither_numpy_nor_the_query_service(tmp_path: Path) -> None:
    code = (
        "import json, sys\n"
        f"sys.argv = ['rag', 'docs', '--json', '--data-dir', {str(tmp_path)!r}]\n"
        "from cli.main import main\n"
        "main()\n"
        f"print(json.dumps([m for m in {HEAVY_FOR_DOCS!r} if m in sys.modules]))"
    )
    assert loaded_after(code) == []


def test_top_level_help_fits_80_columns_without_broken_lines() -> None:
    result = rag("--help", env={"COLUMNS": "80"})
    assert result.returncode == 0
    lines = result.stdout.splitlines()
    assert all(len(line) <= 80 for line in lines), lines
    for command in ("serve", "ingest", "ask", "chat", "docs", "delete", "eval"):
        assert any(line.split()[:1] == [command] for line in lines), command
    assert "--version" in result.stdout and "--debug" in result.stdout


def test_version() -> None:
    from importlib.metadata import version

    result = rag("--version")
    assert result.returncode == 0 and result.stdout.strip() == f"rag {version('serverless-rag')}"


def test_k_short_form_mode_choice_and_stack_help() -> None:
    help_text = " ".join(rag("ask", "--help").stdout.split())
    assert "-k, --k" in help_text and "<knn|hybrid>" in help_text
    assert "websocket_url output" in help_text and "RAG_TOKEN" in help_text
    bad_mode = rag("ask", "--mode", "bogus", "q")
    assert bad_mode.returncode == 2 and "knn" in bad_mode.stderr
    bad_k = rag("chat", "-k", "0")
    assert bad_k.returncode == 2 and "-k" in bad_k.stderr


def test_docs_json(tmp_path: Path) -> None:
    (tmp_path / "a.md").write_text("# A\n\nalpha")
    data = str(tmp_path / "data")
    empty = rag("docs", "--json", "--data-dir", data)
    assert json.loads(empty.stdout) == {"documents": [], "dead_letters": 0}
    assert rag("ingest", "--no-wait", "--data-dir", data, str(tmp_path / "a.md")).returncode == 0
    listed = json.loads(rag("docs", "--json", "--data-dir", data).stdout)
    assert [(d["doc_id"], d["state"]) for d in listed["documents"]] == [("a.md", "queued")]


def test_an_unexpected_error_is_one_line_with_a_hint_and_debug_shows_the_traceback(
    tmp_path: Path,
) -> None:
    not_a_folder = tmp_path / "file"
    not_a_folder.write_text("x")
    result = rag("docs", "--data-dir", str(not_a_folder))
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert result.stderr.startswith("rag: unexpected error: ")
    assert "--debug" in result.stderr and len(result.stderr.strip().splitlines()) == 1
    debug = rag("--debug", "docs", "--data-dir", str(not_a_folder))
    assert debug.returncode == 1 and "Traceback" in debug.stderr


def test_a_bad_setting_names_the_variable(tmp_path: Path) -> None:
    result = rag("docs", "--data-dir", str(tmp_path), env={"RAG_QUERY__DEFAULT_K": "many"})
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert "invalid setting: RAG_QUERY__DEFAULT_K" in result.stderr


def test_the_data_folder_is_per_user_unless_given(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    monkeypatch.delenv("RAG_DATA_DIR", raising=False)
    assert settings_for(None).data_dir == tmp_path / "xdg" / "rag"
    monkeypatch.setenv("RAG_DATA_DIR", str(tmp_path / "env"))
    assert settings_for(None).data_dir == tmp_path / "env"
    assert settings_for(tmp_path / "flag").data_dir == tmp_path / "flag"


def test_rag_run_elsewhere_leaves_no_data_folder_behind(tmp_path: Path) -> None:
    env = {**os.environ, "XDG_DATA_HOME": str(tmp_path / "xdg"), "COLUMNS": "200"}
    env.pop("RAG_DATA_DIR", None)
    (tmp_path / "cwd").mkdir()
    done = subprocess.run(
        [sys.executable, "-m", "cli.main", "docs"],
        cwd=tmp_path / "cwd",
        env={**env, "PYTHONPATH": str(REPO)},
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert list((tmp_path / "cwd").iterdir()) == []


def test_serve_on_a_busy_port_names_the_holder_before_loading_anything(tmp_path: Path) -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        result = rag("serve", "--port", str(port), "--data-dir", str(tmp_path / "data"))
    assert result.returncode == 1
    assert f"port {port} on 127.0.0.1 is already in use by pid {os.getpid()}" in result.stderr
    assert "--port" in result.stderr
    assert not (tmp_path / "data").exists()  # nothing was built, no model loaded


def test_the_announcement_is_found_and_a_dead_servers_is_ignored(tmp_path: Path) -> None:
    assert read_announcement(tmp_path) is None
    announce(tmp_path, "0.0.0.0", 8123)
    note = read_announcement(tmp_path)
    assert note is not None and note.ws_url == "ws://127.0.0.1:8123/ws"
    # a server killed -9 leaves its note; its process is gone, so it is ignored
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    raw = json.loads((tmp_path / ANNOUNCE_FILE).read_text())
    (tmp_path / ANNOUNCE_FILE).write_text(json.dumps({**raw, "pid": dead.pid}))
    assert read_announcement(tmp_path) is None
    withdraw(tmp_path)  # not ours any more: left alone
    assert (tmp_path / ANNOUNCE_FILE).exists()
    announce(tmp_path, "127.0.0.1", 8123)
    withdraw(tmp_path)
    assert not (tmp_path / ANNOUNCE_FILE).exists()


def test_docs_table_is_plain_aligned_text(tmp_path: Path) -> None:
    (tmp_path / "a.md").write_text("# A\n\nalpha")
    data = str(tmp_path / "data")
    rag("ingest", "--no-wait", "--data-dir", data, str(tmp_path / "a.md"))
    lines = rag("docs", "--data-dir", data).stdout.splitlines()
    header = ["document", "status", "chunks", "readable", "by", "updated", "reason"]
    assert lines[0].split() == header
    assert lines[1].split()[:4] == ["a.md", "queued", "0", "everyone"]
    assert "\x1b[" not in "".join(lines)  # no colour codes when not on a terminal
