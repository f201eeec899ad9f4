"""The committed JSON Schemas match the models (python -m shared.schema --check)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from shared import schema
from shared.errors import InvalidMessage
from shared.ingest import parse_ingest_message
from shared.protocol import (
    MAX_QUESTION_CHARS,
    AcceptedEvent,
    AskAction,
    CancelAction,
    Citation,
    DoneEvent,
    ErrorCode,
    ErrorEvent,
    PingAction,
    PongEvent,
    ServerEvent,
    SourcesEvent,
    StopReason,
    TokenEvent,
    encode_event,
)

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
        "status",
        "sources",
        "done",
        "error",
        "pong",
    }


# ---- the committed schemas accept what the services accept, and reject the rest ----

SCHEMA_DIR = REPO / "docs" / "schema"


def validator(name: str) -> Draft202012Validator:
    document = json.loads((SCHEMA_DIR / f"{name}.schema.json").read_text(encoding="utf-8"))
    Draft202012Validator.check_schema(document)
    return Draft202012Validator(document)


@pytest.mark.parametrize(
    "message",
    [
        {"version": 1, "op": "index", "doc_id": "a.md", "text": "# A", "metadata": {"t": ["x"]}},
        {"version": 1, "op": "index", "doc_id": "a.pdf", "data_base64": "eA=="},
        {"version": 1, "op": "index", "doc_id": "b.pdf", "s3": {"bucket": "abc", "key": "k"}},
        {"version": 1, "op": "delete", "doc_id": "a.md"},
    ],
)
def test_schema_accepts_valid_ingest_messages(message: dict[str, Any]) -> None:
    parsed = parse_ingest_message(json.dumps(message))  # the service accepts it
    assert (parsed.op, parsed.doc_id) == (message["op"], message["doc_id"])
    assert validator("ingest-message").is_valid(message)  # and so does the schema


@pytest.mark.parametrize(
    "message",
    [
        {"version": 1, "op": "upsert", "doc_id": "a"},
        {"version": 2, "op": "delete", "doc_id": "a"},
        {"version": 1, "op": "delete", "doc_id": "a", "extra": True},
        {"version": 1, "op": "index", "doc_id": "a", "text": "x", "metadata": {"bad key": 1}},
        {"version": 1, "op": "delete"},
    ],
)
def test_schema_rejects_invalid_ingest_messages(message: dict[str, Any]) -> None:
    with pytest.raises(InvalidMessage):
        parse_ingest_message(json.dumps(message))
    assert not validator("ingest-message").is_valid(message)


def test_schema_accepts_every_action_and_event_the_models_produce() -> None:
    actions = [
        AskAction(action="ask", question="q", k=3, filters={"a": [1, "b"]}, request_id="r"),
        CancelAction(action="cancel", request_id="r"),
        PingAction(action="ping"),
    ]
    for action in actions:
        assert validator("client-action").is_valid(json.loads(action.model_dump_json()))
    events: list[ServerEvent] = [
        AcceptedEvent(request_id="r"),
        TokenEvent(request_id="r", seq=0, text="t"),
        SourcesEvent(
            request_id="r",
            citations=[Citation(n=1, cited=True, doc_id="d", excerpt="e", score=0.5)],
        ),
        DoneEvent(
            request_id="r",
            stop_reason=StopReason.END,
            prompt_tokens=1,
            completion_tokens=1,
            total_ms=1.0,
        ),
        ErrorEvent(code=ErrorCode.BAD_FILTER, message="m"),
        PongEvent(),
    ]
    for event in events:
        assert validator("server-event").is_valid(json.loads(encode_event(event)))


@pytest.mark.parametrize(
    "frame",
    [
        {"action": "shout"},
        {"action": "ask"},
        {"action": "ask", "question": "x" * (MAX_QUESTION_CHARS + 1)},
        {"action": "ask", "question": "q", "k": 0},
        {"action": "ask", "question": "q", "filters": {"a": {"b": 1}}},
        {"action": "ask", "question": "q", "filters": {"bad key": 1}},
        {"action": "cancel"},
    ],
)
def test_schema_rejects_invalid_actions(frame: dict[str, Any]) -> None:
    assert not validator("client-action").is_valid(frame)
