"""The audit trail: one JSON line per answer, on stdout (CloudWatch Logs in Lambda),
or in a file of its own where stdout belongs to a person (``audit_to_file``:
``rag serve``'s console, ``rag ask``'s answer).

Who asked (the authenticated principal), which request, which documents were
retrieved into the prompt and which the answer cited: ids only, never text,
so the audit log can be kept longer and read more widely than the documents.
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TextIO

from shared.access import Principal

AUDIT_LOGGER = "rag.audit"
AUDIT_FILE = "audit.jsonl"  # in the data folder, when the service runs in the CLI


def audit_record(
    *,
    principal: Principal,
    request_id: str,
    conversation_id: str,
    retrieved: Iterable[str],
    cited: Iterable[str],
    stop_reason: str,
) -> dict[str, Any]:
    """The audit entry of one answer (document ids in first-seen order, unique)."""
    return {
        "audit": "answer",
        "principal": principal.id,
        "admin": principal.admin,
        "request_id": request_id,
        "conversation_id": conversation_id,
        "retrieved": list(dict.fromkeys(retrieved)),
        "cited": list(dict.fromkeys(cited)),
        "stop_reason": stop_reason,
    }


class _StdoutHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to the stdout of the moment, not the one it was made with: a CLI
    runner (or a test's) swaps ``sys.stdout`` and closes its own afterwards."""

    def emit(self, record: logging.LogRecord) -> None:
        self.stream = sys.stdout
        super().emit(record)


def _logger() -> logging.Logger:
    logger = logging.getLogger(AUDIT_LOGGER)
    # Never filtered out by the service's own log level (RAG_LOG_LEVEL=WARNING).
    logger.setLevel(logging.INFO)
    if not logger.handlers:
        # Its own handler and plain "%(message)s", so each entry is one bare
        # JSON line whatever the host's log format (Lambda prefixes its own).
        handler = _StdoutHandler(sys.stdout)
        handler.setFormatter(logging.Formatter("%(message)s"))
        logger.addHandler(handler)
        logger.propagate = False
    return logger


def audit_to_file(path: Path) -> Path:
    """From now on, append audit entries to ``path`` (one JSON line each)
    instead of stdout; returns the absolute path (for the start-up banner)."""
    path = path.resolve()
    path.parent.mkdir(parents=True, exist_ok=True)
    logger = _logger()
    for old in list(logger.handlers):
        if isinstance(old, logging.StreamHandler):
            logger.removeHandler(old)
            if isinstance(old, logging.FileHandler):
                old.close()
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(message)s"))
    logger.addHandler(handler)
    return path


def write_audit(record: dict[str, Any]) -> None:
    _logger().info(json.dumps(record, sort_keys=True, ensure_ascii=False))


@contextmanager
def audit_stream(stream: TextIO) -> Iterator[None]:
    """Audit entries go to ``stream`` meanwhile: a CLI command that runs the
    service in-process (``rag eval --answers --json``) keeps its stdout for
    its own output, so that it stays one JSON document."""
    logger = _logger()
    # A file of its own (audit_to_file) stays; the console handlers step aside.
    console = [
        h
        for h in logger.handlers
        if isinstance(h, logging.StreamHandler) and not isinstance(h, logging.FileHandler)
    ]
    meanwhile = logging.StreamHandler(stream)
    meanwhile.setFormatter(logging.Formatter("%(message)s"))
    for handler in console:
        logger.removeHandler(handler)
    logger.addHandler(meanwhile)
    try:
        yield
    finally:
        logger.removeHandler(meanwhile)
        for handler in console:
            logger.addHandler(handler)
