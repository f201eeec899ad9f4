"""Model throughput: the MiniLM embedder and the local llama.cpp chat model.

    .venv/bin/python -m bench.models            # --seconds 8 per figure

Prints, with 1 and with 2 threads:

- MiniLM (shared/adapters/local_models/minilm.py): 256-token chunks/s (batches of 8),
  short queries/s one at a time (``embed_query``, as the query service calls
  it) and batched (32 a call);
- llama.cpp (shared/adapters/local_models/llamacpp.py, SmolLM2-135M Q4_1): decode tokens/s
  over one 128-token greedy answer (first token to last, so prompt
  processing is excluded), and time to first token.

The reference figures printed last are the developer guide's numbers for
PyTorch / llama.cpp on other hardware; they were NOT measured in this run.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import time
from collections.abc import Awaitable, Callable

from shared.adapters.local_models.llamacpp import (
    PACKAGED_FAMILY,
    LlamaCppChatModel,
    ServerConfig,
    packaged_model_path,
)
from shared.adapters.local_models.minilm import MAX_SEQ_LENGTH, MiniLMEmbedder
from shared.ports import GenerationParams

REFERENCE = (
    "reference, NOT measured in this run (developer guide, PyTorch CPU): "
    "~14 chunks/s of 256 tokens, ~400 short queries/s; llama.cpp ~55 tok/s"
)
TEXT = (
    "the indexer reads messages from the queue embeds every chunk of the document "
    "and writes vectors with their text and offsets into the search index while "
    "the query service streams answers token by token to the browser"
)
WORDS = TEXT.split()


def long_text(seed: int) -> str:
    """Comfortably over 256 word pieces: the model truncates to exactly 256."""
    words = [WORDS[(seed + i * 7) % len(WORDS)] for i in range(400)]
    return " ".join(words)


async def rate(work: Callable[[], Awaitable[int]], seconds: float) -> float:
    """Items per second of ``work`` (returns items done), repeated for ``seconds``."""
    await work()  # warm-up: first-call allocations, BLAS thread start
    done, started = 0, time.perf_counter()
    while (elapsed := time.perf_counter() - started) < seconds:
        done += await work()
    return done / elapsed


async def embedder(threads: int, seconds: float) -> None:
    model = MiniLMEmbedder(batch_size=8, threads=threads)
    await model.load()
    chunks = [long_text(i) for i in range(8)]
    tokens = len(model._model().token_ids(chunks[:1])[0])
    queries = [f"how does the indexer handle message {i}?" for i in range(32)]

    async def chunk_batch() -> int:
        await model.embed_documents(chunks)
        return len(chunks)

    async def one_query() -> int:
        await model.embed_query(queries[0])
        return 1

    async def query_batch() -> int:
        await model.embed_documents(queries)
        return len(queries)

    per_chunk = await rate(chunk_batch, seconds)
    per_query = await rate(one_query, seconds)
    batched = await rate(query_batch, seconds)
    print(
        f"  MiniLM, {threads} thread(s): {per_chunk:6.1f} chunks/s "
        f"({min(tokens, MAX_SEQ_LENGTH)} tokens, batches of 8) | "
        f"{per_query:6.1f} queries/s one at a time | {batched:6.1f} queries/s batched 32",
        flush=True,
    )


async def chat_model(threads: int, tokens: int) -> None:
    model = LlamaCppChatModel(ServerConfig(packaged_model_path(), 2048, threads), PACKAGED_FAMILY)
    loaded = await model.load()
    prompt = (
        "<|im_start|>user\nWrite a long, detailed essay about rivers, "
        "mountains and the sea.<|im_end|>\n<|im_start|>assistant\n"
    )
    params = GenerationParams(max_new_tokens=tokens, temperature=0.0)
    for _ in range(2):  # the first run warms up; the second is reported
        async for _event in model.stream(prompt, params):
            pass
    stats = model.history[-1]
    first, end = stats.first_token_at or 0.0, stats.finished_at or 0.0
    ttft_ms = 1000 * (first - stats.started_at)
    decode = (stats.completion_tokens - 1) / (end - first) if end > first else 0.0
    print(
        f"  llama.cpp SmolLM2-135M Q4_1, {threads} thread(s): {decode:5.1f} tok/s decode "
        f"({stats.completion_tokens} tokens), first token {ttft_ms:.0f} ms "
        f"(prompt cached), load {loaded.load_seconds:.1f} s",
        flush=True,
    )


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=8.0, help="per embedder figure")
    parser.add_argument("--tokens", type=int, default=128, help="tokens per chat answer")
    args = parser.parse_args()
    print(f"cores: {os.cpu_count()}, load average: {os.getloadavg()[0]:.2f}", flush=True)
    for threads in (1, 2):
        await embedder(threads, args.seconds)
    for threads in (1, 2):
        await chat_model(threads, args.tokens)
    print(f"load average at end: {os.getloadavg()[0]:.2f}")
    print(REFERENCE)


if __name__ == "__main__":
    asyncio.run(main())
