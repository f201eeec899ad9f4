"""One Destination (embedded or stack), chosen once from the settings, answers
everything that differs between the two for every command (#23 item 4);
tests/test_layout.py checks that no other module reads the embedded queue."""

from __future__ import annotations

import asyncio
from pathlib import Path

from cli.announce import announce, withdraw
from cli.destination import destination_for
from cli.destination.embedded import EmbeddedDestination
from cli.destination.stack import StackDestination
from cli.files import build_index_message
from cli.local_parts import LocalParts
from shared.settings import AwsSettings, QueueSettings, Settings, StatusSettings


def stack_settings(tmp_path: Path) -> Settings:
    return Settings(
        data_dir=tmp_path / "b",
        aws=AwsSettings(region="us-east-1", endpoint_url="http://127.0.0.1:9"),
        queue=QueueSettings(backend="sqs", queue_url="http://127.0.0.1:9/q"),
    )


async def test_the_destination_follows_the_settings(tmp_path: Path) -> None:
    local = LocalParts(Settings(data_dir=tmp_path / "a"))
    stack = stack_settings(tmp_path)
    remote = LocalParts(stack)
    with_table = LocalParts(stack.model_copy(update={"status": StatusSettings(table="t")}))
    try:
        assert isinstance(destination_for(local), EmbeddedDestination)
        assert destination_for(local).waits
        assert isinstance(destination_for(remote), StackDestination)
        assert not destination_for(remote).waits  # no status table to read
        assert destination_for(with_table).waits
        # A deployed indexer function named (--stack): the stack reconciles,
        # whatever queue the settings name.
        named = destination_for(local, "rag-dev-indexer")
        assert isinstance(named, StackDestination) and named.indexer_function == "rag-dev-indexer"
    finally:
        for parts in (local, remote, with_table):
            await parts.close()


async def test_a_stack_has_no_backlog_here_and_nothing_to_index_in_this_process(
    tmp_path: Path,
) -> None:
    parts = LocalParts(stack_settings(tmp_path))
    destination = destination_for(parts)
    try:
        assert await destination.backlog(letters=50) is None
        assert await destination.reclaim_orphans() == 0
        # rag serve against a stack: its indexer task ends at once
        await asyncio.wait_for(destination.index_until(asyncio.Event(), "serve-1"), 5)
        assert destination.indexer_note() is None
        # what the user reads once ingest has sent (nothing to wait for here)
        assert destination.sent_lines(2, 1) == [
            "sent 2 document(s) to http://127.0.0.1:9/q",
            "sent 1 delete(s) (files gone from the folder)",
        ]
    finally:
        await parts.close()


async def test_the_embedded_backlog_counts_what_was_sent(tmp_path: Path) -> None:
    parts = LocalParts(Settings(data_dir=tmp_path / "data"))
    destination = destination_for(parts)
    try:
        assert destination.sent_lines(2, 1) == []  # its wait's report says it all
        empty = await destination.backlog()
        assert empty is not None and (empty.visible, empty.in_flight, empty.dead) == (0, 0, 0)
        await destination.send(build_index_message("a.txt", b"alpha", "text/plain"))
        backlog = await destination.backlog(letters=50)
        assert backlog is not None and (backlog.visible, backlog.dead_letters) == (1, [])
    finally:
        await parts.close()


async def test_the_embedded_destination_names_the_rag_serve_that_indexes(tmp_path: Path) -> None:
    data = tmp_path / "data"
    parts = LocalParts(Settings(data_dir=data))
    destination = destination_for(parts)
    try:
        assert destination.indexer_note() is None
        announce(data, "127.0.0.1", 8123)
        note = destination.indexer_note()
        assert note is not None and "http://127.0.0.1:8123" in note and "indexes" in note
        withdraw(data)
    finally:
        await parts.close()
