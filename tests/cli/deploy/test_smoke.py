"""``rag smoke`` against a stood-in stack: the moto server's SQS queue and DynamoDB
status table, the product's indexer (poller transport) and the local query
server (the same protocol as the deployed WebSocket API) over one index."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from cli.deploy.smoke import SmokeTarget, exit_code, run_smoke
from services.indexer.poller import Poller
from services.indexer.runtime import Runtime
from services.query.answer.parts import build_query_deps
from services.query.transports.server import create_app
from shared.adapters.aws import dynamodb_status
from shared.adapters.aws.sqs import SqsQueue
from shared.adapters.sqlite.store import SqliteVectorIndex
from shared.errors import ConfigurationError, ModelUnavailable
from shared.settings import AwsSettings, QueueSettings, Settings, StatusSettings
from tests.aws_doubles import serve_app
from tests.fakes.chat_model import FakeChatModel, Script
from tests.fakes.embedder import FakeEmbedder
from tests.indexer.conftest import make_pipeline
from tests.indexer.harness import create_status_table

pytestmark = pytest.mark.sqs


@pytest.fixture(autouse=True)
def aws_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "test")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "test")


@dataclass
class Stack:
    settings: Settings
    target: SmokeTarget
    model: FakeChatModel
    index: SqliteVectorIndex


@pytest.fixture
async def stack(tmp_path: Path, sqs_endpoint_url: str, sqs_queue: Any) -> AsyncIterator[Stack]:
    table = await create_status_table(sqs_endpoint_url)
    settings = Settings(
        data_dir=tmp_path / "data",
        aws=AwsSettings(region="us-east-1", endpoint_url=sqs_endpoint_url),
        queue=QueueSettings(
            backend="sqs", queue_url=sqs_queue.url, wait_seconds=1, visibility_timeout_s=30
        ),
        status=StatusSettings(backend="dynamodb", table=table),
    )
    embedder = FakeEmbedder()
    index = SqliteVectorIndex(tmp_path / "stack-index.db")
    status = dynamodb_status.from_settings(settings)
    runtime = Runtime(settings, make_pipeline(settings, index, status, embedder))
    queue = SqsQueue(sqs_queue.url, settings)
    stop = asyncio.Event()
    indexer = asyncio.create_task(Poller(queue, runtime, idle_pause_s=0.1).run(stop))
    model = FakeChatModel(Script(tokens=["The", " codeword", " is", " in", " [1]", "."]))
    query_index = SqliteVectorIndex(tmp_path / "stack-index.db")
    deps = build_query_deps(settings, embedder=embedder, index=query_index, model=model)
    try:
        async for base in serve_app(create_app(settings, deps)):
            target = SmokeTarget(base.replace("http://", "ws://") + "/ws", sqs_queue.url, table)
            yield Stack(settings, target, model, index)
    finally:
        stop.set()
        await indexer
        await queue.close()
        await status.close()
        await query_index.close()
        await index.close()


async def test_smoke_passes_on_a_working_stack(stack: Stack) -> None:
    steps = await run_smoke(stack.settings, stack.target, "a-token", timeout_s=60)
    assert [(s.name, s.ok) for s in steps] == [
        ("send", True),
        ("indexed", True),
        ("ask", True),
        ("deleted", True),
    ]
    ask = steps[2]
    assert "tokens" in ask.detail and "was cited" in ask.detail
    assert all(s.seconds >= 0 for s in steps)
    assert exit_code(steps) == 0
    # the smoke document is gone again: the next question has nothing to find
    assert await stack.index.document_ids() == {}


async def test_smoke_fails_while_the_model_is_unavailable_and_still_cleans_up(
    stack: Stack,
) -> None:
    stack.model.scripts = [Script(tokens=[], error=ModelUnavailable("the endpoint is starting"))]
    steps = await run_smoke(stack.settings, stack.target, None, timeout_s=60)
    names = {s.name: s for s in steps}
    assert not names["ask"].ok and "model_unavailable" in names["ask"].detail
    assert names["deleted"].ok
    assert exit_code(steps) == 1


async def test_smoke_reports_an_unreachable_websocket(stack: Stack) -> None:
    target = SmokeTarget("ws://127.0.0.1:9/ws", stack.target.queue_url, stack.target.status_table)
    steps = await run_smoke(stack.settings, target, None, timeout_s=30)
    names = {s.name: s for s in steps}
    assert not names["ask"].ok and "can't connect" in names["ask"].detail
    assert names["deleted"].ok and exit_code(steps) == 1


def test_missing_outputs_say_the_stack_is_not_up() -> None:
    with pytest.raises(ConfigurationError, match="has `pulumi up` finished"):
        SmokeTarget.from_outputs({"websocket_url": "wss://x"})


def test_rag_smoke_without_the_pulumi_cli_says_so_and_exits_1(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from typer.testing import CliRunner

    from cli.main import app

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PATH", str(tmp_path))  # no pulumi on it
    result = CliRunner().invoke(app, ["smoke", "--stack", "dev"])
    assert result.exit_code == 1
    assert "pulumi is not installed" in result.output


async def test_an_answer_that_ignores_the_document_fails(stack: Stack) -> None:
    stack.model.scripts = [Script(tokens=["I", " don't", " know", "."])]
    steps = await run_smoke(stack.settings, stack.target, None, timeout_s=12)
    names = {s.name: s for s in steps}
    assert not names["ask"].ok and "neither cites nor quotes" in names["ask"].detail
    assert exit_code(steps) == 1


def test_the_stack_token_comes_from_pulumi_config(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from cli.deploy.smoke import stack_token

    fake = tmp_path / "pulumi"  # stands in for the CLI: prints the decrypted secret
    fake.write_text('#!/bin/sh\n[ "$3" = rag:staticToken ] && [ "$5" = dev ] && echo s3cret\n')
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", str(tmp_path))
    assert stack_token("dev", tmp_path) == "s3cret"
    assert stack_token("prod", tmp_path) is None  # no token for that stack
    monkeypatch.setenv("PATH", str(tmp_path / "nowhere"))
    assert stack_token("dev", tmp_path) is None  # no pulumi
