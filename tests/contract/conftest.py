"""Contract suites: one per port with two adapters, run against every adapter
(and the test fake where there is one). This module describes the subjects:
VectorIndex (embedded, OpenSearch, the fake), Queue + DeadLetters, StatusStore,
and the query service's state: RequestRegistry and ConversationStore (in
memory, DynamoDB).

VectorIndex.

Each adapter is described by an ``IndexUnderTest``: how to open (and re-open)
the same index, and how to make recent writes visible. OpenSearch makes
writes searchable only after a refresh interval (AOSS forbids refresh), so the
suite polls with a bound; on a self-managed node the test side may refresh.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, TypeVar

import pytest
from opensearchpy import AsyncOpenSearch

from services.query.state.conversation import InMemoryConversationStore
from services.query.state.ports import ConversationStore, RequestRegistry
from services.query.state.registry import InMemoryRegistry
from shared.ports import DeadLetters, Queue, StatusStore, VectorIndex
from shared.settings import (
    AwsSettings,
    IndexSettings,
    QuerySettings,
    QueueSettings,
    Settings,
    StatusSettings,
)
from tests.fakes.vector_index import FakeVectorIndex
from tests.servers import MAX_RECEIVE_COUNT, SQS_REGION, SqsQueuePair

T = TypeVar("T")
POLL_LIMIT_S = 15.0


@pytest.fixture(autouse=True)
def aws_test_credentials(fake_aws_credentials: None) -> None:
    """Every contract test runs with them (see tests/servers.py)."""


@dataclass
class IndexUnderTest:
    name: str
    open: Callable[[], VectorIndex]
    refresh: Callable[[], Awaitable[None]]
    opened: list[VectorIndex] = field(default_factory=list)

    def new(self) -> VectorIndex:
        index = self.open()
        self.opened.append(index)
        return index

    async def eventually(self, probe: Callable[[], Awaitable[T]], accept: Callable[[T], bool]) -> T:
        """Poll ``probe`` until ``accept`` holds or the bound passes; return the last value."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + POLL_LIMIT_S
        while True:
            await self.refresh()
            value = await probe()
            if accept(value) or loop.time() > deadline:
                return value
            await asyncio.sleep(0.2)


async def _no_refresh() -> None:
    return None


@pytest.fixture
def sqlite_under_test(tmp_path: Path) -> IndexUnderTest:
    from shared.adapters.sqlite import store as sqlite_store

    settings = Settings(data_dir=tmp_path / "data")
    return IndexUnderTest("sqlite", lambda: sqlite_store.from_settings(settings), _no_refresh)


@pytest.fixture
async def opensearch_under_test(
    opensearch_url: str,
    opensearch_index_name: str,
    opensearch_knn_engine: Literal["faiss", "lucene"],
    opensearch_client: AsyncOpenSearch,
) -> IndexUnderTest:
    from shared.adapters.opensearch import index as opensearch

    settings = Settings(
        index=IndexSettings(
            backend="opensearch",
            opensearch_url=opensearch_url,
            index_name=opensearch_index_name,
            engine=opensearch_knn_engine,
        )
    )

    async def refresh() -> None:
        # Test side only: the product never refreshes (AOSS forbids it).
        if await opensearch_client.indices.exists(index=opensearch_index_name):
            await opensearch_client.indices.refresh(index=opensearch_index_name)

    return IndexUnderTest("opensearch", lambda: opensearch.from_settings(settings), refresh)


@pytest.fixture
def fake_under_test() -> IndexUnderTest:
    """The fake nine test files use instead of a real index: one in-memory
    index, so every handle "opened" on it sees the same documents."""
    fake = FakeVectorIndex()
    return IndexUnderTest("fake", lambda: fake, _no_refresh)


@pytest.fixture(params=["sqlite", "fake", pytest.param("opensearch", marks=pytest.mark.opensearch)])
def under_test(request: pytest.FixtureRequest) -> IndexUnderTest:
    # Sync on purpose: getfixturevalue of an async fixture needs no running loop.
    subject: IndexUnderTest = request.getfixturevalue(f"{request.param}_under_test")
    return subject


@pytest.fixture
def index(under_test: IndexUnderTest) -> VectorIndex:
    return under_test.new()


# ---- Queue + DeadLetters ---------------------------------------------------
# The embedded queue and SQS on the shared moto server, each with its dead
# letters (the queue's table; the DLQ wired by a redrive policy). Dead letters
# are read back as (body, reason); SQS's own redrive adds no reason (None).

DeadEntry = tuple[str, str | None]


@dataclass
class QueueUnderTest:
    name: str
    queue: Queue
    dead_letters: DeadLetters
    max_receive_count: int
    read_dead: Callable[[], Awaitable[list[DeadEntry]]]


@pytest.fixture
async def sqlite_queue_under_test(tmp_path: Path) -> AsyncIterator[QueueUnderTest]:
    from shared.adapters.sqlite.queue import SqliteDeadLetters, SqliteQueue

    queue = SqliteQueue(tmp_path / "queue.sqlite3", max_receive_count=MAX_RECEIVE_COUNT)

    async def read_dead() -> list[DeadEntry]:
        return [(d.body, d.reason) for d in await queue.dead_letters()]

    yield QueueUnderTest("sqlite", queue, SqliteDeadLetters(queue), MAX_RECEIVE_COUNT, read_dead)
    await queue.close()


