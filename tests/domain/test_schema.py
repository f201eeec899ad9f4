"""The committed JSON Schemas match the models (python -m shared.schema --check)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from shared import schema

REPO = Path(__file__).resolve().parent.parent.parent


def test_committed_schemas_are_current() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "shared.schema", "--check"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr


def test_check_reports_a_stale_or_missing_schema(tmp_path: Path) -> None:
    schema.write_all(tmp_path)
    assert schema.main(["--check", "--out-dir", str(tmp_path)]) == 0
    stale = tmp_path / "client-action.schema.json"
    stale.write_text(stale.read_text().replace('"ask"', '"question"'))
    (tmp_path / "server-event.schema.json").unlink()
    assert schema.stale_files(tmp_path) == [stale, tmp_path / "server-event.schema.json"]
    assert schema.main(["--check", "--out-dir", str(tmp_path)]) == 1


def test_schemas_are_stable_documents() -> None:
    for doc in schema.SCHEMAS:
        text = schema.render(doc)
        assert text == schema.render(doc) and text.endswith("}\n")
        parsed = json.loads(text)
        assert parsed["$schema"] == "https://json-schema.org/draft/2020-12/schema"
        assert parsed["$id"].startswith("urn:serverless-rag:")
        assert parsed["title"] and parsed["description"]
        assert text == json.dumps(parsed, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def test_schemas_describe_every_operation_action_and_event() -> None:
    by_name = {doc.name: json.loads(schema.render(doc)) for doc in schema.SCHEMAS}
    assert set(by_name["ingest-message"]["discriminator"]["mapping"]) == {"index", "delete"}
    assert set(by_name["client-action"]["discriminator"]["mapping"]) == {"ask", "cancel", "ping"}
    assert set(by_name["server-event"]["discriminator"]["mapping"]) == {
        "accepted",
        "token",
        "sources",
        "done",
        "error",
        "pong",
    }
