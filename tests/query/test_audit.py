"""One audit line per answer: who, which request, which documents; never text."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Iterator
from typing import Any

import pytest

from services.query.answer.audit import AUDIT_LOGGER
from services.query.answer.service import AnswerService
from services.query.frontdoor import new_job
from shared.access import Principal
from shared.protocol import AskAction
from tests.fakes.chat_model import FakeChatModel, Script
from tests.fakes.sink import RecordingSink


@pytest.fixture
def audit() -> Iterator[list[dict[str, Any]]]:
    entries: list[dict[str, Any]] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            entries.append(json.loads(record.getMessage()))  # each line is one JSON object

    logger = logging.getLogger(AUDIT_LOGGER)
    handler = Keep()
    logger.addHandler(handler)
    yield entries
    logger.removeHandler(handler)


async def test_each_answer_writes_one_line_with_ids_only(
    service: AnswerService, model: FakeChatModel, audit: list[dict[str, Any]]
) -> None:
    model.scripts = [Script(tokens=["Grass and hay [1]."])]
    who = Principal(id="alice", groups=frozenset({"farm"}))
    job = new_job(
        AskAction(action="ask", question="What do llamas eat?", request_id="r-1", k=3), who
    )
    await service.answer(job, RecordingSink(), asyncio.Event())

    (entry,) = audit
    assert entry["audit"] == "answer"
    assert entry["principal"] == "alice" and entry["admin"] is False
    assert entry["request_id"] == "r-1" and entry["conversation_id"] == job.conversation_id
    assert entry["retrieved"][0] == "llamas" and len(entry["retrieved"]) == len(
        set(entry["retrieved"])
    )
    assert entry["cited"] == ["llamas"]
    assert entry["stop_reason"] == "end"
    line = json.dumps(entry)
    assert "llamas eat" not in line.lower() and "grass" not in line.lower()


async def test_a_failed_retrieval_is_audited_too(
    service: AnswerService, embedder: Any, audit: list[dict[str, Any]]
) -> None:
    embedder.fail_with = RuntimeError("embedder down")
    job = new_job(AskAction(action="ask", question="llamas?"), Principal("bob"))
    await service.answer(job, RecordingSink(), asyncio.Event())
    (entry,) = audit
    assert entry["principal"] == "bob" and entry["retrieved"] == [] and entry["cited"] == []
    assert entry["stop_reason"] == "error"


def test_a_cli_command_can_keep_audit_lines_off_its_stdout() -> None:
    """``rag eval --answers --json`` runs the service in-process: its stdout
    must stay one JSON document, so the audit lines go to stderr meanwhile."""
    import io

    from services.query.answer.audit import audit_stream, write_audit

    write_audit({"audit": "answer", "request_id": "r0"})  # the handler exists
    handlers = logging.getLogger(AUDIT_LOGGER).handlers
    before = [h.stream for h in handlers if isinstance(h, logging.StreamHandler)]
    assert before
    elsewhere = io.StringIO()
    with audit_stream(elsewhere):
        write_audit({"audit": "answer", "request_id": "r1"})
    write_audit({"audit": "answer", "request_id": "r2"})  # afterwards: back where it was
    assert [json.loads(line)["request_id"] for line in elsewhere.getvalue().splitlines()] == ["r1"]
    assert [h.stream for h in handlers if isinstance(h, logging.StreamHandler)] == before
