"""Structured JSON logs: one object per line, for CloudWatch Logs Insights.

Both Lambda functions and the indexer's poller log this way.

Call sites pass their fields as ``extra={"fields": {...}}``; the formatter
merges them into the record's JSON so queries can filter on ``doc_id``,
``message_id``, ``outcome`` or a timing.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from typing import Any


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            entry.update(fields)
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str, ensure_ascii=False)


class ConsoleFormatter(logging.Formatter):
    """One readable line per record for a person's console (``rag serve``):
    time, level, logger, message, then the record's fields as ``key=value``,
    so what the JSON logs carry (``outcome=relabelled``, ``doc_id=…``) shows
    locally too. Nested values (timings) stay out: they are for the JSON."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        fields = getattr(record, "fields", None)
        if not isinstance(fields, dict):
            return line
        shown = [
            f"{key}={value}"
            for key, value in fields.items()
            if value is not None and not isinstance(value, dict | list)
        ]
        if not shown:
            return line
        first, newline, rest = line.partition("\n")  # a traceback stays below the line
        return f"{first} {' '.join(shown)}{newline}{rest}"


def configure_logging(level: str = "INFO") -> None:
    """Route the root logger to stdout as JSON (idempotent: Lambda re-imports nothing,
    but tests and the poller may call it more than once)."""
    root = logging.getLogger()
    for handler in root.handlers:
        if isinstance(handler.formatter, JsonFormatter):
            root.setLevel(level.upper())
            return
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(JsonFormatter())
    # Lambda's runtime pre-installs a plain handler; replace it so lines stay JSON.
    root.handlers = [handler]
    root.setLevel(level.upper())
    for noisy in ("botocore", "aiobotocore", "opensearch", "urllib3"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
