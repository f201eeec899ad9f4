"""Lambda artifacts: size and cold-start import time, lean (per function) vs. the
former single service zip, built and measured side by side in the same run.

    .venv/bin/python -m bench.lambda_artifacts              # x86_64, python3.12, 5 runs each
    .venv/bin/python -m bench.lambda_artifacts --runs 9

The baseline is the former ``service`` spec (every lock entry but the
authorizer's, ``shared/`` and all of ``services/``), shared by both functions.
The cold start measured is what a new execution environment runs before the
first event is handled: import the handler module, then build its adapters
(``handler._build()``, which loads the MiniLM weights),
in a bare interpreter (``-I -S``) with only the artifact on ``sys.path``;
the median of ``--runs`` fresh processes. This machine is not Lambda (and is
shared), so read the ratios, not the absolute numbers.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import tempfile
import zipfile
from pathlib import Path

from infra.lambda_artifacts import (
    AUTHORIZER_PACKAGES,
    INDEXER_SPEC,
    NEVER_SHIPPED,
    QUERY_SPEC,
    ArtifactSpec,
    LambdaArtifact,
    build_artifact,
)
from tests.infra.test_packaging import PY_VERSION, PYTHON, lambda_environment

BASELINE_SPEC = ArtifactSpec(
    name="service-baseline",
    sources=("shared", "services"),
    exclude=AUTHORIZER_PACKAGES | NEVER_SHIPPED,
    model_packages=INDEXER_SPEC.model_packages,
    prune_botocore=True,
)
IMPORT = {
    "indexer": "import services.indexer.lambda_handler as m",
    "query": "import services.query.transports.lambda_handler as m",
}
COLD_START = {
    "indexer": IMPORT["indexer"] + "; m.handler._build()",
    "query": IMPORT["query"] + "; m.handler._build()",
}
PROBE = (
    "import sys, time; sys.path.insert(0, {site!r}); t = time.perf_counter()\n"
    "{code}\n"
    "print(time.perf_counter() - t)"
)


def zipped_mb(artifact: LambdaArtifact) -> float:
    return artifact.zip_path.stat().st_size / 1e6


def cold_start_s(site: Path, code: str, runs: int) -> float:
    times = []
    for _ in range(runs):
        done = subprocess.run(
            [PYTHON, "-I", "-S", "-c", PROBE.format(site=str(site), code=code)],
            capture_output=True,
            text=True,
            env=lambda_environment() | {"AWS_ACCESS_KEY_ID": "x", "AWS_SECRET_ACCESS_KEY": "x"},
            cwd=site,
            check=True,
        )
        times.append(float(done.stdout.strip().splitlines()[-1]))
    return statistics.median(times)


def extract(artifact: LambdaArtifact, into: Path) -> Path:
    target = into / artifact.name
    with zipfile.ZipFile(artifact.zip_path) as zf:
        zf.extractall(target)
    return target


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--arch", choices=["x86_64", "arm64"], default="x86_64")
    args = parser.parse_args()
    baseline = build_artifact(BASELINE_SPEC, args.arch, PY_VERSION)
    lean = {
        "indexer": build_artifact(INDEXER_SPEC, args.arch, PY_VERSION),
        "query": build_artifact(QUERY_SPEC, args.arch, PY_VERSION),
    }
    print(f"python {PY_VERSION} ({PYTHON}), {args.arch}, median of {args.runs} cold starts")
    header = (
        f"{'function':8} {'artifact':17} {'zipped MB':>9} {'unzipped MB':>11} "
        f"{'import s':>8} {'cold s':>7}"
    )
    print(header)
    with tempfile.TemporaryDirectory() as tmp:
        base_site = extract(baseline, Path(tmp))
        for name, artifact in lean.items():
            site = extract(artifact, Path(tmp))
            rows = [
                (
                    built,
                    cold_start_s(where, IMPORT[name], args.runs),
                    cold_start_s(where, COLD_START[name], args.runs),
                )
                for built, where in ((baseline, base_site), (artifact, site))
            ]
            for built, imported, cold in rows:
                print(
                    f"{name:8} {built.name:17} {zipped_mb(built):9.1f} "
                    f"{built.unzipped_bytes / 1e6:11.1f} {imported:8.2f} {cold:7.2f}"
                )
            (_, import0, cold0), (_, import1, cold1) = rows
            print(
                f"{name:8} {'lean / baseline':17} {zipped_mb(artifact) / zipped_mb(baseline):9.2f} "
                f"{artifact.unzipped_bytes / baseline.unzipped_bytes:11.2f} "
                f"{import1 / import0:8.2f} {cold1 / cold0:7.2f}"
            )


if __name__ == "__main__":
    main()
