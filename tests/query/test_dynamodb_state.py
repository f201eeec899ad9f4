"""DynamoDbState on a real DynamoDB API (moto server): the registry rules and
conversation history that the Lambda's invocations share."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from services.query.answer.prompts import Turn
from services.query.state import dynamodb as dynamodb_state
from services.query.state.dynamodb import DynamoDbState
from shared.protocol import ErrorCode
from shared.settings import AwsSettings, QuerySettings, Settings


@pytest.fixture
async def state(moto_url: str, state_table: str) -> AsyncIterator[DynamoDbState]:
    settings = Settings(
        aws=AwsSettings(region="us-east-1", endpoint_url=moto_url),
        query=QuerySettings(state_table=state_table),
    )
    store = DynamoDbState(settings)
    yield store
    await store.close()


async def test_limit_duplicates_and_finish(state: DynamoDbState) -> None:
    assert await state.start("c", "r1", max_running=2) is None
    assert await state.start("c", "r1", max_running=2) == ErrorCode.DUPLICATE_REQUEST
    assert await state.start("c", "r2", max_running=2) is None
    assert await state.start("c", "r3", max_running=2) == ErrorCode.TOO_MANY_REQUESTS
    assert await state.start("other", "r3", max_running=2) is None  # per connection
    await state.finish("c", "r1")
    assert await state.start("c", "r3", max_running=2) is None


async def test_cancel_flags_only_running_requests(state: DynamoDbState) -> None:
    assert await state.cancel("c", "ghost") is False
    await state.start("c", "r1", max_running=2)
    assert await state.should_stop("c", "r1") is False
    assert await state.cancel("c", "r1") is True
    assert await state.should_stop("c", "r1") is True
    await state.finish("c", "r1")
    await state.start("c", "r1", max_running=2)  # a reused id starts uncancelled
    assert await state.should_stop("c", "r1") is False


async def test_disconnect_stops_every_request_of_the_connection(state: DynamoDbState) -> None:
    await state.start("c", "r1", max_running=2)
    await state.start("d", "r1", max_running=2)
    await state.disconnect("c")
    assert await state.should_stop("c", "r1") is True
    assert await state.should_stop("d", "r1") is False


async def test_expired_entries_of_crashed_workers_stop_counting(
    state: DynamoDbState, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(dynamodb_state, "REQUEST_TTL_S", -1)  # written already expired
    assert await state.start("c", "crashed", max_running=1) is None
    monkeypatch.setattr(dynamodb_state, "REQUEST_TTL_S", 960)
    assert await state.start("c", "fresh", max_running=1) is None
    assert await state.start("c", "third", max_running=1) == ErrorCode.TOO_MANY_REQUESTS


async def test_conversation_keeps_the_last_turns(state: DynamoDbState) -> None:
    assert await state.history("conv") == []
    for i in range(4):
        await state.append("conv", Turn(f"q{i} ü", f"a{i}"), keep_turns=3)
    assert await state.history("conv") == [
        Turn("q1 ü", "a1"),
        Turn("q2 ü", "a2"),
        Turn("q3 ü", "a3"),
    ]


async def test_a_worker_job_is_claimed_once(state: DynamoDbState) -> None:
    # A replayed asynchronous event carries the same job id: only the first claim wins.
    assert await state.claim_job("job-1") is True
    assert await state.claim_job("job-1") is False
    assert await state.claim_job("job-2") is True
