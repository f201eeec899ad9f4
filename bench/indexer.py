"""Indexer benchmark: embedder throughput vs end-to-end throughput, and memory over a backlog.

    scripts/test-servers start
    .venv/bin/python -m bench.indexer               # defaults: 400 docs, 10,000-message backlog
    .venv/bin/python -m bench.indexer --docs 100 --backlog 2000   # quicker

Needs the real OpenSearch node and the SQS-compatible server (URLs from
``.servers/`` or ``RAG_TEST_OPENSEARCH_URL`` / ``RAG_TEST_SQS_URL``). Uses the
real all-MiniLM-L6-v2 embedder, the product's OpenSearch, SQS and DynamoDB
adapters and the real poller; each run makes its own queue, index and table.

1. The same corpus of small documents (paragraphs of samples/corpus) is chunked,
   and its chunks are embedded directly in batches: the embedder's own rate,
   the physical limit here.
2. The same documents go through SQS → poller → OpenSearch: end-to-end rate,
   printed as a ratio of (1).
3. A backlog of tiny messages is drained; RSS is sampled at 10 %, 50 % and
   100 % of it (flat means no growth). The queue is kept ~``--standing``
   messages deep while all of them pass through, because moto's SendMessage
   costs O(queue depth); the CPU moto used meanwhile is reported.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from aiobotocore.session import get_session

from services.indexer.batching import BatchingEmbedder
from services.indexer.poller import Poller
from services.indexer.runtime import Runtime, build_pipeline
from shared.adapters import dynamodb_status, opensearch
from shared.adapters.minilm import MiniLMEmbedder
from shared.adapters.sqs import SqsQueue
from shared.adapters.wordpiece import default_token_counter
from shared.chunking import chunk_document, settings_fingerprint
from shared.documents import content_generation
from shared.loaders import load
from shared.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT / "samples" / "corpus"


def server_url(env: str, state_file: str) -> str:
    url = os.environ.get(env) or (ROOT / ".servers" / state_file).read_text().strip()
    return url.rstrip("/")


def rss_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def moto_cpu_s() -> float:
    """CPU seconds used so far by the local moto server (0 if it isn't ours to see):
    shows when the SQS stand-in, not the indexer, is the bottleneck."""
    try:
        pid = (ROOT / ".servers" / "sqs.pid").read_text().strip()
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return 0.0


def corpus_documents(count: int) -> list[str]:
    """Small documents (a few paragraphs, ~1-2 chunks) cut from the sample corpus."""
    paragraphs: list[str] = []
    for path in sorted(CORPUS.rglob("*")):
        if path.suffix in {".md", ".txt", ".html", ".rst"} and path.is_file():
            text = path.read_text(errors="replace")
            paragraphs += [p.strip() for p in text.split("\n\n") if len(p.split()) >= 8]
    docs: list[str] = []
    i = 0
    while len(docs) < count:
        words: list[str] = []
        while len(words) < 120:
            words += paragraphs[i % len(paragraphs)].split()
            i += 1
        docs.append(" ".join(words[:160]))
    return docs


def message(doc_id: str, text: str) -> str:
    body = {"version": 1, "op": "index", "doc_id": doc_id, "text": text}
    return json.dumps(body | {"content_type": "text/plain"})


class Bench:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.run_id = uuid.uuid4().hex[:8]
        self.aws = server_url("RAG_TEST_SQS_URL", "sqs.url")
        engine = os.environ.get("RAG_TEST_KNN_ENGINE")
        engine_file = ROOT / ".servers" / "opensearch.engine"
        if not engine:
            engine = engine_file.read_text().strip() if engine_file.is_file() else "faiss"
        self.base: dict[str, Any] = {
            "aws": {"endpoint_url": self.aws},
            "index": {
                "backend": "opensearch",
                "opensearch_url": server_url("RAG_TEST_OPENSEARCH_URL", "opensearch.url"),
                "engine": engine,
            },
            "queue": {
                "backend": "sqs",
                "wait_seconds": 1,
                "visibility_timeout_s": 120,
                "max_in_flight": args.in_flight,
            },
            "status": {"backend": "dynamodb"},
        }
        self.embedder = MiniLMEmbedder(batch_size=32)
        self.cleanup: list[Callable[[Any], Any]] = []

    async def admin(self, service: str) -> Any:
        return get_session().create_client(service, endpoint_url=self.aws, region_name="us-east-1")

    async def make_target(self, name: str) -> Settings:
        async with await self.admin("sqs") as sqs:
            url = (await sqs.create_queue(QueueName=name))["QueueUrl"]
        async with await self.admin("dynamodb") as ddb:
            await ddb.create_table(
                TableName=name,
                KeySchema=[{"AttributeName": "doc_id", "KeyType": "HASH"}],
                AttributeDefinitions=[{"AttributeName": "doc_id", "AttributeType": "S"}],
                BillingMode="PAY_PER_REQUEST",
            )
        config = json.loads(json.dumps(self.base))
        config["index"]["index_name"] = name
        config["queue"]["queue_url"] = url
        config["status"]["table"] = name
        return Settings(_env_file=None, **config)  # type: ignore[call-arg]

    async def drop_target(self, settings: Settings) -> None:
        async with await self.admin("sqs") as sqs:
            await sqs.delete_queue(QueueUrl=settings.queue.queue_url)
        async with await self.admin("dynamodb") as ddb:
            await ddb.delete_table(TableName=settings.status.table)
        index = opensearch.from_settings(settings)
        client = index._os()
        await client.indices.delete(index=settings.index.index_name)
        await index.close()

    def runtime(self, settings: Settings) -> Runtime:
        index = opensearch.from_settings(settings)
        status = dynamodb_status.from_settings(settings)
        pipeline = build_pipeline(
            settings, index=index, status=status, embedder=BatchingEmbedder(self.embedder, 32)
        )
        runtime = Runtime(settings, pipeline)
        runtime.closers += [index.close, status.close]
        return runtime

    async def send(self, settings: Settings, bodies: list[str], workers: int = 4) -> None:
        """SendMessageBatch (10 a call) from a few concurrent senders."""
        url = settings.queue.queue_url
        batches = iter(range(0, len(bodies), 10))
        async with await self.admin("sqs") as sqs:

            async def sender() -> None:
                for start in batches:
                    entries = [
                        {"Id": str(i), "MessageBody": b}
                        for i, b in enumerate(bodies[start : start + 10])
                    ]
                    await sqs.send_message_batch(QueueUrl=url, Entries=entries)

            await asyncio.gather(*(sender() for _ in range(workers)))

    def chunk_texts(self, docs: list[str]) -> list[str]:
        settings = Settings(_env_file=None)  # type: ignore[call-arg]
        fingerprint = settings_fingerprint(settings.chunking, self.embedder.model_id)
        counter = default_token_counter()
        texts: list[str] = []
        for i, doc in enumerate(docs):
            loaded = load(doc.encode(), "text/plain")
            generation = content_generation(doc.encode(), fingerprint)
            chunks = chunk_document(
                f"d{i}", loaded, generation=generation, settings=settings.chunking, counter=counter
            )
            texts += [c.text for c in chunks]
        return texts

    async def embedder_rate(self, texts: list[str]) -> tuple[float, int]:
        """The embedder's best rate and batch size over a few sizes (bigger is not
        always faster: long-text batches of 32 thrash the caches of a small machine)."""
        return max([(await self.rate_at(texts, size), size) for size in (4, 8, 32)])

    async def rate_at(self, texts: list[str], batch: int) -> float:
        started = time.perf_counter()
        for first in range(0, len(texts), batch):
            await self.embedder.embed_documents(texts[first : first + batch])
        return len(texts) / (time.perf_counter() - started)

    async def drain(
        self, settings: Settings, count: int, on_progress: Callable[[int], None] | None = None
    ) -> tuple[float, int]:
        """Run the poller until ``count`` messages are processed; (seconds, chunks)."""
        runtime = self.runtime(settings)
        queue = SqsQueue(settings.queue.queue_url or "", settings)
        poller = Poller(queue, runtime)
        stop = asyncio.Event()
        await runtime.start()
        started = time.perf_counter()
        task = asyncio.create_task(poller.run(stop))
        seen = 0
        while poller.processed < count and not task.done():
            await asyncio.sleep(0.2)
            if on_progress is not None and poller.processed != seen:
                seen = poller.processed
                on_progress(seen)
        elapsed = time.perf_counter() - started
        stop.set()
        await task
        listed = await runtime.pipeline.status.list(limit=count + 10)
        chunks = sum(s.chunk_count for s in listed)
        await queue.close()
        await runtime.close()
        if poller.processed < count:
            raise RuntimeError(f"only {poller.processed} of {count} messages were processed")
        return elapsed, chunks

    async def throughput(self) -> dict[str, Any]:
        docs = corpus_documents(self.args.docs)
        texts = self.chunk_texts(docs)
        await self.embedder.embed_documents(texts[:32])  # load and warm up
        embed_rate, best_batch = await self.embedder_rate(texts)
        settings = await self.make_target(f"bench-tp-{self.run_id}")
        try:
            await self.send(settings, [message(f"doc-{i}", d) for i, d in enumerate(docs)])
            elapsed, chunks = await self.drain(settings, len(docs))
        finally:
            await self.drop_target(settings)
        e2e_rate = chunks / elapsed
        # Measured again afterwards: on a shared machine the baseline drifts,
        # and the ratio is only meaningful if both ends agree.
        before, after = embed_rate, await self.rate_at(texts, best_batch)
        embed_rate = (before + after) / 2
        return {
            "docs": len(docs),
            "chunks": len(texts),
            "embedder_chunks_per_s": round(embed_rate, 1),
            "embedder_before_after": [round(before, 1), round(after, 1)],
            "embedder_best_batch": best_batch,
            "indexer_chunks_per_s": round(e2e_rate, 1),
            "ratio": round(e2e_rate / embed_rate, 3),
            "in_flight": self.args.in_flight,
        }

    async def backlog(self) -> dict[str, Any]:
        """Drain ``count`` tiny messages; RSS at 10 %, 50 %, 100 % of them.

        moto's SQS does O(queue depth) work per message sent (every send
        recomputes the queue's approximate counts), so filling 10,000 at once
        takes far longer than draining them. With ``--standing N`` the queue is
        pre-filled with N messages and topped up as the poller drains, so the
        poller always faces a backlog of about N while ``count`` pass through;
        ``--standing 0`` pre-fills everything (use that against real SQS).
        """
        count = self.args.backlog
        standing = self.args.standing or count
        settings = await self.make_target(f"bench-mem-{self.run_id}")
        samples: dict[int, float] = {}
        marks = sorted({max(1, count // 10), count // 2, count})
        bodies = [
            message(f"m-{i}", f"Tiny note {i}: the indexer drains a backlog.") for i in range(count)
        ]
        done = [0]
        try:
            moto_cpu, started = moto_cpu_s(), time.perf_counter()
            await self.send(settings, bodies[:standing])
            fill_s, fill_moto = time.perf_counter() - started, moto_cpu_s() - moto_cpu
            print(f"  pre-filled {standing} messages in {fill_s:.1f} s", flush=True)
            start_rss = rss_mib()

            def progress(processed: int) -> None:
                done[0] = processed
                for mark in marks:
                    if processed >= mark and mark not in samples:
                        samples[mark] = rss_mib()
                        print(
                            f"  backlog {processed}/{count}: RSS {samples[mark]:.0f} MiB "
                            f"at {time.perf_counter() - drain_start:.0f} s",
                            flush=True,
                        )

            async def top_up() -> None:
                sent = standing
                while sent < count:
                    want = min(count, done[0] + standing) - sent
                    if want < 10 and sent + want < count:
                        await asyncio.sleep(0.2)
                        continue
                    await self.send(settings, bodies[sent : sent + want], workers=2)
                    sent += want

            moto_cpu, drain_start = moto_cpu_s(), time.perf_counter()
            feeder = asyncio.create_task(top_up())
            elapsed, _ = await self.drain(settings, count, progress)
            await feeder
            drain_moto = moto_cpu_s() - moto_cpu
        finally:
            await self.drop_target(settings)
        first, last = samples[marks[0]], samples[marks[-1]]
        return {
            "messages": count,
            "standing_backlog": standing,
            "prefill_seconds": round(fill_s, 1),
            "prefill_moto_cpu_s": round(fill_moto, 1),
            "seconds": round(elapsed, 1),
            "messages_per_s": round(count / elapsed, 1),
            "moto_cpu_s_during_drain": round(drain_moto, 1),
            "rss_before_mib": round(start_rss, 1),
            "rss_at_mib": {str(k): round(v, 1) for k, v in sorted(samples.items())},
            "growth_first_to_last_mib": round(last - first, 1),
        }


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--docs", type=int, default=400, help="documents for the throughput run")
    parser.add_argument("--backlog", type=int, default=10_000, help="messages for the memory run")
    parser.add_argument(
        "--standing",
        type=int,
        default=500,
        help="messages kept queued ahead of the poller during the backlog (0: pre-fill all)",
    )
    parser.add_argument("--in-flight", type=int, default=32, help="poller max_in_flight")
    args = parser.parse_args()
    # The local servers accept any credentials; real ones are never needed here.
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "bench")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "bench")
    bench = Bench(args)
    print(f"cores: {os.cpu_count()}, load average: {os.getloadavg()[0]:.1f}")
    result = {"throughput": await bench.throughput()}
    tp = result["throughput"]
    print(
        f"embedder alone: {tp['embedder_chunks_per_s']} chunks/s; "
        f"indexer end to end (SQS → OpenSearch): {tp['indexer_chunks_per_s']} chunks/s "
        f"= {tp['ratio']:.0%} of the embedder ({tp['chunks']} chunks, {tp['docs']} messages)",
        flush=True,
    )
    if args.backlog:
        result["backlog"] = await bench.backlog()
        bl = result["backlog"]
        print(
            f"backlog of {bl['messages']} messages (~{bl['standing_backlog']} kept queued) "
            f"in {bl['seconds']} s = {bl['messages_per_s']} msg/s (moto used "
            f"{bl['moto_cpu_s_during_drain']} CPU-s of it); RSS by progress "
            f"{bl['rss_at_mib']} MiB; growth {bl['growth_first_to_last_mib']} MiB",
        )
    print(f"load average at end: {os.getloadavg()[0]:.1f}")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    asyncio.run(main())
