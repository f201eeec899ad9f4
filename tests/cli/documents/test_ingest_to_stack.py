"""``rag ingest`` against a deployed-style stack: a real SQS-compatible server."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import pytest

from cli.destination import destination_for
from cli.documents.submit import send_files
from cli.files import discover
from cli.local_parts import LocalParts
from shared.ingest import IndexOperation, parse_ingest_message
from shared.settings import AwsSettings, IngestSettings, QueueSettings, Settings

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
    parts = LocalParts(settings)
    try:
        sent, unchanged = await send_files(destination_for(parts), files)
        again, unchanged_again = await send_files(destination_for(parts), files)
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


async def test_a_file_too_big_for_sqs_goes_through_the_bucket(
    tmp_path: Path, sqs_endpoint_url: str, sqs_queue: Any, sqs_client: Any
) -> None:
    from aiobotocore.session import get_session

    big = "lorem ipsum " * 100_000  # 1.2 MB: over the SQS body limit
    (tmp_path / "big.txt").write_text(big)
    bucket = f"ingest-{uuid.uuid4().hex[:12]}"
    settings = Settings(
        data_dir=tmp_path / "data",
        aws=AwsSettings(region="us-east-1", endpoint_url=sqs_endpoint_url),
        queue=QueueSettings(backend="sqs", queue_url=sqs_queue.url),
        ingest=IngestSettings(bucket=bucket),
    )
    async with get_session().create_client(
        "s3", endpoint_url=sqs_endpoint_url, region_name="us-east-1"
    ) as s3:
        await s3.create_bucket(Bucket=bucket)
        files, _ = discover([tmp_path / "big.txt"])
        parts = LocalParts(settings)
        try:
            (sent,), _ = await send_files(destination_for(parts), files)
        finally:
            await parts.close()
        received = await sqs_client.receive_message(
            QueueUrl=sqs_queue.url, MaxNumberOfMessages=1, WaitTimeSeconds=1
        )
        (message,) = [parse_ingest_message(m["Body"]) for m in received["Messages"]]
        assert isinstance(message, IndexOperation)
        assert message.text is None and message.s3 is not None
        stored = await s3.get_object(Bucket=message.s3.bucket, Key=message.s3.key)
        body = await stored["Body"].read()

    assert sent.doc_id == "big.txt"
    assert body == big.encode()


async def test_sync_sends_deletes_for_files_gone_from_the_folder(
    tmp_path: Path, sqs_endpoint_url: str, sqs_queue: Any, sqs_client: Any
) -> None:
    from cli.documents import ingest as ingesting
    from shared.ingest import DeleteOperation

    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "a.md").write_text("# A\n\nalpha")
    (folder / "b.md").write_text("# B\n\nbeta")
    settings = Settings(
        data_dir=tmp_path / "data",
        aws=AwsSettings(region="us-east-1", endpoint_url=sqs_endpoint_url),
        queue=QueueSettings(backend="sqs", queue_url=sqs_queue.url),
    )
    options: dict[str, Any] = {"force": False, "meta": [], "wait": True}
    assert await ingesting.ingest(settings, [folder], **options) == 0
    (folder / "b.md").unlink()
    assert await ingesting.ingest(settings, [folder], sync=True, **options) == 0

    bodies: list[str] = []
    for _ in range(3):
        got = await sqs_client.receive_message(
            QueueUrl=sqs_queue.url, MaxNumberOfMessages=10, WaitTimeSeconds=1
        )
        bodies += [m["Body"] for m in got.get("Messages", [])]
    messages = [parse_ingest_message(body) for body in bodies]
    deletes = [m.doc_id for m in messages if isinstance(m, DeleteOperation)]
    indexed = sorted(m.doc_id for m in messages if isinstance(m, IndexOperation))
    assert deletes == ["b.md"] and indexed == ["a.md", "b.md"]
