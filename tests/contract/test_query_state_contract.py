"""The query service's state, one contract over every adapter: RequestRegistry
(running requests, cancel flags, departed connections, callers, worker claims)
and ConversationStore (the last turns), in memory and on DynamoDB (moto's
server). The Lambda's invocations share the DynamoDB one; the local server and
a single container use the in-memory ones, so both must answer alike."""

from __future__ import annotations

import pytest

from services.query.answer.prompts import Turn
from services.query.state import dynamodb as dynamodb_state
from services.query.state.dynamodb import DynamoDbState
from shared.access import Principal
from shared.protocol import ErrorCode
from tests.contract.conftest import StateUnderTest


async def test_limit_duplicates_and_finish(state_under_test: StateUnderTest) -> None:
    state = state_under_test.registry
    assert await state.start("c", "r1", max_running=2) is None
    assert await state.start("c", "r1", max_running=2) == ErrorCode.DUPLICATE_REQUEST
    assert await state.start("c", "r2", max_running=2) is None
    assert await state.start("c", "r3", max_running=2) == ErrorCode.TOO_MANY_REQUESTS
    assert await state.start("other", "r3", max_running=2) is None  # per connection
    await state.finish("c", "r1")
    assert await state.start("c", "r3", max_running=2) is None


async def test_cancel_flags_only_running_requests(state_under_test: StateUnderTest) -> None:
    state = state_under_test.registry
    assert await state.cancel("c", "ghost") is False
    await state.start("c", "r1", max_running=2)
    assert await state.should_stop("c", "r1") is False
    assert await state.cancel("c", "r1") is True
    assert await state.should_stop("c", "r1") is True
    await state.finish("c", "r1")
    await state.start("c", "r1", max_running=2)  # a reused id starts uncancelled
    assert await state.should_stop("c", "r1") is False


async def test_disconnect_stops_every_request_of_the_connection(
    state_under_test: StateUnderTest,
) -> None:
    state = state_under_test.registry
    await state.start("c", "r1", max_running=2)
    await state.start("d", "r1", max_running=2)
    await state.disconnect("c")
    assert await state.should_stop("c", "r1") is True
    assert await state.should_stop("d", "r1") is False


async def test_the_caller_is_remembered_until_the_connection_leaves(
    state_under_test: StateUnderTest,
) -> None:
    state = state_under_test.registry
    assert await state.identity("c") is None
    hannah = Principal("hannah", frozenset({"hr"}))
    await state.remember("c", hannah)
    assert await state.identity("c") == hannah
    assert await state.identity("d") is None
    await state.disconnect("c")
    assert await state.identity("c") is None


async def test_a_worker_job_is_claimed_once(state_under_test: StateUnderTest) -> None:
    # A replayed asynchronous event carries the same job id: only the first claim wins.
    state = state_under_test.registry
    assert await state.claim_job("job-1") is True
    assert await state.claim_job("job-1") is False
    assert await state.claim_job("job-2") is True


async def test_conversation_keeps_the_last_turns(state_under_test: StateUnderTest) -> None:
    store = state_under_test.conversations
    assert await store.history("conv") == []
    for i in range(4):
        await store.append("conv", Turn(f"q{i} ü", f"a{i}"), keep_turns=3)
    assert await store.history("conv") == [
        Turn("q1 ü", "a1"),
        Turn("q2 ü", "a2"),
        Turn("q3 ü", "a3"),
    ]
    assert await store.history("other") == []


# ---- DynamoDB only ---------------------------------------------------------------


async def test_expired_entries_of_crashed_workers_stop_counting(
    dynamodb_state_under_test: StateUnderTest, monkeypatch: pytest.MonkeyPatch
) -> None:
    state = dynamodb_state_under_test.registry
    assert isinstance(state, DynamoDbState)
    monkeypatch.setattr(dynamodb_state, "REQUEST_TTL_S", -1)  # written already expired
    assert await state.start("c", "crashed", max_running=1) is None
    monkeypatch.setattr(dynamodb_state, "REQUEST_TTL_S", 960)
    assert await state.start("c", "fresh", max_running=1) is None
    assert await state.start("c", "third", max_running=1) == ErrorCode.TOO_MANY_REQUESTS
