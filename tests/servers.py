"""Pytest plugin: the real OpenSearch node and SQS server the tests talk to.

The servers are started outside pytest (``scripts/test-servers start``, or
``scripts/opensearch start`` / ``scripts/sqs-server start`` one by one), which
write their URLs to ``.servers/`` (or ``$RAG_SERVERS_DIR``). The environment
variables below override those files, e.g. to point the suite at another node.

When a server does not answer, a test that needs it is skipped with a message
naming the script that starts it; under ``CI=true`` it fails instead, so a CI
run can never pass by skipping the real-server tests.

A test that uses a server's fixture is marked for it here (``opensearch``,
``sqs``) whether or not its module says so, so ``scripts/test --offline``
(``-m "not opensearch and not sqs and not browser"``) leaves out exactly the
tests that need a server; under ``RAG_TEST_OFFLINE=1`` a server fixture that
is reached anyway fails the test instead of touching the network.
"""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.request
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any, NoReturn

import pytest
import pytest_asyncio
from aiobotocore.session import get_session
from opensearchpy import AsyncOpenSearch

OPENSEARCH_URL_ENV = "RAG_TEST_OPENSEARCH_URL"
OPENSEARCH_ENGINE_ENV = "RAG_TEST_KNN_ENGINE"
SQS_URL_ENV = "RAG_TEST_SQS_URL"
STATE_DIR = Path(
    os.environ.get("RAG_SERVERS_DIR") or Path(__file__).resolve().parent.parent / ".servers"
)
# Small enough that a redrive test needs only a few receives.
MAX_RECEIVE_COUNT = 3
SQS_REGION = "us-east-1"
OFFLINE_ENV = "RAG_TEST_OFFLINE"
# The fixture whose use means a test needs the server, and the marker that says so.
SERVER_FIXTURES = {"opensearch_url": "opensearch", "sqs_endpoint_url": "sqs"}


@pytest.hookimpl(tryfirst=True)  # before -m deselects by marker
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        needed = getattr(item, "fixturenames", ())
        for fixture, marker in SERVER_FIXTURES.items():
            if fixture in needed and item.get_closest_marker(marker) is None:
                item.add_marker(marker)


def _refuse_offline(what: str) -> None:
    if os.environ.get(OFFLINE_ENV) == "1":
        pytest.fail(f"{what} is needed but this is an offline run ({OFFLINE_ENV}=1)")


@dataclass(frozen=True)
class SqsQueuePair:
    """A fresh queue and its dead-letter queue, wired by a redrive policy."""

    url: str
    dlq_url: str
    dlq_arn: str
    max_receive_count: int


def _configured_url(env_var: str, state_file: str) -> str | None:
    if url := os.environ.get(env_var):
        return url.rstrip("/")
    path = STATE_DIR / state_file
    if path.is_file():
        return path.read_text().strip().rstrip("/") or None
    return None


def _answers(url: str, path: str, data: bytes | None = None) -> bool:
    request = urllib.request.Request(url + path, data=data)
    try:
        with urllib.request.urlopen(request, timeout=5):
            return True
    except urllib.error.HTTPError:
        # An HTTP error status still means a server is listening there.
        return True
    except OSError:
        return False


def _unavailable(what: str, url: str | None, script: str, env_var: str) -> NoReturn:
    where = f"at {url}" if url else f"(no URL in .servers/ or ${env_var})"
    message = (
        f"{what} is not reachable {where}: start it with `{script} start` "
        f"(or `scripts/test-servers start`), or set ${env_var}"
    )
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(message, pytrace=False)
    pytest.skip(message)


@cache
def _opensearch_url() -> str | None:
    url = _configured_url(OPENSEARCH_URL_ENV, "opensearch.url")
    return url if url and _answers(url, "/_cluster/health") else None


@cache
def _sqs_url() -> str | None:
    url = _configured_url(SQS_URL_ENV, "sqs.url")
    return url if url and _answers(url, "/", b"Action=ListQueues") else None