@pytest.fixture
async def sqs_queue_under_test(
    sqs_endpoint_url: str, sqs_queue: SqsQueuePair, sqs_client: Any
) -> AsyncIterator[QueueUnderTest]:
    from shared.adapters.aws import sqs

    settings = Settings(
        _env_file=None,
        aws=AwsSettings(region=SQS_REGION, endpoint_url=sqs_endpoint_url),
        queue=QueueSettings(backend="sqs", queue_url=sqs_queue.url, dlq_url=sqs_queue.dlq_url),
    )
    queue = sqs.from_settings(settings)
    dead_letters = sqs.dead_letters_from_settings(settings)

    async def read_dead() -> list[DeadEntry]:
        response = await sqs_client.receive_message(
            QueueUrl=sqs_queue.dlq_url,
            MaxNumberOfMessages=10,
            MessageAttributeNames=["All"],
            WaitTimeSeconds=1,
            VisibilityTimeout=60,  # read each entry once
        )
        return [
            (m["Body"], m.get("MessageAttributes", {}).get("reason", {}).get("StringValue"))
            for m in response.get("Messages", [])
        ]

    yield QueueUnderTest("sqs", queue, dead_letters, sqs_queue.max_receive_count, read_dead)
    await queue.close()
    await dead_letters.close()


@pytest.fixture(params=["sqlite", pytest.param("sqs", marks=pytest.mark.sqs)])
def queue_under_test(request: pytest.FixtureRequest) -> QueueUnderTest:
    subject: QueueUnderTest = request.getfixturevalue(f"{request.param}_queue_under_test")
    return subject


@pytest.fixture
async def fake_dead_letters_under_test(
    sqlite_queue_under_test: QueueUnderTest,
) -> QueueUnderTest:
    """The tests' RecordingDeadLetters, beside a real (embedded) queue."""
    from tests.fakes.dead_letters import RecordingDeadLetters

    fake = RecordingDeadLetters()

    async def read_dead() -> list[DeadEntry]:
        return [(message.body, why.reason) for message, why in fake.sent]

    return QueueUnderTest("fake", sqlite_queue_under_test.queue, fake, MAX_RECEIVE_COUNT, read_dead)


@pytest.fixture(params=["sqlite", pytest.param("sqs", marks=pytest.mark.sqs), "fake"])
def dead_letters_under_test(request: pytest.FixtureRequest) -> QueueUnderTest:
    name = f"{request.param}_dead_letters_under_test"
    if request.param != "fake":
        name = f"{request.param}_queue_under_test"
    subject: QueueUnderTest = request.getfixturevalue(name)
    return subject


# ---- StatusStore -------------------------------------------------------------
# The embedded store, DynamoDB on the shared moto server, and the tests' fake.


@pytest.fixture
async def sqlite_status_under_test(tmp_path: Path) -> AsyncIterator[StatusStore]:
    from shared.adapters.sqlite.status import SqliteStatusStore

    store = SqliteStatusStore(tmp_path / "status.sqlite3")
    yield store
    await store.close()


@pytest.fixture
async def dynamodb_status_under_test(sqs_endpoint_url: str) -> AsyncIterator[StatusStore]:
    from shared.adapters.aws import dynamodb_status
    from tests.indexer.harness import create_status_table

    table = await create_status_table(sqs_endpoint_url)
    settings = Settings(
        _env_file=None,
        aws=AwsSettings(region=SQS_REGION, endpoint_url=sqs_endpoint_url),
        status=StatusSettings(backend="dynamodb", table=table),
    )
    store = dynamodb_status.from_settings(settings)
    yield store
    await store.close()


@pytest.fixture
def fake_status_under_test() -> StatusStore:
    from tests.fakes.status_store import FakeStatusStore

    return FakeStatusStore()


@pytest.fixture(params=["sqlite", pytest.param("dynamodb", marks=pytest.mark.sqs), "fake"])
def status_store(request: pytest.FixtureRequest) -> StatusStore:
    subject: StatusStore = request.getfixturevalue(f"{request.param}_status_under_test")
    return subject


# ---- RequestRegistry + ConversationStore (the query service's state) --------
# In memory (the local server, one Lambda container) and DynamoDB (moto's
# server, in-process), one object each serving both ports, as the Lambda does.


@dataclass
class StateUnderTest:
    name: str
    registry: RequestRegistry
    conversations: ConversationStore


@pytest.fixture
def memory_state_under_test() -> StateUnderTest:
    return StateUnderTest("memory", InMemoryRegistry(), InMemoryConversationStore())


@pytest.fixture
async def dynamodb_state_under_test(
    moto_url: str, state_table: str
) -> AsyncIterator[StateUnderTest]:
    from services.query.state.dynamodb import DynamoDbState

    settings = Settings(
        aws=AwsSettings(region="us-east-1", endpoint_url=moto_url),
        query=QuerySettings(state_table=state_table),
    )
    state = DynamoDbState(settings)
    yield StateUnderTest("dynamodb", state, state)
    await state.close()


@pytest.fixture(params=["memory", "dynamodb"])
def state_under_test(request: pytest.FixtureRequest) -> StateUnderTest:
    subject: StateUnderTest = request.getfixturevalue(f"{request.param}_state_under_test")
    return subject
