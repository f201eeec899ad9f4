"""Per-chunk embedding cost of the chunking defaults beside the previous ones, in one run.

    .venv/bin/python -m bench.chunk_cost                  # samples/corpus, 64 chunks a side
    .venv/bin/python -m bench.chunk_cost --set cmake --chunks 96

(``bench.indexer`` runs the same comparison as its part 2.) The same documents
are chunked with today's defaults (222-token chunks embedded under a
``Title › section`` header of up to 32 tokens) and with the previous ones
(200-token chunks, no header). The first ``--chunks`` chunks of each are
embedded by the real MiniLM in batches of 32, alternating previous/new rounds
so that load on a shared machine hits both alike; the best round of each
counts. Printed: ms per chunk and the ratio new/previous, and the whole
corpus's chunk count, tokens per chunk and estimated embedding time under
each (fewer, longer chunks). Indexing is embedding-bound (``bench.indexer``
part 1), so these ratios are close to the change in indexing cost.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cli.files import discover
from shared.adapters.local_models.minilm import MiniLMEmbedder
from shared.adapters.local_models.wordpiece import default_token_counter
from shared.chunking import chunk_document
from shared.context_header import HeaderBuilder
from shared.loaders import load
from shared.ports import Embedder
from shared.settings import ChunkingSettings

SAMPLES = Path(__file__).resolve().parent.parent / "samples" / "corpus"
PREVIOUS = ChunkingSettings(chunk_tokens=200, overlap_tokens=32, context_header="none")
BATCH = 32


@dataclass
class Chunked:
    texts: list[str]  # what the embedder reads, in corpus order
    tokens: int  # the model's tokens over all of them, [CLS]/[SEP] excluded
    seconds: float  # loading and chunking the corpus


def embedding_texts(corpus: Path, chunking: ChunkingSettings) -> Chunked:
    counter = default_token_counter()
    headers = HeaderBuilder(chunking.context_header, counter)
    files, _ = discover([corpus])
    texts: list[str] = []
    started = time.perf_counter()
    for source in files:
        loaded = load(source.path.read_bytes(), source.content_type, filename=source.path.name)
        chunks = chunk_document(
            source.doc_id, loaded, generation="g", settings=chunking, counter=counter
        )
        texts += [headers.embedding_text(c) for c in chunks]
    seconds = time.perf_counter() - started
    tokens = sum(len(counter.token_spans(t)) for t in texts)
    return Chunked(texts, tokens, seconds)


async def rate(embedder: Embedder, texts: list[str]) -> float:
    started = time.perf_counter()
    for first in range(0, len(texts), BATCH):
        await embedder.embed_documents(texts[first : first + BATCH])
    return len(texts) / (time.perf_counter() - started)


async def compare_defaults(
    embedder: Embedder, corpus: Path, chunks: int, rounds: int
) -> dict[str, Any]:
    previous = embedding_texts(corpus, PREVIOUS)
    new = embedding_texts(corpus, ChunkingSettings())
    await embedder.embed_documents(previous.texts[:8])  # load and warm up
    load = "/".join(f"{x:.2f}" for x in os.getloadavg())
    old_rates, new_rates = [], []
    for _ in range(rounds):
        old_rates.append(await rate(embedder, previous.texts[:chunks]))
        new_rates.append(await rate(embedder, new.texts[:chunks]))
    old_rate, new_rate = max(old_rates), max(new_rates)
    old_ms, new_ms = 1000 / old_rate, 1000 / new_rate
    old_corpus_s = len(previous.texts) / old_rate
    new_corpus_s = len(new.texts) / new_rate
    result = {
        "corpus": str(corpus.relative_to(corpus.parents[1])),
        "chunks_timed_per_side": min(chunks, len(previous.texts), len(new.texts)),
        "rounds": rounds,
        "load_at_start": load,
        "previous": {
            "chunk_tokens": PREVIOUS.chunk_tokens,
            "header": PREVIOUS.context_header,
            "ms_per_chunk": round(old_ms, 1),
            "corpus_chunks": len(previous.texts),
            "tokens_per_chunk": round(previous.tokens / len(previous.texts), 1),
            "corpus_embed_s_est": round(old_corpus_s, 1),
            "load_and_chunk_ms_per_chunk": round(previous.seconds / len(previous.texts) * 1000, 2),
        },
        "new": {
            "chunk_tokens": ChunkingSettings().chunk_tokens,
            "header": ChunkingSettings().context_header,
            "ms_per_chunk": round(new_ms, 1),
            "corpus_chunks": len(new.texts),
            "tokens_per_chunk": round(new.tokens / len(new.texts), 1),
            "corpus_embed_s_est": round(new_corpus_s, 1),
            "load_and_chunk_ms_per_chunk": round(new.seconds / len(new.texts) * 1000, 2),
        },
        "per_chunk_cost_ratio": round(new_ms / old_ms, 3),
        "corpus_cost_ratio": round(new_corpus_s / old_corpus_s, 3),
        "load_at_end": "/".join(f"{x:.2f}" for x in os.getloadavg()),
    }
    for name, side in (("previous", result["previous"]), ("new", result["new"])):
        assert isinstance(side, dict)
        print(
            f"  {name:8} ({side['chunk_tokens']} tokens, header {side['header']:13}) "
            f"{side['ms_per_chunk']:6.1f} ms/chunk; corpus: {side['corpus_chunks']} chunks of "
            f"{side['tokens_per_chunk']} tokens, ~{side['corpus_embed_s_est']} s to embed; "
            f"load+chunk {side['load_and_chunk_ms_per_chunk']} ms/chunk",
            flush=True,
        )
    print(
        f"per-chunk cost new/previous: {result['per_chunk_cost_ratio']:.3f}; "
        f"whole corpus: {result['corpus_cost_ratio']:.3f} "
        f"(best of {rounds} rounds over {result['chunks_timed_per_side']} chunks a side; "
        f"load {load} → {result['load_at_end']})",
        flush=True,
    )
    return result


async def main(args: argparse.Namespace) -> None:
    corpus = SAMPLES
    if args.set:
        from cli.eval.evalsets import get_set

        corpus = get_set(args.set).corpus_dir()
    embedder = MiniLMEmbedder(threads=args.threads)
    await compare_defaults(embedder, corpus, args.chunks, args.rounds)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--set", default=None, help="an evaluation set's corpus (e.g. cmake)")
    parser.add_argument("--chunks", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--threads", type=int, default=None, help="embedder BLAS threads")
    asyncio.run(main(parser.parse_args()))
