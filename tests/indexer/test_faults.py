"""Crash faults: pollers (real subprocesses) SIGKILLed at random points, over many
rounds, on the real OpenSearch node and the moto SQS/S3/DynamoDB server.

Each round sends versioned updates and deletes of the same documents in a
shuffled order, duplicates some, and (in two rounds) adds one of each kind
of poison message. Two pollers consume the queue; each kills itself at random
at the points ``tests.indexer.crashing_poller`` names, and the test also kills
one from outside at random moments. Dead pollers are restarted until the
queue is empty. Then, every round:

- the index equals a clean ingest of every message sent so far (per
  document: one generation, the right chunk count, the right content);
- and at the end the dead-letter queue holds exactly the poison messages,
  each with its reason and error code.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from aiobotocore.session import get_session
from opensearchpy import AsyncOpenSearch

from shared.adapters.aws.s3 import S3BlobStore
from shared.settings import Settings
from tests.indexer.conftest import AOSS_TEST_REFRESH_S
from tests.indexer.events import index_body, paragraphs, s3_body
from tests.indexer.harness import create_status_table
from tests.indexer.scenarios import clean_ingest, index_contents, violations, winners
from tests.servers import unique_name

pytestmark = [pytest.mark.opensearch, pytest.mark.sqs, pytest.mark.slow]

ROUNDS = 6
DOCS = 6
POLLERS = 2
CRASH_P = 0.03  # per crash point passed
EXTERNAL_KILL_P = 0.03  # per poll of the orchestrator (every 0.5 s), of a started poller
MAX_DOCUMENT_BYTES = 6000
# Generous: restarting a process is slow on a loaded machine (a round takes ~10-25 s).
ROUND_LIMIT_S = 150.0
REPO = Path(__file__).resolve().parents[2]


@dataclass
class Tally:
    crashes: Counter[str] = field(default_factory=Counter)
    external_kills: int = 0
    starts: int = 0
    messages: int = 0
    violations: list[int] = field(default_factory=list)


@dataclass
class Setup:
    env: dict[str, str]
    queue_url: str
    dlq_url: str
    index: str
    bucket: str
    settings: Settings


@pytest.fixture
async def setup(
    opensearch_url: str,
    opensearch_index_name: str,
    opensearch_knn_engine: str,
    sqs_endpoint_url: str,
    sqs_client: Any,
) -> AsyncIterator[Setup]:
    name = unique_name("faults")
    dlq = (await sqs_client.create_queue(QueueName=f"{name}-dlq"))["QueueUrl"]
    arn = (await sqs_client.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"]))[
        "Attributes"
    ]["QueueArn"]
    # A redrive policy as deployed: what the indexer retries must never end up there.
    policy = {"deadLetterTargetArn": arn, "maxReceiveCount": "10"}
    url = (
        await sqs_client.create_queue(
            QueueName=name, Attributes={"RedrivePolicy": json.dumps(policy)}
        )
    )["QueueUrl"]
    table = await create_status_table(sqs_endpoint_url)
    bucket = name
    env = {
        "RAG_AWS__ENDPOINT_URL": sqs_endpoint_url,
        "RAG_INDEX__BACKEND": "opensearch",
        "RAG_INDEX__OPENSEARCH_URL": opensearch_url,
        "RAG_INDEX__INDEX_NAME": opensearch_index_name,
        "RAG_INDEX__ENGINE": opensearch_knn_engine,
        "RAG_QUEUE__BACKEND": "sqs",
        "RAG_QUEUE__QUEUE_URL": url,
        "RAG_QUEUE__DLQ_URL": dlq,
        "RAG_QUEUE__WAIT_SECONDS": "1",
        "RAG_QUEUE__VISIBILITY_TIMEOUT_S": "5",
        "RAG_QUEUE__MAX_IN_FLIGHT": "4",
        "RAG_STATUS__BACKEND": "dynamodb",
        "RAG_STATUS__TABLE": table,
        "RAG_INGEST__MAX_DOCUMENT_BYTES": str(MAX_DOCUMENT_BYTES),
        # The AOSS-like node's refresh (classic's, scaled): settle is derived from it.
        "RAG_INDEX__COLLECTION_KIND": "managed",
        "RAG_INDEX__REFRESH_S": str(AOSS_TEST_REFRESH_S),
        "RAG_INDEXER__LEASE_S": "4",
        "RAG_INDEXER__BUSY_RETRY_S": "0.5",
        "RAG_LOG_LEVEL": "INFO",
    }
    async with get_session().create_client(
        "s3", endpoint_url=sqs_endpoint_url, region_name="us-east-1"
    ) as s3:
        await s3.create_bucket(Bucket=bucket)
        await s3.put_object(Bucket=bucket, Key="big.txt", Body=b"x" * (MAX_DOCUMENT_BYTES + 1))
        await s3.put_object(Bucket=bucket, Key="ok.md", Body=b"# From S3\n\nA small document.")
    settings = Settings(_env_file=None, ingest={"max_document_bytes": MAX_DOCUMENT_BYTES})
    yield Setup(env, url, dlq, opensearch_index_name, bucket, settings)
    await sqs_client.delete_queue(QueueUrl=url)
    await sqs_client.delete_queue(QueueUrl=dlq)


def poison_messages(bucket: str, tag: str) -> list[str]:
    return [
        "{not json " + tag,
        json.dumps({"version": 2, "op": "index", "doc_id": f"p-version-{tag}", "text": "x"}),
        index_body(f"p-big-{tag}", "y" * (MAX_DOCUMENT_BYTES + 1)),
        s3_body(f"p-s3-big-{tag}", bucket, "big.txt"),
        s3_body(f"p-s3-gone-{tag}", bucket, f"gone-{tag}.txt"),
        index_body(f"p-png-{tag}", "not an image", content_type="image/png"),
    ]


def round_messages(rng: random.Random, round_no: int, bucket: str) -> list[str]:
    """Versioned updates and deletes of the same documents, shuffled, some twice."""
    bodies: list[str] = []
    for d in range(DOCS):
        doc = f"doc{d}"
        for k in range(rng.randint(1, 3)):
            version = round_no * 10 + k
            if rng.random() < 0.15:
                bodies.append(
                    json.dumps(
                        {"version": 1, "op": "delete", "doc_id": doc, "doc_version": version}
                    )
                )
            else:
                size = rng.randint(1, 4)
                bodies.append(
                    index_body(doc, paragraphs(f"r{round_no}{doc}v{k}", size), doc_version=version)
                )
        if rng.random() < 0.3:
            bodies.append(bodies[-1])  # a duplicate send
    if round_no == 1:
        bodies.append(s3_body("doc-s3", bucket, "ok.md", doc_version=1))
    rng.shuffle(bodies)
    return bodies


class Pollers:
    def __init__(self, env: dict[str, str], logs: Path, tally: Tally) -> None:
        # Unbuffered: a SIGKILLed process must not take its last log lines with it.
        self._env = {
            **os.environ,
            **env,
            "RAG_TEST_CRASH_P": str(CRASH_P),
            "PYTHONUNBUFFERED": "1",
        }
        self._logs = logs
        self._tally = tally
        self.procs: list[subprocess.Popen[bytes] | None] = [None] * POLLERS
        self.log_of: dict[int, Path] = {}

    def keep_alive(self) -> None:
        for i, proc in enumerate(self.procs):
            if proc is not None and proc.poll() is None:
                continue
            self._tally.starts += 1
            log = self._logs / f"poller-{self._tally.starts}.log"
            with log.open("wb") as out:
                proc = subprocess.Popen(
                    [sys.executable, "-m", "tests.indexer.crashing_poller"],
                    cwd=REPO,
                    env=self._env,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                )
            self.procs[i] = proc
            self.log_of[proc.pid] = log

    def _working(self, proc: subprocess.Popen[bytes]) -> bool:
        return proc.poll() is None and b"READY" in self.log_of[proc.pid].read_bytes()

    def kill_one(self, rng: random.Random) -> None:
        """SIGKILL a poller that is up and consuming, at a random moment (only while
        all are: one always keeps working, as in a deployment that restarts
        what dies)."""
        alive = [p for p in self.procs if p is not None and self._working(p)]
        if len(alive) == POLLERS:
            rng.choice(alive).send_signal(signal.SIGKILL)
            self._tally.external_kills += 1

    def stop(self) -> None:
        for proc in self.procs:
            if proc is not None and proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self.procs:
            if proc is not None:
                try:
                    proc.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()

    def count_crashes(self) -> None:
        for log in self._logs.glob("poller-*.log"):
            for line in log.read_text(errors="replace").splitlines():
                if line.startswith("CRASH "):
                    self._tally.crashes[line.split()[1]] += 1


async def queue_empty(sqs: Any, url: str) -> bool:
    attrs = (
        await sqs.get_queue_attributes(
            QueueUrl=url,
            AttributeNames=[
                "ApproximateNumberOfMessages",
                "ApproximateNumberOfMessagesNotVisible",
                "ApproximateNumberOfMessagesDelayed",
            ],
        )
    )["Attributes"]
    return sum(int(v) for v in attrs.values()) == 0


async def drain_dlq(sqs: Any, url: str) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    while True:
        response = await sqs.receive_message(
            QueueUrl=url,
            MaxNumberOfMessages=10,
            MessageAttributeNames=["All"],
            VisibilityTimeout=300,
            WaitTimeSeconds=1,
        )
        batch = response.get("Messages", [])
        if not batch:
            return found
        found.extend(batch)


async def test_sigkilled_pollers_converge_on_a_clean_ingest(
    setup: Setup, sqs_client: Any, opensearch_client: AsyncOpenSearch, tmp_path: Path
) -> None:
    seed = int(os.environ.get("RAG_TEST_FAULT_SEED", str(time.time_ns() % 1_000_000)))
    rng = random.Random(seed)
    tally = Tally()
    pollers = Pollers(setup.env, tmp_path, tally)
    sent: list[str] = []
    poison: list[str] = []
    started = time.monotonic()
    loop = asyncio.get_running_loop()
    blobs = S3BlobStore(
        Settings(_env_file=None, aws={"endpoint_url": setup.env["RAG_AWS__ENDPOINT_URL"]})
    )
    try:
        for round_no in range(ROUNDS):
            bodies = round_messages(rng, round_no, setup.bucket)
            if round_no in (0, ROUNDS - 2):
                extra = poison_messages(setup.bucket, f"r{round_no}")
                poison += extra
                bodies += extra
                rng.shuffle(bodies)
            for body in bodies:
                await sqs_client.send_message(QueueUrl=setup.queue_url, MessageBody=body)
            sent += bodies
            tally.messages += len(bodies)
            deadline = loop.time() + ROUND_LIMIT_S
            while loop.time() < deadline:
                pollers.keep_alive()
                await asyncio.sleep(0.5)
                if rng.random() < EXTERNAL_KILL_P:
                    pollers.kill_one(rng)
                if await queue_empty(sqs_client, setup.queue_url):
                    break
            assert await queue_empty(sqs_client, setup.queue_url), (
                f"round {round_no} (seed {seed}) not drained in {ROUND_LIMIT_S} s; logs: {tmp_path}"
            )
            expected = await clean_ingest(setup.settings, winners(sent), blobs)
            found = violations(expected, await index_contents(opensearch_client, setup.index))
            tally.violations.append(len(found))
            assert found == [], f"round {round_no} (seed {seed}): {found}"
    finally:
        pollers.stop()
        pollers.count_crashes()
        await blobs.close()
    dead = await drain_dlq(sqs_client, setup.dlq_url)
    dead_bodies = Counter(m["Body"] for m in dead)
    summary = (
        f"seed {seed}: {ROUNDS} rounds, {DOCS} documents (+ S3 doc), {tally.messages} messages, "
        f"{tally.starts} poller starts, crashes {dict(tally.crashes)}, "
        f"external kills {tally.external_kills}, violations per round {tally.violations}, "
        f"DLQ {len(dead)} ({len(dead_bodies)} distinct) for {len(poison)} poison, "
        f"{time.monotonic() - started:.0f} s"
    )
    print(summary)
    assert set(dead_bodies) == set(poison), summary
    for message in dead:
        attributes = message["MessageAttributes"]
        assert attributes["reason"]["StringValue"] and attributes["error_code"]["StringValue"]
    # Sent to the DLQ once each, unless a kill fell between the DLQ send and the delete.
    assert len(dead) - len(dead_bodies) <= tally.external_kills + sum(tally.crashes.values()), (
        summary
    )
