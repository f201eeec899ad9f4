"""A deployed stack's endpoints, from ``pulumi stack output --json``."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

from shared.errors import ConfigurationError

# Output names the infra program exports, with tolerated alternatives.
QUEUE_KEYS = ("ingest_queue_url", "queue_url", "ingestQueueUrl")
BUCKET_KEYS = ("ingest_bucket", "ingest_bucket_name", "bucket", "ingestBucket")
WEBSOCKET_KEYS = ("websocket_url", "ws_url", "websocketUrl", "chat_url")
REGION_KEYS = ("region", "aws_region")
STATUS_TABLE_KEYS = ("status_table", "statusTable")


def read_stack_outputs(stack: str, cwd: Path) -> dict[str, Any]:
    if shutil.which("pulumi") is None:
        raise ConfigurationError(
            "pulumi is not installed, so the stack's endpoints can't be read: install it "
            "(https://www.pulumi.com/docs/install/) or set RAG_QUEUE__BACKEND=sqs, "
            "RAG_QUEUE__QUEUE_URL, RAG_INGEST__BUCKET (and --url for ask/chat)"
        )
    done = subprocess.run(
        ["pulumi", "stack", "output", "--json", "--stack", stack],
        cwd=cwd,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise ConfigurationError(
            f"`pulumi stack output --stack {stack}` failed: {done.stderr.strip()}"
        )
    outputs = json.loads(done.stdout or "{}")
    if not isinstance(outputs, dict):
        raise ConfigurationError("`pulumi stack output --json` did not return an object")
    return outputs


def pick(outputs: dict[str, Any], keys: tuple[str, ...]) -> str | None:
    for key in keys:
        value = outputs.get(key)
        if isinstance(value, str) and value:
            return value
    return None


# Which settings each output fills in: (output names, settings section, the
# field the output's value goes to, fixed fields set with it).
OVERRIDES: tuple[tuple[tuple[str, ...], str, str, dict[str, str]], ...] = (
    (QUEUE_KEYS, "queue", "queue_url", {"backend": "sqs"}),
    (BUCKET_KEYS, "ingest", "bucket", {}),
    (STATUS_TABLE_KEYS, "status", "table", {"backend": "dynamodb"}),
    (REGION_KEYS, "aws", "region", {}),
)


def settings_overrides(outputs: dict[str, Any]) -> dict[str, Any]:
    """Settings that point ``rag`` at the deployed stack instead of local mode."""
    overrides: dict[str, Any] = {}
    for keys, section, field, fixed in OVERRIDES:
        value = pick(outputs, keys)
        if value:
            overrides[section] = {**fixed, field: value}
    return overrides
