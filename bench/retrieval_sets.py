"""Retrieval quality per evaluation set and per candidate setting: the table
in docs/evaluation.md ("Defaults across corpora").

    .venv/bin/python -m bench.retrieval_sets                        # defaults, every set
    .venv/bin/python -m bench.retrieval_sets --sets cmake gnuplot \\
        --config before:chunking.context_header=none \\
        --config 222:chunking.chunk_tokens=222

Each ``--config NAME:key=value,key=value`` overrides the default settings
(dotted paths into Settings). Every set's corpus is indexed into a fresh
embedded store with the real MiniLM embedder; document vectors are cached
under ~/.cache/serverless-rag, so only new chunk texts cost embedding time.
The held-out sets (cli.eval.evalsets.HELD_OUT) are skipped unless named.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from typing import Any

from cli.eval.embedding_cache import CachingEmbedder, cached_embedder
from cli.eval.evalsets import HELD_OUT, EvalSet, all_sets, cache_root
from cli.eval.naive import evaluate_naive
from cli.eval.questions import load_questions
from cli.eval.set_runner import SetResult, evaluate_index, indexed_corpus
from shared.adapters.local_models.minilm import MiniLMEmbedder
from shared.settings import Settings


def parse_config(spec: str) -> tuple[str, dict[str, Any]]:
    name, _, assignments = spec.partition(":")
    overrides: dict[str, Any] = {}
    for item in filter(None, assignments.split(",")):
        key, _, raw = item.partition("=")
        try:
            value: Any = json.loads(raw)
        except json.JSONDecodeError:
            value = raw
        overrides[key.strip()] = value
    return name, overrides


def apply(base: Settings, overrides: dict[str, Any]) -> Settings:
    tree = base.model_dump()
    for key, value in overrides.items():
        node = tree
        *path, leaf = key.split(".")
        for part in path:
            node = node[part]
        node[leaf] = value
    return Settings.model_validate(tree)


def chosen_sets(names: list[str] | None) -> list[EvalSet]:
    sets = all_sets()
    if names:
        return [s for s in sets if s.name in names]
    return [s for s in sets if s.name not in HELD_OUT]


def index_key(settings: Settings) -> str:
    """Configs that differ only in query settings share one indexed store."""
    return settings.chunking.model_dump_json() + settings.embedder.model_dump_json()


async def run_set(
    evalset: EvalSet, configs: list[tuple[str, Settings]], embedder: CachingEmbedder, modes: Any
) -> list[dict[str, Any]]:
    questions = load_questions(evalset.questions_path)
    corpus = evalset.corpus_dir()
    rows = []
    groups: dict[str, list[tuple[str, Settings]]] = {}
    for name, settings in configs:
        groups.setdefault(index_key(settings), []).append((name, settings))
    for group in groups.values():
        before = embedder.misses
        async with indexed_corpus(evalset.name, corpus, group[0][1], embedder) as (index, report):
            for name, settings in group:
                started = time.perf_counter()
                summaries = await evaluate_index(index, questions, settings.query, embedder, modes)
                seconds = time.perf_counter() - started
                result = SetResult(evalset.name, report, summaries)
                for mode in modes:
                    row = table_row(name, result, mode, embedder.misses - before)
                    row["query_ms"] = round(summaries[mode].timing.mean_s * 1000, 1)
                    rows.append(row)
                    print_row(row, report.seconds, f", {seconds:.0f} s")
    return rows


def table_row(config: str, result: SetResult, mode: str, embedded: int) -> dict[str, Any]:
    return {
        "config": config,
        **result.row(mode),
        "embedded": embedded,
        "index_s": round(result.report.seconds, 1),
    }


def print_row(row: dict[str, Any], index_s: float, more: str = "") -> None:
    print(
        f"{row['set']:<8} {row['config']:<14} {row['mode']:<6} chunks {row['chunks']:>5}  "
        f"MRR {row['mrr']:.3f}  R@5 {row['recall@5']:.3f}  "
        f"P@3 {row['passage@3']:.3f}  P@5 {row['passage@5']:.3f}  "
        f"(embedded {row['embedded']}, index {index_s:.0f} s{more})",
        flush=True,
    )


async def run_naive(evalset: EvalSet, embedder: CachingEmbedder) -> dict[str, Any]:
    """The naive pipeline (cli/eval/naive.py) on one set, k-NN."""
    questions = load_questions(evalset.questions_path)
    before = embedder.misses
    report, summary = await evaluate_naive(
        evalset.name, evalset.corpus_dir(), questions, Settings(), embedder
    )
    result = SetResult(evalset.name, report, {"knn": summary})
    row = table_row("naive", result, "knn", embedder.misses - before)
    print_row(row, report.seconds)
    return row


async def main(args: argparse.Namespace) -> None:
    specs = [parse_config(c) for c in args.config]
    configs = [
        (name, apply(Settings(), overrides)) for name, overrides in specs or [("defaults", {})]
    ]
    embedder = cached_embedder(MiniLMEmbedder(), cache_root())
    rows = []
    try:
        for evalset in chosen_sets(args.sets):
            if args.baseline == "naive":
                rows.append(await run_naive(evalset, embedder))
            if specs or not args.baseline:
                rows.extend(await run_set(evalset, configs, embedder, tuple(args.modes)))
    finally:
        embedder.close()
    if args.json:
        print(json.dumps(rows))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sets", nargs="*", help="set names (default: all but the held-out)")
    parser.add_argument("--config", action="append", default=[], help="NAME:key=value,...")
    parser.add_argument("--modes", nargs="*", default=["knn", "hybrid"])
    parser.add_argument("--json", action="store_true")
    parser.add_argument(
        "--baseline", choices=["naive"], help="also the naive pipeline (alone without --config)"
    )
    asyncio.run(main(parser.parse_args()))
