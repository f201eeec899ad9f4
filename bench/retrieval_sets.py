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
The held-out set (cli.eval.evalsets.HELD_OUT) is skipped unless named.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from typing import Any

from cli.eval.embedding_cache import cached_embedder
from cli.eval.evalsets import HELD_OUT, EvalSet, all_sets, cache_root
from cli.eval.set_runner import evaluate_set
from shared.adapters.minilm import MiniLMEmbedder
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
    return [s for s in sets if s.name != HELD_OUT]


async def main(args: argparse.Namespace) -> None:
    configs = [parse_config(c) for c in args.config] or [("defaults", {})]
    embedder = cached_embedder(MiniLMEmbedder(), cache_root())
    rows = []
    try:
        for evalset in chosen_sets(args.sets):
            for name, overrides in configs:
                settings = apply(Settings(), overrides)
                before = embedder.misses
                started = time.perf_counter()
                result = await evaluate_set(evalset, settings, embedder, tuple(args.modes))
                seconds = time.perf_counter() - started
                for mode in args.modes:
                    row = {"config": name, **result.row(mode)}
                    row["embedded"] = embedder.misses - before
                    row["seconds"] = round(seconds, 1)
                    rows.append(row)
                    print(
                        f"{row['set']:<8} {name:<14} {mode:<6} chunks {row['chunks']:>5}  "
                        f"MRR {row['mrr']:.3f}  R@5 {row['recall@5']:.3f}  "
                        f"P@3 {row['passage@3']:.3f}  P@5 {row['passage@5']:.3f}  "
                        f"(embedded {row['embedded']}, {seconds:.0f} s)",
                        flush=True,
                    )
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
    asyncio.run(main(parser.parse_args()))
