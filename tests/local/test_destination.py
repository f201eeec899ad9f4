"""`rag ingest`/`rag delete` ask one Destination (embedded or stack) instead of
branching on the queue's kind in every module (#23 item 4)."""

from __future__ import annotations

from pathlib import Path

from cli.destination import EmbeddedDestination, StackDestination, destination_for
from cli.local_parts import LocalParts
from shared.settings import AwsSettings, QueueSettings, Settings, StatusSettings
from tests.local.conftest import REPO


def test_the_ingest_commands_never_ask_which_kind_of_queue() -> None:
    # (cli/submit.py still reads the embedded queue's own state while waiting
    # on it: pending messages, live consumers, dead letters)
    assert "embedded_queue" not in (REPO / "cli" / "documents" / "ingest.py").read_text()


async def test_the_destination_follows_the_settings(tmp_path: Path) -> None:
    local = LocalParts(Settings(data_dir=tmp_path / "a"))
    stack = Settings(
        data_dir=tmp_path / "b",
        aws=AwsSettings(region="us-east-1", endpoint_url="http://127.0.0.1:9"),
        queue=QueueSettings(backend="sqs", queue_url="http://127.0.0.1:9/q"),
    )
    remote = LocalParts(stack)
    with_table = LocalParts(stack.model_copy(update={"status": StatusSettings(table="t")}))
    try:
        assert isinstance(destination_for(local), EmbeddedDestination)
        assert destination_for(local).waits
        assert isinstance(destination_for(remote), StackDestination)
        assert not destination_for(remote).waits  # no status table to read
        assert destination_for(with_table).waits
    finally:
        for parts in (local, remote, with_table):
            await parts.close()
