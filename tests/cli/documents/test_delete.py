"""``rag delete`` on each destination: the embedded one deletes and says so
(or refuses an unknown id), a stack's is sent for its indexer to carry out."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from cli.documents import ingest as ingesting
from cli.local_parts import LocalParts
from shared.documents import DocState
from shared.errors import ConfigurationError
from shared.ingest import DeleteOperation, parse_ingest_message
from shared.settings import AwsSettings, QueueSettings, Settings


async def test_an_embedded_delete_waits_for_the_indexer_and_says_deleted(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # GIVEN a document indexed on the embedded queue
    settings = Settings(data_dir=tmp_path / "data")
    (tmp_path / "a.md").write_text("# A\n\nalpha")
    options: dict[str, Any] = {"force": False, "meta": [], "wait": True}
    assert await ingesting.ingest(settings, [tmp_path / "a.md"], **options) == 0
    capsys.readouterr()
    # WHEN it is deleted THEN the command says so once the indexer has done it
    assert await ingesting.delete(settings, "a.md") is True
    assert capsys.readouterr().out.strip() == "deleted a.md"
    parts = LocalParts(settings)
    try:
        status = await parts.status.get("a.md")
        assert status is not None and status.state == DocState.DELETED
    finally:
        await parts.close()
    # AND an id it never had is refused, naming where the ids are
    with pytest.raises(ConfigurationError, match=r"no document 'nope\.md'.*rag docs"):
        await ingesting.delete(settings, "nope.md")


@pytest.mark.sqs
async def test_a_stack_delete_is_sent_for_its_indexer(
    tmp_path: Path,
    sqs_endpoint_url: str,
    sqs_queue: Any,
    sqs_client: Any,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "test")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "test")
    settings = Settings(
        data_dir=tmp_path / "data",
        aws=AwsSettings(region="us-east-1", endpoint_url=sqs_endpoint_url),
        queue=QueueSettings(backend="sqs", queue_url=sqs_queue.url),
    )
    # WHEN a document is deleted through a stack's queue (no status table here)
    assert await ingesting.delete(settings, "a.md") is True
    # THEN the user is told it was sent, and the queue holds the delete
    assert capsys.readouterr().out.strip() == "delete of a.md sent"
    got = await sqs_client.receive_message(
        QueueUrl=sqs_queue.url, MaxNumberOfMessages=10, WaitTimeSeconds=1
    )
    messages = [parse_ingest_message(m["Body"]) for m in got.get("Messages", [])]
    assert [(type(m), m.doc_id) for m in messages] == [(DeleteOperation, "a.md")]
