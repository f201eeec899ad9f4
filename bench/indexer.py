"""Indexer benchmark: end-to-end chunks/s beside the embedder alone, the per-chunk
cost of the chunking defaults beside the previous ones, and memory over a backlog.

    .venv/bin/python -m bench.indexer                         # the documented run (a few minutes)
    .venv/bin/python -m bench.indexer --backend embedded      # no servers needed
    .venv/bin/python -m bench.indexer --corpus samples        # whole documents instead of notes
    .venv/bin/python -m bench.indexer --backlog 10000         # add the memory run (~9 min)

``--backend servers`` (in ``both``, the default) needs the real OpenSearch node
and the SQS-compatible server (URLs from ``$RAG_SERVERS_DIR`` or ``.servers/``,
or ``RAG_TEST_OPENSEARCH_URL`` / ``RAG_TEST_SQS_URL``); each run makes its own
queue, index and table. Uses the real all-MiniLM-L6-v2 embedder with the
product's settings (``--threads`` overrides its BLAS threads) and the real poller.

1. **Throughput.** One corpus (``--corpus notes``: small titled messages of
   ~3 chunks cut from samples/corpus, the case where per-message costs weigh
   most; ``samples``: the 29 whole documents of samples/corpus, HTML, Markdown,
   PDF and text) is chunked as the indexer does, and the exact texts the
   indexer embeds (context header included) are embedded directly: the
   embedder's own rate, best over batch sizes 8 and 32. Then, per backend, the
   same documents go queue → poller → index (``servers``: SQS → OpenSearch,
   status in DynamoDB; ``embedded``: the local SQLite queue, store and
   status): end-to-end chunks/s, divided by the mean of the embedder's rates
   measured just before and just after it. This alternates for ``--rounds``
   rounds (so a shared machine's drifting load hits both sides of each ratio
   alike) and the median ratio is printed. Before timing,
   one warm-up message goes through the same poller, so the ratio is the
   steady rate of a running indexer (clients connected), not its start-up.
   Also printed: CPU seconds per chunk of this process, the embedder's own
   thread, and the local servers, and the share of the run in which the
   embedder was computing (the rest is start, tail and hand-offs).
2. **Chunking defaults.** The same documents (samples/corpus) chunked with
   today's defaults and with the previous ones (200-token chunks, no context
   header); the first ``--cost-chunks`` chunks of each embedded in alternating
   rounds: ms per chunk and the ratio, and what the whole corpus costs.
3. **Backlog** (``--backlog N``, servers only): N tiny messages are drained;
   RSS at 10 %, 50 %, 100 % of them. moto's SendMessage costs O(queue depth),
   so the queue is kept ~``--standing`` messages deep while all N pass through.

Load: the 1/5/15-minute load averages are printed beside every figure; on a
machine whose cores are busy with other work the figures are not comparable.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import statistics
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiobotocore.session import get_session

from bench.chunk_cost import compare_defaults
from cli.files import build_index_message, discover
from services.indexer.batching import BatchingEmbedder
from services.indexer.poller import Poller
from services.indexer.runtime import Runtime, build_pipeline
from shared.adapters.aws import dynamodb_status
from shared.adapters.aws.sqs import SqsQueue
from shared.adapters.local_models.minilm import MiniLMEmbedder
from shared.adapters.local_models.wordpiece import default_token_counter
from shared.adapters.opensearch import index as opensearch
from shared.adapters.sqlite import queue as sqlite_queue
from shared.adapters.sqlite import status as sqlite_status
from shared.adapters.sqlite import store as sqlite_store
from shared.chunking import chunk_document
from shared.context_header import HeaderBuilder
from shared.documents import Vector
from shared.ingest import IndexOperation
from shared.ports import Queue
from shared.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT / "samples" / "corpus"
SERVERS_DIR = Path(os.environ.get("RAG_SERVERS_DIR") or ROOT / ".servers")


def server_url(env: str, state_file: str) -> str:
    url = os.environ.get(env) or (SERVERS_DIR / state_file).read_text().strip()
    return url.rstrip("/")


def load_avg() -> str:
    return "/".join(f"{x:.2f}" for x in os.getloadavg())


def rss_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def process_cpu_s(pid: int | None) -> float:
    """CPU seconds used so far by a local process (0 if it isn't ours to see)."""
    if pid is None:
        return 0.0
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return 0.0


def thread_cpu_s() -> dict[str, float]:
    """CPU seconds of this process's live threads so far, by thread name with
    its number stripped: the event loop (MainThread), the pool that runs the
    embedder and chunking (asyncio), each SQLite adapter's worker."""
    totals: dict[str, float] = {}
    tick = os.sysconf("SC_CLK_TCK")
    for thread in threading.enumerate():
        name = thread.name.split(" ")[0].rstrip("0123456789_-")
        try:
            stat = Path(f"/proc/self/task/{thread.native_id}/stat").read_text()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        totals[name] = totals.get(name, 0.0) + (int(fields[11]) + int(fields[12])) / tick
    return totals


def server_pids() -> dict[str, int]:
    """The local moto and OpenSearch processes: their CPU competes with the embedder's."""
    pids: dict[str, int] = {}
    with contextlib.suppress(OSError, ValueError):
        pids["moto"] = int((SERVERS_DIR / "sqs.pid").read_text().strip())
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                cmdline = (proc / "cmdline").read_bytes()
            except OSError:
                continue
            if b"org.opensearch.bootstrap.OpenSearch" in cmdline:
                pids["opensearch"] = int(proc.name)
    return pids


# ---- corpora ------------------------------------------------------------------


def note_messages(count: int) -> list[IndexOperation]:
    """Small titled notes (~160 words, 1-3 chunks) cut from the sample corpus."""
    paragraphs: list[str] = []
    for path in sorted(CORPUS.rglob("*")):
        if path.suffix in {".md", ".txt", ".html", ".rst"} and path.is_file():
            text = path.read_text(errors="replace")
            paragraphs += [p.strip() for p in text.split("\n\n") if len(p.split()) >= 8]
    ops: list[IndexOperation] = []
    i = 0
    while len(ops) < count:
        words: list[str] = []
        while len(words) < 120:
            words += paragraphs[i % len(paragraphs)].split()
            i += 1
        n = len(ops)
        ops.append(
            IndexOperation(
                doc_id=f"note-{n}",
                title=f"Sample notes {n}",
                content_type="text/plain",
                text=" ".join(words[:160]),
            )
        )
    return ops


def sample_messages(count: int) -> list[IndexOperation]:
    """Whole documents of samples/corpus as ``rag ingest`` sends them."""
    files, _ = discover([CORPUS])
    return [
        build_index_message(f.doc_id, f.path.read_bytes(), f.content_type) for f in files[:count]
    ]


def warm_up_message() -> IndexOperation:
    return IndexOperation(
        doc_id=f"warm-up-{uuid.uuid4().hex[:8]}", content_type="text/plain", text="Warm-up note."
    )


def embedding_texts(settings: Settings, ops: Sequence[IndexOperation]) -> list[str]:
    """What the indexer hands the embedder for these messages: the loaded text
    chunked with the settings, each chunk under its context header."""
    from services.indexer.runtime import default_loader

    counter = default_token_counter()
    headers = HeaderBuilder(settings.chunking.context_header, counter)
    load = default_loader()
    texts: list[str] = []
    for op in ops:
        body = op.inline_bytes()
        assert body is not None
        loaded = load(body, op.content_type, op.doc_id)
        chunks = chunk_document(
            op.doc_id,
            loaded,
            generation="g",
            settings=settings.chunking,
            counter=counter,
            title=op.title,
        )
        texts += [headers.embedding_text(c) for c in chunks]
    return texts


# ---- the embedder, watched ----------------------------------------------------------


@dataclass
class Busy:
    """When the embedder computed (in its own thread) and how much CPU that took."""

    spans: list[tuple[float, float, int]] = field(default_factory=list)
    cpu_s: float = 0.0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def between(self, start: float, end: float) -> tuple[float, int, float, float]:
        """(busy seconds, texts, first start after ``start``, end of the last)."""
        inside = [s for s in self.spans if s[0] >= start and s[1] <= end]
        if not inside:
            return 0.0, 0, end, start
        busy = sum(b - a for a, b, _ in inside)
        return busy, sum(n for _, _, n in inside), inside[0][0], inside[-1][1]


class WatchedMiniLM(MiniLMEmbedder):
    """The product's embedder, recording each forward call's wall span and thread CPU."""

    def __init__(self, busy: Busy, threads: int | None, batch_size: int) -> None:
        super().__init__(batch_size=batch_size, threads=threads)
        self.busy = busy

    def _embed_sync(self, texts: list[str]) -> Vector:
        start, cpu = time.perf_counter(), time.thread_time()
        try:
            return super()._embed_sync(texts)
        finally:
            end = time.perf_counter()
            with self.busy.lock:
                self.busy.spans.append((start, end, len(texts)))
                self.busy.cpu_s += time.thread_time() - cpu


# ---- targets --------------------------------------------------------------------------


@dataclass
class Target:
    """One backend's queue and runtime, and how to take them down."""

    name: str
    settings: Settings
    queue: Queue
    runtime: Runtime
    send: Callable[[list[str]], Any]
    drop: Callable[[], Any]
    servers: dict[str, int] = field(default_factory=dict)


class Bench:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.run_id = uuid.uuid4().hex[:8]
        self.defaults = Settings(_env_file=None)
        self.threads = args.threads if args.threads is not None else self.defaults.embedder.threads
        self.batch_size = self.defaults.embedder.batch_size
        self.busy = Busy()
        self.embedder = WatchedMiniLM(self.busy, self.threads, self.batch_size)

    # -- servers (SQS, DynamoDB, OpenSearch) --

    def servers_config(self) -> dict[str, Any]:
        engine = os.environ.get("RAG_TEST_KNN_ENGINE")
        engine_file = SERVERS_DIR / "opensearch.engine"
        if not engine:
            engine = engine_file.read_text().strip() if engine_file.is_file() else "faiss"
        return {
            "aws": {"endpoint_url": server_url("RAG_TEST_SQS_URL", "sqs.url")},
            "index": {
                "backend": "opensearch",
                "opensearch_url": server_url("RAG_TEST_OPENSEARCH_URL", "opensearch.url"),
                "engine": engine,
            },
            "queue": {
                "backend": "sqs",
                "wait_seconds": 1,
                "visibility_timeout_s": 120,
                "max_in_flight": self.args.in_flight,
            },
            "status": {"backend": "dynamodb"},
        }

    def admin(self, service: str, settings: Settings) -> Any:
        return get_session().create_client(
            service, endpoint_url=settings.aws.endpoint_url, region_name="us-east-1"
        )

    async def servers_target(self, name: str) -> Target:
        config = self.servers_config()
        base = Settings(_env_file=None, **config)
        async with self.admin("sqs", base) as sqs:
            url = (await sqs.create_queue(QueueName=name))["QueueUrl"]
        async with self.admin("dynamodb", base) as ddb:
            await ddb.create_table(
                TableName=name,
                KeySchema=[{"AttributeName": "doc_id", "KeyType": "HASH"}],
                AttributeDefinitions=[{"AttributeName": "doc_id", "AttributeType": "S"}],
                BillingMode="PAY_PER_REQUEST",
            )
        config["index"]["index_name"] = name
        config["queue"]["queue_url"] = url
        config["status"]["table"] = name
        settings = Settings(_env_file=None, **config)
        index = opensearch.from_settings(settings)
        status = dynamodb_status.from_settings(settings)
        runtime = self.runtime(settings, index, status)
        runtime.closers += [index.close, status.close]

        async def drop() -> None:
            async with self.admin("sqs", settings) as sqs:
                await sqs.delete_queue(QueueUrl=url)
            async with self.admin("dynamodb", settings) as ddb:
                await ddb.delete_table(TableName=name)
            admin = opensearch.from_settings(settings)
            await admin._os().indices.delete(index=name)
            await admin.close()

        return Target(
            "servers (SQS → OpenSearch, DynamoDB status)",
            settings,
            SqsQueue(url, settings),
            runtime,
            lambda bodies: self.send_sqs(settings, bodies),
            drop,
            server_pids(),
        )

    async def send_sqs(self, settings: Settings, bodies: list[str], workers: int = 4) -> None:
        """SendMessageBatch (10 a call) from a few concurrent senders."""
        url = settings.queue.queue_url
        batches = iter(range(0, len(bodies), 10))
        async with self.admin("sqs", settings) as sqs:

            async def sender() -> None:
                for start in batches:
                    entries = [
                        {"Id": str(i), "MessageBody": b}
                        for i, b in enumerate(bodies[start : start + 10])
                    ]
                    await sqs.send_message_batch(QueueUrl=url, Entries=entries)

            await asyncio.gather(*(sender() for _ in range(workers)))

    # -- embedded (SQLite queue, store and status in one folder) --

    async def embedded_target(self) -> Target:
        folder = tempfile.TemporaryDirectory(prefix="bench-indexer-")
        settings = Settings(
            _env_file=None,
            data_dir=Path(folder.name),
            queue={"max_in_flight": self.args.in_flight, "wait_seconds": 1},
        )
        index = sqlite_store.from_settings(settings)
        status = sqlite_status.from_settings(settings)
        runtime = self.runtime(settings, index, status)
        runtime.closers += [index.close, status.close]
        queue = sqlite_queue.from_settings(settings)

        async def send(bodies: list[str]) -> None:
            for body in bodies:
                await queue.send(body)

        async def drop() -> None:
            await queue.close()
            folder.cleanup()

        return Target(
            "embedded (SQLite queue, store, status)", settings, queue, runtime, send, drop
        )

    def runtime(self, settings: Settings, index: Any, status: Any) -> Runtime:
        embedder = BatchingEmbedder(self.embedder, self.batch_size)
        pipeline = build_pipeline(settings, index=index, status=status, embedder=embedder)
        return Runtime(settings, pipeline)

    # -- measurements --

    async def rate_at(self, texts: list[str], batch: int) -> float:
        started = time.perf_counter()
        for first in range(0, len(texts), batch):
            await self.embedder.embed_documents(texts[first : first + batch])
        return len(texts) / (time.perf_counter() - started)

    async def embedder_alone(self, texts: list[str]) -> tuple[float, int, float]:
        """Best rate over batch sizes (bigger is not always faster on a small
        machine), and the process's CPU seconds per chunk at that size."""
        results = []
        for size in (8, 32):
            cpu = time.process_time()
            rate = await self.rate_at(texts, size)
            results.append((rate, size, (time.process_time() - cpu) / len(texts)))
        return max(results)

    async def end_to_end(self, target: Target, ops: list[IndexOperation]) -> dict[str, Any]:
        """Warm the runtime up with one message, queue the corpus, then time a
        poller draining it: the steady rate of a running indexer facing a backlog
        (clients connected), not its start-up or how soon it notices new messages."""
        runtime, queue = target.runtime, target.queue
        await runtime.start()
        await target.send([warm_up_message().model_dump_json(exclude_none=True)])
        await self.drain(target, 1)
        await target.send([op.model_dump_json(exclude_none=True) for op in ops])
        load = load_avg()
        servers = {name: process_cpu_s(pid) for name, pid in target.servers.items()}
        cpu, embed_cpu, threads = time.process_time(), self.busy.cpu_s, thread_cpu_s()
        started = time.perf_counter()
        elapsed = await self.drain(target, len(ops)) - started
        # CPU is read after the poller stopped: it also holds the stop's idle wait.
        cpu, embed_cpu = time.process_time() - cpu, self.busy.cpu_s - embed_cpu
        threads = {k: v - threads.get(k, 0.0) for k, v in thread_cpu_s().items()}
        servers = {k: process_cpu_s(target.servers[k]) - v for k, v in servers.items()}
        busy, embedded, first, last = self.busy.between(started, started + elapsed)
        listed = await runtime.pipeline.status.list(limit=len(ops) + 10)
        chunks = sum(s.chunk_count for s in listed if not s.doc_id.startswith("warm-up-"))
        failed = [s.doc_id for s in listed if s.state.value != "indexed"]
        await queue.close()  # type: ignore[attr-defined]
        await runtime.close()
        if failed:
            raise RuntimeError(f"documents not indexed: {failed[:5]}")
        return {
            "chunks": chunks,
            "chunks_embedded_in_window": embedded,
            "seconds": round(elapsed, 2),
            "chunks_per_s": round(chunks / elapsed, 2),
            "load_at_start": load,
            "embedder_busy_share": round(busy / elapsed, 3),
            "first_embed_after_s": round(first - started, 2),
            "after_last_embed_s": round(started + elapsed - last, 2),
            "cpu_ms_per_chunk": {
                "process": round(cpu / chunks * 1000, 1),
                "embedder_thread": round(embed_cpu / chunks * 1000, 1),
                **{k: round(v / chunks * 1000, 1) for k, v in servers.items()},
            },
            # The pool threads (asyncio) run the embedder and chunking; the
            # embedder's own share is embedder_thread above.
            "thread_cpu_ms_per_chunk": {
                k: round(v / chunks * 1000, 1) for k, v in sorted(threads.items()) if v > 0
            },
        }

    @staticmethod
    async def drain(target: Target, count: int) -> float:
        """Run a poller until ``count`` messages are done; when they were (then it
        stops, which may wait for a long poll under way)."""
        poller = Poller(target.queue, target.runtime)
        stop = asyncio.Event()
        task = asyncio.create_task(poller.run(stop))
        # Polled (the poller has no completion event): 50 ms is ~0.1 % of a run,
        # and polling more often costs the event loop measurable CPU.
        while poller.processed + poller.rejected < count and not task.done():  # noqa: ASYNC110
            await asyncio.sleep(0.05)
        done = time.perf_counter()
        stop.set()
        await task  # raises what stopped the poller, if anything did
        if poller.rejected:
            raise RuntimeError(f"{poller.rejected} messages were rejected")
        return done

    async def throughput(self) -> dict[str, Any]:
        """``--rounds`` rounds of: embedder alone, then each backend end to end.
        Each end-to-end rate is divided by the mean of the embedder-alone rates
        measured just before and just after it (the next round's, or a last
        one), so slow drifts of a shared machine's load hit both sides of each
        ratio alike; the median over rounds is reported."""
        pick = {"notes": note_messages, "samples": sample_messages}[self.args.corpus]
        ops = pick(self.args.docs)
        texts = embedding_texts(self.defaults, ops)
        await self.embedder.embed_documents(texts[:32])  # load and warm up
        load = load_avg()
        first_rate, best_batch, cpu_per_chunk = await self.embedder_alone(texts)
        print(
            f"  embedder alone: {first_rate:.2f} chunks/s (best batch {best_batch}; "
            f"{len(texts)} chunks of {len(ops)} messages) load {load}",
            flush=True,
        )
        alone = [first_rate]
        runs: dict[str, list[dict[str, Any]]] = {b: [] for b in self.backends()}
        for round_ in range(self.args.rounds):
            for backend in runs:
                run = await self.end_to_end_once(backend, ops, len(texts))
                run["alone_before"] = alone[-1]
                runs[backend].append(run)
            alone.append(await self.rate_at(texts, best_batch))
            for backend in runs:
                run = runs[backend][round_]
                run["ratio"] = round(
                    run["chunks_per_s"] / ((run["alone_before"] + alone[-1]) / 2), 3
                )
            print(
                f"  round {round_ + 1}: embedder alone {alone[-1]:.2f} chunks/s "
                f"(load {load_avg()}); "
                + "; ".join(f"{b} {r[round_]['ratio']:.1%}" for b, r in runs.items()),
                flush=True,
            )
        return {
            "corpus": self.args.corpus,
            "messages": len(ops),
            "chunks": len(texts),
            "embedder_threads": self.threads,
            "embedder_best_batch": best_batch,
            "embedder_alone_chunks_per_s": [round(a, 2) for a in alone],
            "embedder_alone_cpu_ms_per_chunk": round(cpu_per_chunk * 1000, 1),
            "embedder_alone_load_at_start": load,
            "ratio_median": {
                b: statistics.median(r["ratio"] for r in rs) for b, rs in runs.items()
            },
            "end_to_end": runs,
            "in_flight": self.args.in_flight,
        }

    async def end_to_end_once(
        self, backend: str, ops: list[IndexOperation], chunks: int
    ) -> dict[str, Any]:
        target = await (
            self.embedded_target()
            if backend == "embedded"
            else self.servers_target(f"bench-tp-{uuid.uuid4().hex[:8]}")
        )
        try:
            run = await self.end_to_end(target, ops)
        finally:
            await target.drop()
        print(
            f"  {target.name}: {run['chunks_per_s']} chunks/s end to end "
            f"(load {run['load_at_start']}); embedder busy {run['embedder_busy_share']:.0%} "
            f"of the run (first embedding after {run['first_embed_after_s']} s, "
            f"{run['after_last_embed_s']} s after the last); CPU ms/chunk "
            f"{run['cpu_ms_per_chunk']}; by thread {run['thread_cpu_ms_per_chunk']}",
            flush=True,
        )
        if run["chunks"] != chunks:
            raise RuntimeError(f"indexed {run['chunks']} chunks, expected {chunks}")
        return run

    def backends(self) -> list[str]:
        return ["embedded", "servers"] if self.args.backend == "both" else [self.args.backend]

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
        target = await self.servers_target(f"bench-mem-{self.run_id}")
        moto = target.servers.get("moto")
        samples: dict[int, float] = {}
        marks = sorted({max(1, count // 10), count // 2, count})
        bodies = [
            json.dumps(
                {
                    "op": "index",
                    "doc_id": f"m-{i}",
                    "content_type": "text/plain",
                    "text": f"Tiny note {i}.",
                }
            )
            for i in range(count)
        ]
        try:
            moto_cpu, started = process_cpu_s(moto), time.perf_counter()
            await target.send(bodies[:standing])
            fill_s, fill_moto = time.perf_counter() - started, process_cpu_s(moto) - moto_cpu
            print(f"  pre-filled {standing} messages in {fill_s:.1f} s", flush=True)
            start_rss = rss_mib()
            poller = Poller(target.queue, target.runtime)
            stop = asyncio.Event()
            await target.runtime.start()
            moto_cpu, drain_start = process_cpu_s(moto), time.perf_counter()
            task = asyncio.create_task(poller.run(stop))
            sent = standing
            while poller.processed < count and not task.done():
                await asyncio.sleep(0.2)
                for mark in marks:
                    if poller.processed >= mark and mark not in samples:
                        samples[mark] = rss_mib()
                        print(
                            f"  backlog {poller.processed}/{count}: RSS {samples[mark]:.0f} MiB "
                            f"at {time.perf_counter() - drain_start:.0f} s, load {load_avg()}",
                            flush=True,
                        )
                want = min(count, poller.processed + standing) - sent
                if want >= 10 or (want > 0 and sent + want == count):
                    await target.send(bodies[sent : sent + want])
                    sent += want
            elapsed = time.perf_counter() - drain_start
            drain_moto = process_cpu_s(moto) - moto_cpu
            stop.set()
            await task
            await target.queue.close()  # type: ignore[attr-defined]
            await target.runtime.close()
        finally:
            await target.drop()
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
    parser.add_argument("--backend", choices=["both", "embedded", "servers"], default="both")
    parser.add_argument("--corpus", choices=["notes", "samples"], default="notes")
    parser.add_argument("--docs", type=int, default=100, help="messages for the throughput run")
    parser.add_argument(
        "--threads", type=int, default=None, help="embedder BLAS threads (default: the product's)"
    )
    parser.add_argument("--in-flight", type=int, default=32, help="poller max_in_flight")
    parser.add_argument("--rounds", type=int, default=3, help="alone / end-to-end rounds")
    parser.add_argument(
        "--cost-chunks", type=int, default=64, help="chunks per side for part 2 (0: skip)"
    )
    parser.add_argument("--cost-rounds", type=int, default=2)
    parser.add_argument("--backlog", type=int, default=0, help="messages for the memory run")
    parser.add_argument(
        "--standing",
        type=int,
        default=500,
        help="messages kept queued ahead of the poller during the backlog (0: pre-fill all)",
    )
    args = parser.parse_args()
    # The local servers accept any credentials; real ones are never needed here.
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "bench")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "bench")
    bench = Bench(args)
    print(f"cores: {os.cpu_count()}, load average (1/5/15 min): {load_avg()}", flush=True)
    print("1. throughput", flush=True)
    result: dict[str, Any] = {"throughput": await bench.throughput()}
    tp = result["throughput"]
    print(
        f"embedder alone: {' / '.join(str(a) for a in tp['embedder_alone_chunks_per_s'])} "
        f"chunks/s (start, after each round; threads {tp['embedder_threads'] or 'all cores'})"
    )
    for backend, ratio in tp["ratio_median"].items():
        rates = [r["chunks_per_s"] for r in tp["end_to_end"][backend]]
        loads = [r["load_at_start"].split("/")[0] for r in tp["end_to_end"][backend]]
        print(
            f"indexer end to end, {backend}: {' / '.join(map(str, rates))} chunks/s; "
            f"median ratio to the embedder alone {ratio:.1%} ({tp['chunks']} chunks, "
            f"{tp['messages']} messages; load {', '.join(loads)})",
            flush=True,
        )
    if args.cost_chunks:
        print("2. chunking defaults: per-chunk cost, new vs previous", flush=True)
        result["chunk_cost"] = await compare_defaults(
            bench.embedder, CORPUS, args.cost_chunks, args.cost_rounds
        )
    if args.backlog:
        print("3. backlog", flush=True)
        result["backlog"] = await bench.backlog()
        bl = result["backlog"]
        print(
            f"backlog of {bl['messages']} messages (~{bl['standing_backlog']} kept queued) "
            f"in {bl['seconds']} s = {bl['messages_per_s']} msg/s (moto used "
            f"{bl['moto_cpu_s_during_drain']} CPU-s of it); RSS by progress "
            f"{bl['rss_at_mib']} MiB; growth {bl['growth_first_to_last_mib']} MiB",
        )
    print(f"load average at end: {load_avg()}")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    asyncio.run(main())
