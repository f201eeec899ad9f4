"""Two pollers on one queue, back-to-back updates of the same documents (real
OpenSearch node, moto SQS and DynamoDB): every document ends with exactly one
generation, the newest content, and the chunk count of a clean ingest."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from opensearchpy import AsyncOpenSearch

from services.indexer.poller import Poller
from services.indexer.runtime import Runtime
from shared.adapters.aws.sqs import SqsQueue
from tests.indexer.events import index_body, paragraphs
from tests.indexer.harness import Servers, create_status_table, real_runtime
from tests.indexer.scenarios import clean_ingest, index_contents, violations, winners
from tests.servers import unique_name

pytestmark = [pytest.mark.opensearch, pytest.mark.sqs, pytest.mark.slow]
DOCS = 10
VERSIONS = 3
LIMIT_S = 120.0


@pytest.fixture
async def servers(
    opensearch_url: str,
    opensearch_index_name: str,
    opensearch_knn_engine: str,
    sqs_endpoint_url: str,
    sqs_client: Any,
) -> AsyncIterator[Servers]:
    # No redrive: a busy document must come back, however often.
    name = unique_name("race")
    url = (await sqs_client.create_queue(QueueName=name))["QueueUrl"]
    dlq = (await sqs_client.create_queue(QueueName=f"{name}-dlq"))["QueueUrl"]
    table = await create_status_table(sqs_endpoint_url)
    yield Servers(
        opensearch_url,
        opensearch_index_name,
        opensearch_knn_engine,
        sqs_endpoint_url,
        url,
        dlq,
        table,
    )
    await sqs_client.delete_queue(QueueUrl=url)
    await sqs_client.delete_queue(QueueUrl=dlq)


def updates(versioned: bool) -> list[str]:
    """v1, v2, v3 of every document, sent back to back (v2 is the longest)."""
    sizes = {1: 3, 2: 5, 3: 2}
    return [
        index_body(
            f"doc{d}",
            paragraphs(f"d{d}v{v}", sizes[v]),
            **({"doc_version": v} if versioned else {}),
        )
        for v in range(1, VERSIONS + 1)
        for d in range(DOCS)
    ]


async def run_two_pollers(servers: Servers, total: int) -> list[Poller]:
    runtimes: list[Runtime] = []
    queues: list[SqsQueue] = []
    pollers: list[Poller] = []
    settings = servers.settings(indexer={"busy_retry_s": 1.0, "lease_s": 20})
    for _ in range(2):
        runtime = real_runtime(settings)
        queue = SqsQueue(servers.queue_url, settings)
        runtimes.append(runtime)
        queues.append(queue)
        pollers.append(Poller(queue, runtime, shutdown_grace_s=5))
    stop = asyncio.Event()
    tasks = [asyncio.create_task(p.run(stop)) for p in pollers]
    loop = asyncio.get_running_loop()
    deadline = loop.time() + LIMIT_S
    while sum(p.processed for p in pollers) < total and loop.time() < deadline:  # noqa: ASYNC110
        await asyncio.sleep(0.2)
    stop.set()
    await asyncio.gather(*tasks)
    for runtime, queue in zip(runtimes, queues, strict=True):
        await runtime.close()
        await queue.close()
    return pollers


@pytest.mark.parametrize("versioned", [True, False], ids=["versioned", "unversioned"])
async def test_two_pollers_leave_one_clean_generation_per_document(
    servers: Servers,
    sqs_client: Any,
    opensearch_client: AsyncOpenSearch,
    versioned: bool,
) -> None:
    # GIVEN v1, v2, v3 of ten documents on one queue, sent back to back
    bodies = updates(versioned)
    for body in bodies:
        await sqs_client.send_message(QueueUrl=servers.queue_url, MessageBody=body)
    # WHEN two pollers consume it at once
    pollers = await run_two_pollers(servers, len(bodies))
    assert sum(p.processed for p in pollers) == len(bodies)
    # THEN each document holds exactly what a clean ingest of its winner holds
    if versioned:
        expected = await clean_ingest(servers.settings(), winners(bodies))
    else:
        # Unordered delivery, no versions: whichever was processed last wins,
        # which the status record names; the index must match it exactly.
        status = real_runtime(servers.settings())
        chosen = {}
        for d in range(DOCS):
            record = await status.pipeline.status.get(f"doc{d}")
            assert record is not None
            chosen[f"doc{d}"] = next(
                b for b in bodies if f'"doc{d}"' in b and _generation_matches(b, record.generation)
            )
        await status.close()
        expected = await clean_ingest(servers.settings(), chosen)
    actual = await index_contents(opensearch_client, servers.index_name)
    found = violations(expected, actual)
    assert found == [], f"{len(found)} of {DOCS} documents differ from a clean ingest"


def _generation_matches(body: str, generation: str | None) -> bool:
    from services.indexer.pipeline import generation_of
    from shared.chunking import settings_fingerprint
    from shared.ingest import IndexOperation, parse_ingest_message
    from shared.settings import Settings

    op = parse_ingest_message(body)
    assert isinstance(op, IndexOperation)
    settings = Settings(_env_file=None)
    fingerprint = settings_fingerprint(settings.chunking, "fake/hash-embedder")
    return generation_of(op, op.inline_bytes() or b"", fingerprint) == generation
