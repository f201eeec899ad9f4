"""Attribution's cost per answer sentence beside a baseline, in one run.

    .venv/bin/python -m bench.attribution                 # the tuning sets, 3 rounds
    .venv/bin/python -m bench.attribution --rounds 5

The labelled answers of the tuning sets ``cmake``, ``sqlite`` and
``debian-history`` (never a held-out set) are attributed as the service does after an answer ends
(sources read ahead), without the embedder (the rules alone, the default)
and with its say on borderline clauses (``RAG_QUERY__ATTRIBUTION_MEANING``).
The baseline is what any embedding-based check pays at least: one MiniLM
vector per answer sentence (the attribution this one replaced embedded every
sentence, and every source sentence besides). Rounds alternate product and
baseline so that load on a shared machine hits all alike; the best round of
each counts. Printed: ms per sentence of each and the ratios to the baseline,
and the load average, since on a busy 2-core machine the numbers move with it.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

from cli.eval.attribution_sets import LabelledAnswer, evaluate_attribution, load_set
from services.query.answer.text import split_sentences, without_markers
from shared.adapters.local_models.minilm import MiniLMEmbedder
from shared.ports import Embedder

SETS = Path(__file__).resolve().parent.parent / "evalsets" / "attribution"
TUNING_SETS = ("cmake", "sqlite", "debian-history")  # never a held-out set


async def attribute_all(answers: list[LabelledAnswer], embedder: Embedder | None) -> float:
    """Seconds spent attributing every answer after it ended (sources prepared),
    timed as ``rag eval --attribution`` times it."""
    return (await evaluate_attribution(answers, embedder)).warm_ms / 1000


async def embed_sentences(answers: list[LabelledAnswer], embedder: Embedder) -> float:
    """Seconds spent embedding each answer's sentences, one call per answer."""
    spent = 0.0
    for answer in answers:
        texts = [without_markers(s.text).strip() for s in split_sentences(answer.text)]
        started = time.perf_counter()
        await embedder.embed_documents(texts)
        spent += time.perf_counter() - started
    return spent


async def main(rounds: int) -> None:
    answers = [a for name in TUNING_SETS for a in load_set(SETS / f"{name}.jsonl")]
    sentences = sum(len(a.sentences) for a in answers)
    embedder = MiniLMEmbedder()
    await embedder.embed_documents(["warm up"])
    runs: dict[str, Callable[[], Awaitable[float]]] = {
        "baseline: embed each sentence": lambda: embed_sentences(answers, embedder),
        "attribution, rules only": lambda: attribute_all(answers, None),
        "attribution, rules + embedder": lambda: attribute_all(answers, embedder),
    }
    best = dict.fromkeys(runs, float("inf"))
    for _ in range(rounds):
        for name, run in runs.items():
            best[name] = min(best[name], await run())
    base = best["baseline: embed each sentence"]
    print(f"{len(answers)} answers, {sentences} sentences, best of {rounds} rounds")
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    for name, seconds in best.items():
        ms = seconds * 1000 / sentences
        print(f"{name:<32} {ms:8.2f} ms/sentence   ratio to baseline {seconds / base:5.2f}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    asyncio.run(main(parser.parse_args().rounds))
