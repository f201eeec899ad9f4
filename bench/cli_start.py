"""How fast the `rag` CLI starts: `rag --help` and `rag docs` (an empty data
folder), median wall time of N runs each, beside `python -c pass` measured in
the same run (the interpreter's own start: the floor no CLI can beat).

    .venv/bin/python -m bench.cli_start [--runs 7]

Goals (issue #14, idle machine): `rag --help` ≤ 0.3 s and `rag docs` ≤ 0.8 s.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def median_seconds(argv: list[str], runs: int, repo: Path) -> float:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        subprocess.run(argv, cwd=repo, capture_output=True, check=True)
        times.append(time.perf_counter() - started)
    return statistics.median(times)


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
    floor = medians["python -c pass"]
    print(f"median of {runs} runs each")
    for name, seconds in medians.items():
        print(f"{name:16s} {seconds:6.3f} s   {seconds / floor:5.1f}x python -c pass")


if __name__ == "__main__":
    main()
