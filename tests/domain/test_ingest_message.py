"""The ingest message: round trips and every malformed case -> InvalidMessage."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

from shared.errors import InvalidMessage
from shared.ingest import (
    MAX_INLINE_BYTES,
    DeleteOperation,
    IndexOperation,
    S3Object,
    parse_ingest_message,
)


def index_message(**fields: Any) -> dict[str, Any]:
    message: dict[str, Any] = {"version": 1, "op": "index", "doc_id": "handbook/leave.md"}
    message.update(fields)
    return message


@pytest.mark.parametrize(
    "operation",
    [
        IndexOperation(
            doc_id="handbook/leave.md",
            title="Leave policy",
            source_uri="https://intranet.example/leave",
            metadata={"team": "hr", "year": 2024, "ratio": 0.5, "public": False, "tags": ["a"]},
            content_type="text/markdown",
            text="# Leave\n\n25 days.",
        ),
        IndexOperation(
            doc_id="q3.pdf",
            content_type="application/pdf",
            data_base64=base64.b64encode(b"%PDF-1.4 ...").decode(),
        ),
        IndexOperation(
            doc_id="big.pdf",
            s3=S3Object(bucket="my-ingest-bucket", key="docs/big.pdf", version_id="v1"),
        ),
        DeleteOperation(doc_id="handbook/leave.md"),
    ],
    ids=["inline-text", "base64", "s3", "delete"],
)
def test_every_operation_round_trips_through_json(
    operation: IndexOperation | DeleteOperation,
) -> None:
    assert parse_ingest_message(operation.model_dump_json()) == operation
    assert parse_ingest_message(operation.model_dump_json().encode()) == operation


def test_a_minimal_message_gets_defaults() -> None:
    op = parse_ingest_message(json.dumps(index_message(text="hello")))
    assert isinstance(op, IndexOperation)
    assert (op.title, op.source_uri, op.metadata, op.content_type) == (None, None, {}, None)
    assert op.inline_bytes() == b"hello"


def test_base64_body_is_decoded() -> None:
    op = parse_ingest_message(json.dumps(index_message(data_base64="AAEC/w==")))
    assert isinstance(op, IndexOperation)
    assert op.inline_bytes() == b"\x00\x01\x02\xff"


def test_s3_body_has_no_inline_bytes() -> None:
    op = parse_ingest_message(json.dumps(index_message(s3={"bucket": "abc", "key": "k.pdf"})))
    assert isinstance(op, IndexOperation)
    assert op.inline_bytes() is None


MALFORMED: dict[str, str | bytes] = {
    "not json": "{not json",
    "invalid utf-8": b'{"version": 1, "op": "delete", "doc_id": "\xff"}',
    "array": "[1, 2]",
    "string": '"index"',
    "null": "null",
    "unknown version": json.dumps(index_message(version=2, text="x")),
    "version as string": json.dumps(index_message(version="1", text="x")),
    "missing version": json.dumps({"op": "delete", "doc_id": "a"}),
    "unknown op": json.dumps({"version": 1, "op": "upsert", "doc_id": "a"}),
    "missing op": json.dumps({"version": 1, "doc_id": "a"}),
    "two body sources": json.dumps(index_message(text="x", data_base64="eA==")),
    "three body sources": json.dumps(
        index_message(text="x", data_base64="eA==", s3={"bucket": "abc", "key": "k"})
    ),
    "no body source": json.dumps(index_message()),
    "bad base64": json.dumps(index_message(data_base64="not base64!!")),
    "base64 without padding": json.dumps(index_message(data_base64="eA")),
    "oversize inline text": json.dumps(index_message(text="é" * (MAX_INLINE_BYTES // 2 + 1))),
    "bad metadata key": json.dumps(index_message(text="x", metadata={"bad key": "v"})),
    "metadata key with a digit first": json.dumps(index_message(text="x", metadata={"1a": 1})),
    "nested metadata value": json.dumps(index_message(text="x", metadata={"a": {"b": 1}})),
    "extra field": json.dumps(index_message(text="x", colour="blue")),
    "extra field on delete": json.dumps({"version": 1, "op": "delete", "doc_id": "a", "x": 1}),
    "missing doc_id": json.dumps({"version": 1, "op": "delete"}),
    "empty doc_id": json.dumps({"version": 1, "op": "delete", "doc_id": ""}),
    "doc_id with a newline": json.dumps({"version": 1, "op": "delete", "doc_id": "a\nb"}),
    "doc_id too long": json.dumps({"version": 1, "op": "delete", "doc_id": "a" * 513}),
    "s3 without key": json.dumps(index_message(s3={"bucket": "abc"})),
    "text is a number": json.dumps(index_message(text=42)),
}


@pytest.mark.parametrize("body", MALFORMED.values(), ids=MALFORMED.keys())
def test_every_malformed_message_raises_invalid_message(body: str | bytes) -> None:
    with pytest.raises(InvalidMessage) as raised:
        parse_ingest_message(body)
    assert raised.value.code == "invalid_message"
    assert str(raised.value)


def test_validation_problems_are_listed_by_field() -> None:
    with pytest.raises(InvalidMessage) as raised:
        parse_ingest_message(json.dumps(index_message(text="x", metadata={"bad key": "v"})))
    assert any(problem.startswith("index.metadata") for problem in raised.value.errors)


def test_unknown_version_names_the_supported_one() -> None:
    with pytest.raises(InvalidMessage, match="version 1"):
        parse_ingest_message(json.dumps(index_message(version=7, text="x")))


def test_inline_text_at_the_limit_is_accepted() -> None:
    op = parse_ingest_message(json.dumps(index_message(text="a" * MAX_INLINE_BYTES)))
    assert isinstance(op, IndexOperation)


def test_groups_absent_empty_and_listed() -> None:
    base = {"version": 1, "op": "index", "doc_id": "d", "text": "x"}
    assert parse_ingest_message(json.dumps(base)).groups is None  # type: ignore[union-attr]
    empty = parse_ingest_message(json.dumps({**base, "groups": []}))
    assert empty.groups == []  # type: ignore[union-attr]
    listed = parse_ingest_message(json.dumps({**base, "groups": ["hr", "team:finance"]}))
    assert listed.groups == ["hr", "team:finance"]  # type: ignore[union-attr]


@pytest.mark.parametrize(
    "groups", ["hr", [1], ["x" * 129], ["*"], ["~"], ["has space"], [None], ["hr"] * 101]
)
def test_groups_that_are_not_short_names_are_rejected_with_the_field(groups: object) -> None:
    body = {"version": 1, "op": "index", "doc_id": "d", "text": "x", "groups": groups}
    with pytest.raises(InvalidMessage) as caught:
        parse_ingest_message(json.dumps(body))
    assert "groups" in str(caught.value)
