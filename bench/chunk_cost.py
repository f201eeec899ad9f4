"""Per-chunk embedding cost of the new defaults beside the old ones, in one run.

    .venv/bin/python -m bench.chunk_cost                 # cmake set, 96 chunks
    .venv/bin/python -m bench.chunk_cost --set gnuplot --chunks 64

The same documents are chunked with today's defaults (context header:
title › section path) and with the previous ones (no header), and the first
``--chunks`` chunks of each are embedded by the real MiniLM in batches of 32,
alternating old/new rounds so that load on a shared machine hits both alike.
Prints chunks/s for each and the ratio new/old (the header's cost: its tokens
are embedded with every chunk). Indexing is embedding-bound, so this ratio is
close to the change in end-to-end indexing cost per chunk.
"""

from __future__ import annotations

import argparse
import asyncio
import time

from cli.eval.evalsets import get_set
from cli.files import discover
from shared.adapters.minilm import MiniLMEmbedder
from shared.adapters.wordpiece import default_token_counter
from shared.chunking import chunk_document
from shared.context_header import HeaderBuilder
from shared.loaders import load
from shared.settings import ChunkingSettings


def embedding_texts(set_name: str, chunking: ChunkingSettings, limit: int) -> list[str]:
    counter = default_token_counter()
    headers = HeaderBuilder(chunking.context_header, counter)
    files, _ = discover([get_set(set_name).corpus_dir()])
    texts: list[str] = []
    for source in files:
        loaded = load(source.path.read_bytes(), source.content_type, filename=source.path.name)
        chunks = chunk_document(
            source.doc_id, loaded, generation="g", settings=chunking, counter=counter
        )
        texts += [headers.embedding_text(c) for c in chunks]
        if len(texts) >= limit:
            break
    return texts[:limit]


async def rate(embedder: MiniLMEmbedder, texts: list[str]) -> float:
    started = time.perf_counter()
    for first in range(0, len(texts), 32):
        await embedder.embed_documents(texts[first : first + 32])
    return len(texts) / (time.perf_counter() - started)


async def main(args: argparse.Namespace) -> None:
    old = embedding_texts(args.set, ChunkingSettings(context_header="none"), args.chunks)
    new = embedding_texts(args.set, ChunkingSettings(), args.chunks)
    embedder = MiniLMEmbedder()
    await embedder.embed_documents(old[:8])  # load and warm up
    old_rates, new_rates = [], []
    for _ in range(args.rounds):
        old_rates.append(await rate(embedder, old))
        new_rates.append(await rate(embedder, new))
    old_rate, new_rate = max(old_rates), max(new_rates)
    print(f"set {args.set}, {len(old)} chunks, best of {args.rounds} rounds")
    print(
        f"old defaults (no header)     {old_rate:6.1f} chunks/s   {1000 / old_rate:6.1f} ms/chunk"
    )
    print(
        f"new defaults (title › path)  {new_rate:6.1f} chunks/s   {1000 / new_rate:6.1f} ms/chunk"
    )
    print(f"ratio new/old (throughput)   {new_rate / old_rate:6.3f}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--set", default="cmake")
    parser.add_argument("--chunks", type=int, default=96)
    parser.add_argument("--rounds", type=int, default=2)
    asyncio.run(main(parser.parse_args()))
