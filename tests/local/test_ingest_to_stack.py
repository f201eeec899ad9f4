"""``rag ingest`` against a deployed-style stack: a real SQS-compatible server."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from services.cli.files import discover
from services.cli.ingest import send_files
from services.cli.runtime import Parts
from shared.ingest import parse_ingest_message
from shared.settings import AwsSettings, QueueSettings, Settings

pytestmark = pytest.mark.sqs


@pytest.fixture(autouse=True)
def aws_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "test")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "test")


async def test_files_are_sent_to_the_stack_queue_and_unchanged_ones_skipped(
    tmp_path: Path, sqs_endpoint_url: str, sqs_queue: Any, sqs_client: Any
) -> None:
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "a.md").write_text("# A\n\nalpha")
    (tmp_path / "docs" / "b.txt").write_text("beta")
    settings = Settings(
        data_dir=tmp_path / "data",
        aws=AwsSettings(region="us-east-1", endpoint_url=sqs_endpoint_url),
        queue=QueueSettings(backend="sqs", queue_url=sqs_queue.url),
    )
    files, _ = discover([tmp_path / "docs"])
    parts = Parts(settings)
    try:
        sent, unchanged = await send_files(parts, files)
        again, unchanged_again = await send_files(parts, files)
    finally:
        await parts.close()

    assert sorted(s.doc_id for s in sent) == ["a.md", "b.txt"] and unchanged == []
    assert again == [] and sorted(unchanged_again) == ["a.md", "b.txt"]
    received = await sqs_client.receive_message(
        QueueUrl=sqs_queue.url, MaxNumberOfMessages=10, WaitTimeSeconds=1
    )
    messages = [parse_ingest_message(m["Body"]) for m in received.get("Messages", [])]
    assert sorted((m.doc_id, m.inline_bytes()) for m in messages) == [  # type: ignore[union-attr]
        ("a.md", b"# A\n\nalpha"),
        ("b.txt", b"beta"),
    ]
