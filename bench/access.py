"""Access-filtered retrieval benchmark. Not a test: prints numbers side by side.

    .venv/bin/python -m bench.access        # embedded store, and OpenSearch if running
    .venv/bin/python -m bench.access --chunks 20000 --queries 50

One corpus of random unit vectors (384-d, as MiniLM's) in which 1 % of the
chunks are readable by group ``one``, 10 % by group ``ten`` and the rest by
group ``rest``. The same k-NN queries run three ways on the same store:
unrestricted (an admin: no access clause, the baseline), as a member of
``ten`` (10 % visible) and as a member of ``one`` (1 % visible). Prints the
median and p95 latency of each and the filtered/unfiltered ratio, and checks
that every filtered search still returned k hits (the filter is applied
inside the search, not after it).

OpenSearch: the node from ``scripts/test-servers`` (``$RAG_SERVERS_DIR`` or
``.servers/``), or ``--opensearch-url``; a uniquely named index, deleted at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import tempfile
import time
import uuid
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from shared.access import Access
from shared.documents import Chunk, EmbeddedChunk, Vector, chunk_id_for
from shared.ports import VectorIndex
from shared.settings import IndexSettings, Settings

DIM = 384
SCOPES = {
    "unfiltered (admin)": Access.everything(),
    "10 % visible": Access.of({"ten"}),
    "1 % visible": Access.of({"one"}),
}


def corpus(count: int, seed: int = 7) -> list[EmbeddedChunk]:
    rng = np.random.default_rng(seed)
    vectors = rng.normal(size=(count, DIM)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    chunks = []
    for i, vector in enumerate(vectors):
        group = "one" if i % 100 == 0 else "ten" if i % 10 == 1 else "rest"
        doc_id = f"doc-{i // 4}-{group}"  # four chunks per document
        text = f"chunk {i} of {doc_id}"
        chunk = Chunk(
            chunk_id=chunk_id_for(doc_id, "g", i),
            doc_id=doc_id,
            generation="g",
            ordinal=i,
            text=text,
            start=0,
            end=len(text),
            groups=[group],
        )
        chunks.append(EmbeddedChunk(chunk, vector))
    return chunks


def queries(count: int, seed: int = 11) -> Vector:
    q = np.random.default_rng(seed).normal(size=(count, DIM)).astype(np.float32)
    unit: Vector = q / np.linalg.norm(q, axis=1, keepdims=True)
    return unit


async def measure(index: VectorIndex, probes: Vector, k: int) -> dict[str, list[float]]:
    """Latency per scope (ms), interleaved so drift hits every scope alike."""
    timings: dict[str, list[float]] = {name: [] for name in SCOPES}
    short: dict[str, int] = dict.fromkeys(SCOPES, 0)
    for access in SCOPES.values():  # warm-up: caches, JIT-ish paths in the node
        await index.knn_search(probes[0], k, {}, access)
    for probe in probes:
        for name, access in SCOPES.items():
            start = time.perf_counter()
            hits = await index.knn_search(probe, k, {}, access)
            timings[name].append((time.perf_counter() - start) * 1000)
            short[name] += len(hits) < k
    for name, missing in short.items():
        if missing:
            print(f"  !! {name}: {missing} search(es) returned fewer than k={k} hits")
    return timings


def report(store: str, timings: dict[str, list[float]]) -> None:
    base = statistics.median(timings["unfiltered (admin)"])
    print(f"\n{store}")
    print(f"  {'scope':<20} {'median ms':>10} {'p95 ms':>8} {'ratio vs unfiltered':>20}")
    for name, values in timings.items():
        median = statistics.median(values)
        p95 = float(np.percentile(values, 95))
        print(f"  {name:<20} {median:>10.2f} {p95:>8.2f} {median / base:>19.2f}x")


async def write_all(index: VectorIndex, chunks: Sequence[EmbeddedChunk]) -> None:
    await index.ensure_index(DIM)
    for first in range(0, len(chunks), 1000):
        await index.write(chunks[first : first + 1000])


async def bench_sqlite(chunks: list[EmbeddedChunk], probes: Vector, k: int) -> None:
    from shared.adapters.sqlite.store import SqliteVectorIndex

    with tempfile.TemporaryDirectory() as folder:
        index = SqliteVectorIndex(Path(folder) / "bench.sqlite3")
        try:
            started = time.perf_counter()
            await write_all(index, chunks)
            seconds = time.perf_counter() - started
            print(f"embedded store: wrote {len(chunks)} chunks in {seconds:.1f} s")
            report(
                f"embedded store (SQLite, exact), {len(chunks)} chunks, k={k}",
                await measure(index, probes, k),
            )
        finally:
            await index.close()


def opensearch_url(given: str | None) -> str | None:
    if given:
        return given
    state = Path(os.environ.get("RAG_SERVERS_DIR") or ".servers")
    path = state / "opensearch.url"
    return path.read_text().strip() if path.is_file() else None


async def bench_opensearch(
    url: str, engine: str, chunks: list[EmbeddedChunk], probes: Vector, k: int
) -> None:
    from opensearchpy import AsyncOpenSearch

    from shared.adapters.opensearch import index as opensearch

    name = f"bench-access-{uuid.uuid4().hex[:8]}"
    settings = Settings(
        index=IndexSettings(
            backend="opensearch",
            opensearch_url=url,
            index_name=name,
            engine=engine,
        )
    )
    index = opensearch.from_settings(settings)
    admin = AsyncOpenSearch(hosts=[url], timeout=900)  # force-merging builds one graph
    try:
        started = time.perf_counter()
        await write_all(index, chunks)
        await admin.indices.refresh(index=name)  # bench side only, as in the tests
        await admin.indices.forcemerge(index=name, max_num_segments=1)
        print(f"OpenSearch: wrote {len(chunks)} chunks in {time.perf_counter() - started:.1f} s")
        report(
            f"OpenSearch ({engine} HNSW, knn.filter), {len(chunks)} chunks, k={k}",
            await measure(index, probes, k),
        )
    finally:
        await admin.indices.delete(index=name, ignore_unavailable=True)
        await admin.close()
        await index.close()


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chunks", type=int, default=10_000)
    parser.add_argument("--queries", type=int, default=40)
    parser.add_argument("-k", type=int, default=10)
    parser.add_argument("--opensearch-url")
    parser.add_argument("--engine", default=None, help="k-NN engine (default: the node's)")
    parser.add_argument("--skip-opensearch", action="store_true")
    args = parser.parse_args()

    chunks, probes = corpus(args.chunks), queries(args.queries)
    await bench_sqlite(chunks, probes, args.k)
    url = None if args.skip_opensearch else opensearch_url(args.opensearch_url)
    if url is None:
        print("\nOpenSearch: skipped (no node: scripts/test-servers start, or --opensearch-url)")
        return
    engine_file = Path(os.environ.get("RAG_SERVERS_DIR") or ".servers") / "opensearch.engine"
    engine = args.engine or (engine_file.read_text().strip() if engine_file.is_file() else "faiss")
    await bench_opensearch(url, engine, chunks, probes, args.k)


if __name__ == "__main__":
    asyncio.run(main())
