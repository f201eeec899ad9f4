"""Issue #22 item 4: `rag cost --stack NAME` prices a stack from its Pulumi.NAME.yaml.

The real `rag` script runs in a subprocess on the repo's own Pulumi.dev.yaml and on
stack files written here (an always-on one, and configs built to fool the model:
an hourly reconcile on a scaled-to-zero collection, an instance without a price).
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from cli.deploy.cost_model import Usage, runs_per_day
from infra.lambda_artifacts import REPO_ROOT

RAG = str(Path(sys.executable).with_name("rag"))
IDLE = re.compile(r"^idle: \$(\d+\.\d\d)/day$")


def rag_cost(*args: str, cwd: Path = REPO_ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [RAG, "cost", *args], cwd=cwd, capture_output=True, text=True, timeout=120, check=False
    )


def write_stack(folder: Path, name: str, config: dict[str, Any]) -> Path:
    (folder / f"Pulumi.{name}.yaml").write_text(yaml.safe_dump({"config": config}))
    return folder


def priced(folder: Path, name: str) -> dict[str, Any]:
    done = rag_cost("--stack", name, "--json", "--project-dir", str(folder))
    assert done.returncode == 0, done.stderr
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def test_dev_idles_under_a_dollar_a_day_and_says_so_first() -> None:
    done = rag_cost("--stack", "dev")
    assert done.returncode == 0, done.stderr
    first = done.stdout.splitlines()[0]
    match = IDLE.match(first)
    assert match, first
    assert float(match.group(1)) <= 1.00
    assert "per 1,000 questions" in done.stdout
    assert "per 10,000 documents indexed" in done.stdout
    assert "list prices of 20" in done.stdout  # the prices' date is shown


def test_json_carries_the_same_totals() -> None:
    done = rag_cost("--stack", "dev")
    shown = float(IDLE.match(done.stdout.splitlines()[0]).group(1))  # type: ignore[union-attr]
    result = priced(REPO_ROOT, "dev")
    assert result["idle_usd_per_day"] == pytest.approx(shown, abs=0.006)  # 2 vs 4 decimals
    assert result["prices_as_of"] and result["region"] == "us-east-1"
    parts = {line["part"] for line in result["per_1000_questions"]["lines"]}
    assert {"functions", "API Gateway", "model time", "OCU-hours"} <= parts
    parts = {line["part"] for line in result["per_10000_documents"]["lines"]}
    assert {"indexer function", "queue", "OCU-hours"} <= parts
    assert set(result["waking"]) == {"search", "model"}


def test_an_always_on_stack_costs_what_docs_deploy_says(tmp_path: Path) -> None:
    # every stack but dev defaults to the classic collection and an always-on endpoint
    write_stack(tmp_path, "prod", {"aws:region": "us-east-1", "rag:model": {"acceptEula": True}})
    result = priced(tmp_path, "prod")
    lines = {line["part"]: line["usd"] for line in result["idle_per_day"]["lines"]}
    assert lines["search"] == pytest.approx(0.24 * 24)  # 1 OCU minimum
    assert lines["model"] == pytest.approx(1.515 * 24)  # one ml.g5.2xlarge
    assert 41 < result["idle_usd_per_day"] < 43
    assert result["waking"] == {}


def test_an_hourly_reconcile_would_break_the_dev_budget(tmp_path: Path) -> None:
    # the hard negative: scale to zero, but something wakes the collection every hour
    write_stack(
        tmp_path,
        "dev",
        {"aws:region": "us-east-1", "rag:indexer": {"reconcileSchedule": "rate(1 hour)"}},
    )
    result = priced(tmp_path, "dev")
    assert result["idle_usd_per_day"] > 1.0
    reconcile = next(x for x in result["idle_per_day"]["lines"] if x["part"] == "reconcile")
    assert reconcile["usd"] == pytest.approx(24 * 2 * 11 / 60 * 0.24, rel=1e-3)


def test_bedrock_and_unpriced_instances(tmp_path: Path) -> None:
    write_stack(
        tmp_path,
        "dev",
        {
            "aws:region": "eu-west-1",
            "rag:model": {"acceptEula": True, "instanceType": "ml.p5.48xlarge"},
        },
    )
    result = priced(tmp_path, "dev")
    notes = " ".join(result["notes"])
    assert "no list price recorded for ml.p5.48xlarge" in notes
    assert "eu-west-1" in notes  # prices are us-east-1's
    write_stack(
        tmp_path, "bedrock", {"aws:region": "us-east-1", "rag:model": {"source": "bedrock"}}
    )
    result = priced(tmp_path, "bedrock")
    model = next(x for x in result["per_1000_questions"]["lines"] if x["part"] == "model time")
    assert model["usd"] == 0  # billed per token by Bedrock, not priced here


def test_model_seconds_from_done_events_price_the_model_time(tmp_path: Path) -> None:
    done = rag_cost("--stack", "dev", "--json", "--model-seconds", "4.5")
    result = json.loads(done.stdout)
    model = next(x for x in result["per_1000_questions"]["lines"] if x["part"] == "model time")
    assert model["usd"] == pytest.approx(1000 * 4.5 * 1.515 / 3600, rel=1e-3)


def test_a_missing_or_wrong_stack_file_is_a_clear_error(tmp_path: Path) -> None:
    done = rag_cost("--stack", "nope", "--project-dir", str(tmp_path))
    assert done.returncode == 1 and "Pulumi.nope.yaml not found" in done.stderr
    write_stack(tmp_path, "bad", {"aws:region": "us-east-1", "rag:search": {"minSearchOcu": 9}})
    done = rag_cost("--stack", "bad", "--project-dir", str(tmp_path))
    assert done.returncode == 1 and "rag:search.maxSearchOcu" in done.stderr


def test_help_does_not_load_the_cost_model() -> None:
    heavy = "('cli.deploy.cost_model', 'infra', 'yaml', 'pulumi')"
    probe = f"import sys, cli.main; print(sorted(m for m in sys.modules if m.startswith({heavy})))"
    done = subprocess.run(
        [sys.executable, "-c", probe], cwd=REPO_ROOT, capture_output=True, text=True, check=True
    )
    assert done.stdout.strip() == "[]"


def test_assumption_helpers() -> None:
    assert runs_per_day("rate(1 day)") == 1 and runs_per_day("rate(30 minutes)") == 48
    assert runs_per_day("cron(0 3 * * ? *)") == 24 and runs_per_day(None) == 0
    usage = Usage()
    assert usage.chunks_per_doc == 11  # 8 KB / 4 chars per token, 222-token chunks, 32 overlap
    assert usage.indexer_rate(3008 / 1769) >= usage.indexer_rate(1.0) > usage.indexer_rate(0.5)
    assert usage.indexer_rate(4.0) == usage.indexer_rate(2.0)  # no gain past the measured 2
