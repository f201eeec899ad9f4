"""Version-conditional writes and leases of the status stores, on the real ones:
SQLite (embedded) and DynamoDB (the moto server). The fake follows the same rules."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from aiobotocore.session import get_session

from shared.adapters.aws.dynamodb_status import DynamoDbStatusStore
from shared.adapters.sqlite.status import SqliteStatusStore
from shared.documents import DocState, DocumentStatus, is_stale
from shared.errors import LeaseLost, StaleVersion
from shared.ports import StatusStore
from shared.settings import Settings
from tests.fakes.status_store import FakeStatusStore
from tests.waiting import wait_until


# DynamoDB runs on the moto server of scripts/test-servers (the "sqs" one), reached
# through getfixturevalue, which the automatic marking cannot see: marked here.
@pytest.fixture(params=["sqlite", pytest.param("dynamodb", marks=pytest.mark.sqs), "fake"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[StatusStore]:
    if request.param == "fake":
        yield FakeStatusStore()
    elif request.param == "sqlite":
        sqlite = SqliteStatusStore(tmp_path / "rag.sqlite3")
        yield sqlite
        await sqlite.close()
    else:
        endpoint = request.getfixturevalue("sqs_endpoint_url")
        table = f"test-{uuid.uuid4().hex[:12]}"
        async with get_session().create_client(
            "dynamodb",
            endpoint_url=endpoint,
            region_name="us-east-1",
            aws_access_key_id="test",
            aws_secret_access_key="test",
        ) as client:
            await client.create_table(
                TableName=table,
                KeySchema=[{"AttributeName": "doc_id", "KeyType": "HASH"}],
                AttributeDefinitions=[{"AttributeName": "doc_id", "AttributeType": "S"}],
                BillingMode="PAY_PER_REQUEST",
            )
            settings = Settings(_env_file=None, aws={"endpoint_url": endpoint})
            dynamo = DynamoDbStatusStore(table, settings)
            yield dynamo
            await dynamo.close()
            await client.delete_table(TableName=table)


def record(version: int | None, state: DocState = DocState.INDEXED, **more: Any) -> DocumentStatus:
    return DocumentStatus(doc_id="doc", state=state, doc_version=version, **more)


async def test_a_newer_version_replaces_an_older_one_and_never_the_reverse(
    store: StatusStore,
) -> None:
    await store.put(record(5, generation="g5"))
    await store.put(record(5, generation="g5", chunk_count=3))  # same version: progress
    await store.put(record(7, generation="g7"))
    with pytest.raises(StaleVersion):
        await store.put(record(6, generation="g6"))
    got = await store.get("doc")
    assert got is not None and (got.doc_version, got.generation) == (7, "g7")


async def test_an_unversioned_write_always_applies(store: StatusStore) -> None:
    await store.put(record(7, generation="g7"))
    await store.put(record(None, state=DocState.FAILED, reason="why"))
    got = await store.get("doc")
    assert got is not None and got.state is DocState.FAILED


async def test_an_expired_tombstone_no_longer_blocks_older_versions(store: StatusStore) -> None:
    past = datetime.now(UTC) - timedelta(seconds=5)
    await store.put(record(9, state=DocState.DELETED, expires_at=past))
    await store.put(record(3, generation="g3"))
    got = await store.get("doc")
    assert got is not None and got.doc_version == 3


async def test_records_round_trip_with_the_consistency_fields(store: StatusStore) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    written = record(
        4,
        generation="g4",
        chunk_count=2,
        writing="g5",
        settled_at=now,
        cleanup_pending=True,
        expires_at=now + timedelta(days=1),
        source_message="eJwLAQAAVgBW",
        updated_at=now,
    )
    await store.put(written)
    assert await store.get("doc") == written


async def test_a_lease_has_one_owner_until_released_or_expired(store: StatusStore) -> None:
    assert await store.acquire_lease("doc", "a", 30)
    assert not await store.acquire_lease("doc", "b", 30)
    assert await store.acquire_lease("doc", "a", 30)  # renewal
    assert await store.acquire_lease("other", "b", 30)  # per document
    await store.release_lease("doc", "b")  # not b's: no effect
    assert not await store.acquire_lease("doc", "b", 30)
    await store.release_lease("doc", "a")
    assert await store.acquire_lease("doc", "b", 0.2)
    # b's lease runs out: a gets the document (a refused try takes nothing)
    await wait_until(lambda: store.acquire_lease("doc", "a", 30), "b's lease to run out")


async def test_a_lease_is_renewed_only_by_its_holder_never_taken_back(
    store: StatusStore,
) -> None:
    assert await store.acquire_lease("doc", "a", 0.2)
    assert await store.renew_lease("doc", "a", 0.2)
    await asyncio.sleep(0.4)  # let it expire unseen: no probe can show that without taking it
    assert await store.renew_lease("doc", "a", 30)  # expired, but nobody took it: still a's
    await store.release_lease("doc", "a")
    assert await store.acquire_lease("doc", "b", 0.2)
    assert not await store.renew_lease("doc", "a", 30)  # b's now
    await store.release_lease("doc", "b")
    assert not await store.renew_lease("doc", "a", 30)  # released by b: not a's again


async def test_a_fenced_write_needs_the_lease_it_names(store: StatusStore) -> None:
    # GIVEN worker a holds the lease and writes under it
    assert await store.acquire_lease("doc", "a", 0.2)
    await store.put(record(None, generation="g-a"), fence="a")
    # WHEN a's lease runs out and b takes the document and writes
    await wait_until(lambda: store.acquire_lease("doc", "b", 30), "a's lease to run out")
    await store.put(record(None, generation="g-b"), fence="b")
    # THEN a's later write (newer updated_at) is refused, and b's record stands
    with pytest.raises(LeaseLost):
        await store.put(record(None, generation="g-a2"), fence="a")
    await store.release_lease("doc", "b")
    with pytest.raises(LeaseLost):  # nor once b has released it
        await store.put(record(None, generation="g-a3"), fence="a")
    stored = await store.get("doc")
    assert stored is not None and stored.generation == "g-b"


async def test_a_fenced_write_keeps_the_version_rule(store: StatusStore) -> None:
    assert await store.acquire_lease("doc", "a", 30)
    await store.put(record(5), fence="a")
    with pytest.raises(StaleVersion):
        await store.put(record(4), fence="a")


async def test_leases_are_not_listed_as_documents(store: StatusStore) -> None:
    await store.put(record(None))
    assert await store.acquire_lease("doc", "a", 30)
    assert await store.acquire_lease("leased-only", "a", 30)
    assert [s.doc_id for s in await store.list()] == ["doc"]


def test_staleness_rules() -> None:
    now = datetime.now(UTC)
    indexed = record(5)
    tombstone = record(5, state=DocState.DELETED, expires_at=now + timedelta(days=1))
    expired = record(5, state=DocState.DELETED, expires_at=now - timedelta(seconds=1))
    assert is_stale(indexed, 4, delete=False, now=now)
    assert not is_stale(indexed, 5, delete=False, now=now)  # a redelivery of the same update
    assert not is_stale(indexed, None, delete=False, now=now)  # unversioned: later wins
    assert not is_stale(indexed, 5, delete=True, now=now)
    assert is_stale(tombstone, 5, delete=False, now=now)  # deleted at 5: 5 stays deleted
    assert not is_stale(tombstone, 6, delete=False, now=now)
    assert not is_stale(expired, 1, delete=False, now=now)
    assert not is_stale(None, 1, delete=False, now=now)
