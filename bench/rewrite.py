"""The question rewrite (RAG_QUERY__REWRITE_QUESTION) with the configured chat
model: its latency per question beside the question's embedding (the step
it runs alongside) from the same run, and with ``--quality`` the set's hybrid
retrieval with and without it.

    .venv/bin/python -m bench.rewrite --set debian-handbook --limit 20
    .venv/bin/python -m bench.rewrite --set cmake --quality

The model is what the settings build (RAG_MODEL__*; by default the packaged
local llama.cpp model). Held-out sets are refused unless --held-out is given.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time

from cli.eval.embedding_cache import cached_embedder
from cli.eval.evalsets import HELD_OUT, cache_root, get_set
from cli.eval.questions import load_questions
from cli.eval.runner import run_retrieval, summarise
from cli.eval.set_runner import indexed_corpus
from services.query.answer.retrieval import Retriever
from services.query.answer.rewrite import model_rewriter
from shared.adapters.local_models.minilm import MiniLMEmbedder
from shared.factory import build_chat_model
from shared.settings import Settings


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


async def main(args: argparse.Namespace) -> None:
    if args.set in HELD_OUT and not args.held_out:
        raise SystemExit(f"{args.set} is held out (pass --held-out to run it anyway)")
    settings = Settings()
    evalset = get_set(args.set)
    questions = load_questions(evalset.questions_path)
    model = build_chat_model(settings)
    rewrite = model_rewriter(
        model, timeout_s=settings.query.rewrite_timeout_s, weight=settings.query.rewrite_weight
    )
    embedder = cached_embedder(MiniLMEmbedder(), cache_root())
    timed = MiniLMEmbedder()  # uncached: what a question's embedding costs
    try:
        await rewrite("warm-up question")  # model load
        await timed.embed_query("warm-up question")
        rewrite_s, embed_s = [], []
        for question in questions[: args.limit]:
            started = time.perf_counter()
            words = await rewrite(question.question)
            rewrite_s.append(time.perf_counter() - started)
            started = time.perf_counter()
            await timed.embed_query(question.question)
            embed_s.append(time.perf_counter() - started)
            shown = " ".join(w for w, _ in words[:6])
            print(f"{rewrite_s[-1]:6.2f} s  {question.question[:60]:<60}  -> {shown}", flush=True)
        mean_r, mean_e = statistics.mean(rewrite_s), statistics.mean(embed_s)
        print(
            f"\nrewrite ({model.family}, {len(rewrite_s)} questions): mean {mean_r:.2f} s, "
            f"p50 {percentile(rewrite_s, 0.5):.2f} s, p90 {percentile(rewrite_s, 0.9):.2f} s, "
            f"max {max(rewrite_s):.2f} s"
        )
        print(
            f"question embedding (MiniLM, same run): mean {mean_e * 1000:.0f} ms; "
            f"ratio rewrite/embedding {mean_r / mean_e:.0f}x"
        )
        if args.quality:
            async with indexed_corpus(evalset.name, evalset.corpus_dir(), settings, embedder) as (
                index,
                _,
            ):
                for name, rewriter in (("without rewrite", None), ("with rewrite", rewrite)):
                    retriever = Retriever(embedder, index, settings.query, rewriter)
                    results = await run_retrieval(
                        questions, retriever, "hybrid", settings.query.default_k
                    )
                    m = summarise(results, "hybrid", settings.query.default_k).metrics
                    print(
                        f"{evalset.name} hybrid {name:<16} MRR {m['mrr']:.3f}  "
                        f"P@3 {m['passage@3']:.3f}  P@5 {m['passage@5']:.3f}",
                        flush=True,
                    )
    finally:
        embedder.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--set", default="debian-handbook")
    parser.add_argument("--limit", type=int, default=20, help="questions timed")
    parser.add_argument("--quality", action="store_true", help="also retrieval with/without")
    parser.add_argument("--held-out", action="store_true")
    asyncio.run(main(parser.parse_args()))