@pytest.fixture(scope="session")
def opensearch_url() -> str:
    """Base URL of a running OpenSearch node with the k-NN plugin."""
    _refuse_offline("the OpenSearch node")
    if url := _opensearch_url():
        return url
    _unavailable(
        "OpenSearch",
        _configured_url(OPENSEARCH_URL_ENV, "opensearch.url"),
        "scripts/opensearch",
        OPENSEARCH_URL_ENV,
    )


@pytest.fixture(scope="session")
def opensearch_knn_engine(opensearch_url: str) -> str:
    """The k-NN engine the node can run: faiss where its native libraries
    are installed, lucene otherwise (see docs/test-servers.md)."""
    if engine := os.environ.get(OPENSEARCH_ENGINE_ENV):
        return engine
    path = STATE_DIR / "opensearch.engine"
    return path.read_text().strip() if path.is_file() else "faiss"


@pytest.fixture(scope="session")
def sqs_endpoint_url() -> str:
    """Endpoint URL of a running SQS-compatible server."""
    _refuse_offline("the SQS server")
    if url := _sqs_url():
        return url
    _unavailable(
        "The SQS server", _configured_url(SQS_URL_ENV, "sqs.url"), "scripts/sqs-server", SQS_URL_ENV
    )


@pytest.fixture
def fake_aws_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    """moto accepts any credentials; never let a developer's real ones be used."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "test")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "test")
    monkeypatch.delenv("AWS_SESSION_TOKEN", raising=False)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    monkeypatch.setenv("AWS_DEFAULT_REGION", SQS_REGION)


def unique_name(prefix: str) -> str:
    """A lowercase name no other test (or earlier run) uses."""
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


@pytest_asyncio.fixture
async def opensearch_client(opensearch_url: str) -> AsyncIterator[AsyncOpenSearch]:
    client = AsyncOpenSearch(hosts=[opensearch_url], timeout=30)
    try:
        yield client
    finally:
        await client.close()


@pytest_asyncio.fixture
async def opensearch_index_name(opensearch_client: AsyncOpenSearch) -> AsyncIterator[str]:
    """A unique index name; the index is deleted after the test if it exists."""
    name = unique_name("test")
    yield name
    await opensearch_client.indices.delete(index=name, params={"ignore_unavailable": "true"})


@pytest_asyncio.fixture
async def sqs_client(sqs_endpoint_url: str) -> AsyncIterator[Any]:
    session = get_session()
    async with session.create_client(
        "sqs",
        endpoint_url=sqs_endpoint_url,
        region_name=SQS_REGION,
        aws_access_key_id="test",
        aws_secret_access_key="test",
    ) as client:
        yield client


@pytest_asyncio.fixture
async def sqs_queue(sqs_client: Any) -> AsyncIterator[SqsQueuePair]:
    """A unique queue whose messages move to a unique DLQ after
    MAX_RECEIVE_COUNT receives; both are deleted after the test."""
    name = unique_name("test")
    dlq_url = (await sqs_client.create_queue(QueueName=f"{name}-dlq"))["QueueUrl"]
    attributes = await sqs_client.get_queue_attributes(
        QueueUrl=dlq_url, AttributeNames=["QueueArn"]
    )
    dlq_arn = attributes["Attributes"]["QueueArn"]
    policy = {"deadLetterTargetArn": dlq_arn, "maxReceiveCount": str(MAX_RECEIVE_COUNT)}
    url = (
        await sqs_client.create_queue(
            QueueName=name, Attributes={"RedrivePolicy": json.dumps(policy)}
        )
    )["QueueUrl"]
    try:
        yield SqsQueuePair(url, dlq_url, dlq_arn, MAX_RECEIVE_COUNT)
    finally:
        await sqs_client.delete_queue(QueueUrl=url)
        await sqs_client.delete_queue(QueueUrl=dlq_url)
