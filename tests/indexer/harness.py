"""Wiring for end-to-end indexer tests on the real servers.

The real OpenSearch node, the real SQS-compatible server (moto: SQS, S3 and
DynamoDB on one endpoint) and the product's adapters; only the embedder is the
fast fake (the real one has its own tests and the benchmark).
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from aiobotocore.session import get_session
from opensearchpy import AsyncOpenSearch

from services.indexer.runtime import Runtime
from shared.adapters.aws import dynamodb_status, sqs
from shared.adapters.aws.s3 import S3BlobStore
from shared.adapters.opensearch import index as opensearch
from shared.ports import VectorIndex
from shared.settings import Settings
from tests.fakes.embedder import FakeEmbedder
from tests.indexer.conftest import AOSS_TEST_REFRESH_S, make_pipeline

T = TypeVar("T")
DIM = 16
POLL_LIMIT_S = 20.0
# The AOSS-like node's refresh, declared as a managed index's interval: the
# indexer derives its settle time from it (1.5x), as it does from AWS's 60 s
# for a classic collection (conftest.TIME_SCALE).
INDEX_TIMING = {"collection_kind": "managed", "refresh_s": AOSS_TEST_REFRESH_S}


@dataclass
class Servers:
    opensearch_url: str
    index_name: str
    engine: str
    aws_endpoint: str
    queue_url: str
    dlq_url: str
    table: str

    def settings(self, opensearch_url: str | None = None, **more: Any) -> Settings:
        return Settings(
            _env_file=None,
            aws={"endpoint_url": self.aws_endpoint},
            index={
                "backend": "opensearch",
                "opensearch_url": opensearch_url or self.opensearch_url,
                "index_name": self.index_name,
                "engine": self.engine,
                "request_timeout_s": 5,
                **INDEX_TIMING,
            },
            queue={
                "backend": "sqs",
                "queue_url": self.queue_url,
                "dlq_url": self.dlq_url,
                "wait_seconds": 1,
                "visibility_timeout_s": 30,
            },
            status={"backend": "dynamodb", "table": self.table},
            **more,
        )


async def create_status_table(endpoint: str) -> str:
    table = f"test-{uuid.uuid4().hex[:12]}"
    async with get_session().create_client(
        "dynamodb", endpoint_url=endpoint, region_name="us-east-1"
    ) as client:
        await client.create_table(
            TableName=table,
            KeySchema=[{"AttributeName": "doc_id", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "doc_id", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
    return table


def real_runtime(settings: Settings, index: VectorIndex | None = None) -> Runtime:
    """The product's adapters from settings, with the fake embedder."""
    index = index or opensearch.from_settings(settings)
    status = dynamodb_status.from_settings(settings)
    blobs = S3BlobStore(settings)
    pipeline = make_pipeline(settings, index, status, FakeEmbedder(dimension=DIM), blobs)
    dead_letters = sqs.dead_letters_from_settings(settings)
    runtime = Runtime(settings, pipeline, dead_letters)
    runtime.closers += [index.close, status.close, blobs.close, dead_letters.close]
    return runtime


async def eventually(
    client: AsyncOpenSearch,
    index: str,
    probe: Callable[[], Awaitable[T]],
    accept: Callable[[T], bool],
) -> T:
    """Poll with a bound; the test side may refresh (the product never does)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + POLL_LIMIT_S
    while True:
        if await client.indices.exists(index=index):
            await client.indices.refresh(index=index)
        value = await probe()
        if accept(value) or loop.time() > deadline:
            return value
        await asyncio.sleep(0.2)


async def opensearch_dynamodb_settings(
    opensearch_url: str, index_name: str, engine: str, endpoint: str
) -> Settings:
    """Settings for the indexer on the real OpenSearch node, with its status in
    a new DynamoDB table on the moto server."""
    table = await create_status_table(endpoint)
    return Settings(
        _env_file=None,
        aws={"endpoint_url": endpoint},
        index={
            "backend": "opensearch",
            "opensearch_url": opensearch_url,
            "index_name": index_name,
            "engine": engine,
            **INDEX_TIMING,
        },
        status={"backend": "dynamodb", "table": table},
    )
