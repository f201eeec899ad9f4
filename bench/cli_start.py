"""How fast the `rag` CLI starts: `rag --help` and `rag docs` (an empty data
folder), median wall time of N runs each, beside `python -c pass` measured in
the same run (the interpreter's own start: the floor no CLI can beat).

    .venv/bin/python -m bench.cli_start [--runs 7]

Goals (issue #14, idle machine): `rag --help` ≤ 0.3 s and `rag docs` ≤ 0.8 s.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def median_seconds(argv: list[str], runs: int, repo: Path) -> tuple[float, float]:
    """Median wall time and median CPU time (user + system) of the child: on a
    busy machine the CPU time is the steadier figure."""
    walls, cpus = [], []
    for _ in range(runs):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        started = time.perf_counter()
        subprocess.run(argv, cwd=repo, capture_output=True, check=True)
        walls.append(time.perf_counter() - started)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpus.append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
    return statistics.median(walls), statistics.median(cpus)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--repo", type=Path, default=REPO, help="a checkout to measure")
    args = parser.parse_args()
    runs, repo = args.runs, args.repo
    rag = [sys.executable, "-m", "cli.main"]
    with tempfile.TemporaryDirectory() as data:
        cases = {
            "python -c pass": [sys.executable, "-c", "pass"],
            "rag --help": [*rag, "--help"],
            "rag docs": [*rag, "docs", "--data-dir", data],
        }
        medians = {name: median_seconds(argv, runs, repo) for name, argv in cases.items()}
    floor, floor_cpu = medians["python -c pass"]
    print(f"median of {runs} runs each; load average {os.getloadavg()[0]:.1f}")
    for name, (wall, cpu) in medians.items():
        print(
            f"{name:16s} wall {wall:6.3f} s ({wall / floor:5.1f}x)   "
            f"cpu {cpu:6.3f} s ({cpu / floor_cpu:5.1f}x python -c pass)"
        )


if __name__ == "__main__":
    main()
