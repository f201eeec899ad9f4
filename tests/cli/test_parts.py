"""Pure parts of the CLI: discovery, messages, metadata, stack outputs, manifest, FTS/filter SQL."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest

from cli.ask.asking import with_token
from cli.files import build_index_message, discover, parse_metadata
from cli.manifest import Manifest
from cli.stack_outputs import settings_overrides
from shared.adapters.sqlite.store import build_filter_sql, build_fts_query
from shared.ingest import MAX_INLINE_BYTES


def test_discover_gives_relative_ids_for_folders_and_names_for_files(tmp_path: Path) -> None:
    (tmp_path / "docs" / "guide").mkdir(parents=True)
    (tmp_path / "docs" / "guide" / "intro.md").write_text("# Intro")
    (tmp_path / "docs" / "a.txt").write_text("a")
    (tmp_path / "docs" / ".git").mkdir()
    (tmp_path / "docs" / ".git" / "HEAD.txt").write_text("hidden")
    (tmp_path / "docs" / "photo.jpg").write_bytes(b"\xff")
    (tmp_path / "single.pdf").write_bytes(b"%PDF")

    files, skipped = discover([tmp_path / "docs", tmp_path / "single.pdf", tmp_path / "missing"])

    assert sorted((f.doc_id, f.content_type) for f in files) == [
        ("a.txt", "text/plain"),
        ("guide/intro.md", "text/markdown"),
        ("single.pdf", "application/pdf"),
    ]
    reasons = {s.path.name: s.reason for s in skipped}
    assert reasons["photo.jpg"].startswith("unsupported file type")
    assert reasons["missing"] == "no such file or folder"
    assert "HEAD.txt" not in reasons


def test_messages_inline_text_and_encode_binary_or_oversized_bodies() -> None:
    text = build_index_message("a.md", "héllo".encode(), "text/markdown", metadata={"t": "x"})
    assert (text.text, text.data_base64, text.metadata) == ("héllo", None, {"t": "x"})

    pdf = build_index_message("b.pdf", b"%PDF-1.4", "application/pdf")
    assert pdf.text is None and base64.b64decode(pdf.data_base64 or "") == b"%PDF-1.4"

    latin1 = build_index_message("c.txt", "café".encode("latin-1"), "text/plain")
    assert latin1.text is None and latin1.inline_bytes() == "café".encode("latin-1")

    big = build_index_message("d.txt", b"x" * (MAX_INLINE_BYTES + 1), "text/plain")
    assert big.text is None and len(big.inline_bytes() or b"") == MAX_INLINE_BYTES + 1


def test_metadata_pairs() -> None:
    assert parse_metadata(["team=hr", "year=2024", "note=a=b"]) == {
        "team": "hr",
        "year": 2024,
        "note": "a=b",
    }
    with pytest.raises(ValueError, match="key=value"):
        parse_metadata(["oops"])


def test_stack_outputs_become_settings() -> None:
    overrides = settings_overrides(
        {"ingest_queue_url": "https://sqs/q", "ingest_bucket": "b-123", "region": "eu-west-1"}
    )
    assert overrides == {
        "queue": {"backend": "sqs", "queue_url": "https://sqs/q"},
        "ingest": {"bucket": "b-123"},
        "aws": {"region": "eu-west-1"},
    }
    assert settings_overrides({}) == {}


def test_token_goes_into_the_query_string() -> None:
    assert with_token("wss://x/dev", None) == "wss://x/dev"
    assert with_token("wss://x/dev", "a b") == "wss://x/dev?token=a+b"
    assert with_token("wss://x/dev?v=1", "t") == "wss://x/dev?v=1&token=t"


def test_manifest_round_trip(tmp_path: Path) -> None:
    manifest = Manifest.load(tmp_path)
    manifest.record("a.md", "abc")
    manifest.record("b.md", "def")
    manifest.forget("b.md")
    manifest.save()
    again = Manifest.load(tmp_path)
    assert (again.digest("a.md"), again.digest("b.md")) == ("abc", None)
    (tmp_path / "ingested.json").write_text("{not json")
    assert Manifest.load(tmp_path).digest("a.md") is None


def test_fts_query_quotes_words_and_drops_operators() -> None:
    assert build_fts_query('NEAR( "x" OR y* -z') == '"near" OR "x" OR "or" OR "y" OR "z"'
    assert build_fts_query("  ?! ") is None


def test_filter_sql_rejects_bad_keys_and_binds_values() -> None:
    where, params = build_filter_sql({"team": ["hr", "it"], "flag": True})
    assert where.count("EXISTS") == 2
    assert params == ['$.metadata."team"', "hr", "it", '$.metadata."flag"', 1]
    assert build_filter_sql({}) == ("1", [])
    with pytest.raises(ValueError):
        build_filter_sql({'x") OR 1=1 --': "a"})
