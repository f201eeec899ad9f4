"""Indexer chunks/s per function at 1 and 2 vCPU: the per-function rate docs/scaling.md
builds its numbers on (issue #22 item 5).

    .venv/bin/python -m bench.scaling                 # both CPU counts (~10 min, servers)
    .venv/bin/python -m bench.scaling --cpus 1        # one

For each CPU count N the whole indexer benchmark (``bench.indexer --backend servers``:
SQS -> poller -> real all-MiniLM-L6-v2 embedder -> the real OpenSearch node, status in
DynamoDB) runs pinned to N cores with ``taskset`` and N embedder threads, as a Lambda
function with N vCPU would run it (Lambda gives 1 vCPU per 1,769 MB: the indexer's
3,008 MB default is 1.7 vCPU). The servers are not pinned: on AWS they are other
machines. Printed per N, from the same run: the product's end-to-end chunks/s beside
the baseline, the embedder alone on the same cores (the most an indexer built on it
could do), and their ratio; then the 2-vCPU over 1-vCPU speed-up of each.

On a shared machine the absolute figures move with the load (printed beside them);
the ratios are what carries over.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]


def run_pinned(cpus: int, docs: int, rounds: int, timeout_s: float) -> dict[str, Any]:
    """``bench.indexer`` on the first ``cpus`` cores; its closing JSON."""
    cores = ",".join(str(c) for c in range(cpus))
    argv = [
        "taskset",
        "-c",
        cores,
        sys.executable,
        "-m",
        "bench.indexer",
        "--backend",
        "servers",
        "--corpus",
        "samples",
        "--docs",
        str(docs),
        "--rounds",
        str(rounds),
        "--cost-chunks",
        "0",
        "--threads",
        str(cpus),
    ]
    done = subprocess.run(
        argv, cwd=REPO, capture_output=True, text=True, timeout=timeout_s, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(f"bench.indexer on {cpus} CPU failed:\n{done.stderr[-2000:]}")
    out = done.stdout
    # Kept whole: the per-round lines and the closing JSON are the evidence.
    Path(f"/tmp/bench-scaling-{cpus}cpu.txt").write_text(out)
    result: dict[str, Any] = json.loads(out[out.rindex("\n{") + 1 :])
    return result


def summary(cpus: int, result: dict[str, Any]) -> dict[str, Any]:
    tp = result["throughput"]
    runs = tp["end_to_end"]["servers"]
    product = sorted(r["chunks_per_s"] for r in runs)[len(runs) // 2]
    alone = sorted(tp["embedder_alone_chunks_per_s"])[len(tp["embedder_alone_chunks_per_s"]) // 2]
    return {
        "vcpu": cpus,
        "chunks": tp["chunks"],
        "messages": tp["messages"],
        "indexer_chunks_per_s": product,
        "embedder_alone_chunks_per_s": alone,
        "ratio_median": tp["ratio_median"]["servers"],
        "cpu_ms_per_chunk": runs[0]["cpu_ms_per_chunk"],
        "load_at_start": runs[0]["load_at_start"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cpus", type=int, nargs="*", default=[1, 2])
    parser.add_argument("--docs", type=int, default=29, help="messages (29 = samples/corpus)")
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--timeout", type=float, default=1200.0, help="seconds per CPU count")
    args = parser.parse_args()
    print(f"cores here: {os.cpu_count()}, load average: {os.getloadavg()}", flush=True)
    rows = []
    for cpus in args.cpus:
        row = summary(cpus, run_pinned(cpus, args.docs, args.rounds, args.timeout))
        rows.append(row)
        print(json.dumps(row), flush=True)
        print(
            f"{cpus} vCPU: indexer {row['indexer_chunks_per_s']:.1f} chunks/s end to end, "
            f"embedder alone {row['embedder_alone_chunks_per_s']:.1f} chunks/s (baseline), "
            f"ratio {row['ratio_median']:.1%}; {row['cpu_ms_per_chunk']} CPU ms/chunk; "
            f"{row['chunks']} chunks of {row['messages']} documents; load {row['load_at_start']}",
            flush=True,
        )
    if len(rows) == 2:
        one, two = rows
        indexer = two["indexer_chunks_per_s"] / one["indexer_chunks_per_s"]
        alone = two["embedder_alone_chunks_per_s"] / one["embedder_alone_chunks_per_s"]
        print(f"2 vCPU / 1 vCPU: indexer x{indexer:.2f}, embedder alone x{alone:.2f}")
    print(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
