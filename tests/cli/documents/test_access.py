"""``rag ingest --groups`` and ``rag docs`` (real CLI subprocesses, embedded store),
and the parsing behind them."""

from __future__ import annotations

from pathlib import Path

import pytest

from cli.files import manifest_digest, parse_groups
from cli.serve.server import access_line
from services.query.transports.identity import TokenAuthenticator
from tests.local.conftest import rag


def test_groups_option_parsing() -> None:
    assert parse_groups(None) is None  # every authenticated user
    assert parse_groups("") == []  # admins only
    assert parse_groups("hr, finance,hr") == ["finance", "hr"]
    with pytest.raises(ValueError, match="'bad name' is not a group name"):
        parse_groups("hr,bad name")


def test_a_new_access_list_makes_an_unchanged_file_a_change() -> None:
    data = b"same bytes"
    assert manifest_digest(data, None) != manifest_digest(data, ["hr"])
    assert manifest_digest(data, ["hr"]) != manifest_digest(data, [])
    assert manifest_digest(data, ["hr"]) == manifest_digest(data, ["hr"])


def test_the_start_banner_says_who_reads_what(tmp_path: Path) -> None:
    assert "single-user mode" in access_line(None, None)
    tokens = tmp_path / "tokens.json"
    tokens.write_text('{"t0ken-0123456789": {"principal": "a", "groups": ["hr"]}}')
    line = access_line(TokenAuthenticator.from_file(tokens, "rag-admins"), tokens)
    assert "1 token(s)" in line and "t0ken" not in line


@pytest.mark.slow
def test_ingest_with_groups_then_relabel_then_docs(tmp_path: Path) -> None:
    data = tmp_path / "data"
    doc = tmp_path / "pay.md"
    doc.write_text("# Salary bands\n\nThe bands are reviewed every April.\n")

    first = rag("ingest", "--groups", "hr", str(doc), "--data-dir", str(data))
    assert first.returncode == 0, first.stdout + first.stderr
    listed = rag("docs", "--data-dir", str(data))
    assert "readable by" in listed.stdout and " hr " in listed.stdout

    # Same file, new list: sent again (not "unchanged") and re-labelled.
    again = rag("ingest", "--groups", "hr,finance", str(doc), "--data-dir", str(data))
    assert again.returncode == 0, again.stdout + again.stderr
    assert "unchanged" not in again.stdout
    assert "finance, hr" in rag("docs", "--data-dir", str(data)).stdout

    locked = rag("ingest", "--groups", "", str(doc), "--data-dir", str(data))
    assert locked.returncode == 0, locked.stdout + locked.stderr
    assert "admins only" in rag("docs", "--data-dir", str(data)).stdout

    bad = rag("ingest", "--groups", "not a group", str(doc), "--data-dir", str(data))
    assert bad.returncode == 1
    assert "'not a group' is not a group name" in bad.stdout + bad.stderr
