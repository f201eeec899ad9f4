"""``rag doctor`` against the moto server (STS, OpenSearch Serverless, Service Quotas'
"not available here") and a Service Quotas stand-in speaking the real JSON protocol."""

from __future__ import annotations

import json
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from aiohttp import web

from cli.deploy.doctor import Check, diagnose, exit_code
from tests.aws_doubles import serve_app

pytestmark = pytest.mark.sqs
QUOTA_CODE = "L-0123ABCD"  # test data; real codes differ per instance type


@pytest.fixture(autouse=True)
def aws_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "test")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "test")


def write_stack(cwd: Path, **overrides: Any) -> None:
    values: dict[str, Any] = {
        "aws:region": "us-east-1",
        "rag:model": {"acceptEula": True},
        "rag:staticToken": {"secure": "v1:abc"},  # encrypted by the CLI: only looked for
    }
    values.update(overrides)
    (cwd / "Pulumi.smoke.yaml").write_text(yaml.safe_dump({"config": values}))


def quotas_app(value: float, applied: bool = True) -> web.Application:
    """ListServiceQuotas and ListAWSDefaultServiceQuotas in their JSON 1.1 wire
    format, over two pages. ``applied=False``: a quota never raised, which AWS
    leaves out of ListServiceQuotas ("the quota is not retrieved")."""
    other: dict[str, Any] = {
        "QuotaName": "ml.g5.xlarge for endpoint usage",
        "QuotaCode": "L-1",
        "Value": 2.0,
    }
    ours: dict[str, Any] = {
        "QuotaName": "ml.g5.2xlarge for endpoint usage",
        "QuotaCode": QUOTA_CODE,
    }
    listed = [{**ours, "Value": value}] if applied else []
    pages: dict[str, list[dict[str, Any]]] = {
        "ListServiceQuotas": [{"Quotas": [other], "NextToken": "page-2"}, {"Quotas": listed}],
        "ListAWSDefaultServiceQuotas": [
            {"Quotas": [other], "NextToken": "page-2"},
            {"Quotas": [{**ours, "Value": value}]},
        ],
    }

    async def handle(request: web.Request) -> web.Response:
        target = request.headers.get("X-Amz-Target", "")
        operation = target.removeprefix("ServiceQuotasV20190624.")
        assert operation in pages, target
        body = json.loads(await request.read())
        assert body["ServiceCode"] == "sagemaker"
        page = pages[operation][1 if body.get("NextToken") == "page-2" else 0]
        return web.Response(
            text=json.dumps(
                {
                    "Quotas": [
                        q | {"ServiceCode": "sagemaker", "Unit": "None"} for q in page["Quotas"]
                    ]
                }
                | ({"NextToken": page["NextToken"]} if "NextToken" in page else {})
            ),
            content_type="application/x-amz-json-1.1",
        )

    app = web.Application()
    app.router.add_post("/", handle)
    return app


async def quotas(value: float, applied: bool = True) -> AsyncIterator[str]:
    async for url in serve_app(quotas_app(value, applied)):
        yield url


def by_name(checks: list[Check]) -> dict[str, Check]:
    return {c.name: c for c in checks}


async def test_a_zero_gpu_quota_fails_with_the_request_to_make(
    tmp_path: Path, sqs_endpoint_url: str
) -> None:
    write_stack(tmp_path)
    async for quota_url in quotas(0.0):
        endpoints = {"*": sqs_endpoint_url, "service-quotas": quota_url}
        checks = by_name(await diagnose("smoke", tmp_path, endpoints))
    assert checks["stack config"].status == "ok"
    assert checks["model licence"].status == "ok"
    assert checks["credentials"].status == "ok" and "123456789012" in checks["credentials"].detail
    assert checks["opensearch serverless"].status == "ok"
    quota = checks["endpoint quota"]
    assert quota.status == "fail"
    assert f"--quota-code {QUOTA_CODE} --desired-value 1" in quota.fix
    assert exit_code(list(checks.values())) == 1


async def test_a_gpu_quota_never_raised_fails_on_its_default_of_zero(
    tmp_path: Path, sqs_endpoint_url: str
) -> None:
    """A new account: the quota has no applied value, so ListServiceQuotas
    omits it; the default (0) holds and `pulumi up` would stop part-way."""
    write_stack(tmp_path)
    async for quota_url in quotas(0.0, applied=False):
        endpoints = {"*": sqs_endpoint_url, "service-quotas": quota_url}
        checks = await diagnose("smoke", tmp_path, endpoints)
    quota = by_name(checks)["endpoint quota"]
    assert quota.status == "fail" and "is 0" in quota.detail
    assert f"--quota-code {QUOTA_CODE} --desired-value 1" in quota.fix
    assert exit_code(checks) == 1


async def test_a_ready_account_passes(tmp_path: Path, sqs_endpoint_url: str) -> None:
    write_stack(tmp_path)
    async for quota_url in quotas(1.0):
        checks = await diagnose(
            "smoke", tmp_path, {"*": sqs_endpoint_url, "service-quotas": quota_url}
        )
    assert [c.status for c in checks] == ["ok"] * 5
    assert exit_code(checks) == 0


async def test_a_quota_that_cant_be_read_leaves_the_stack_unchecked(
    tmp_path: Path, sqs_endpoint_url: str
) -> None:
    # moto does not implement ListServiceQuotas (it answers 500): not known, not ok
    write_stack(tmp_path)
    checks = by_name(await diagnose("smoke", tmp_path, {"*": sqs_endpoint_url}))
    assert checks["endpoint quota"].status == "unchecked"
    assert checks["endpoint quota"].detail.startswith("could not check")
    assert exit_code(list(checks.values())) == 2


async def test_an_unaccepted_licence_fails_with_the_fix(
    tmp_path: Path, sqs_endpoint_url: str
) -> None:
    write_stack(tmp_path, **{"rag:model": {}})
    async for quota_url in quotas(1.0):
        checks = by_name(
            await diagnose("smoke", tmp_path, {"*": sqs_endpoint_url, "service-quotas": quota_url})
        )
    assert checks["model licence"].status == "fail"
    assert "rag:model.acceptEula true" in checks["model licence"].fix


@pytest.mark.parametrize(
    ("overrides", "fix"),
    [
        ({"rag:lambda": {"pythonVersion": "3.11"}}, "rag:lambda.pythonVersion 3.12"),
        ({"rag:chat": {"auth": "token", "stageNam": "x"}}, "pulumi config rm --path rag:chat"),
        ({"rag:staticToken": None}, "pulumi config set --secret rag:staticToken"),
    ],
)
async def test_config_mistakes_fail_before_any_probe(
    tmp_path: Path, overrides: dict[str, Any], fix: str
) -> None:
    values = {k: v for k, v in overrides.items() if v is not None}
    write_stack(tmp_path, **values)
    if overrides.get("rag:staticToken", "") is None:
        path = tmp_path / "Pulumi.smoke.yaml"
        data = yaml.safe_load(path.read_text())
        del data["config"]["rag:staticToken"]
        path.write_text(yaml.safe_dump(data))
    (check,) = await diagnose("smoke", tmp_path, {"*": "http://127.0.0.1:9"})
    assert check.status == "fail" and fix in check.fix


async def test_a_missing_stack_file_says_how_to_create_it(tmp_path: Path) -> None:
    (check,) = await diagnose("prod", tmp_path)
    assert check.status == "fail" and "pulumi stack init prod" in check.detail


async def test_bedrock_model_that_cannot_be_checked_is_unchecked(
    tmp_path: Path, sqs_endpoint_url: str
) -> None:
    write_stack(tmp_path, **{"rag:model": {"source": "bedrock"}})
    checks = by_name(await diagnose("smoke", tmp_path, {"*": sqs_endpoint_url}))
    assert "endpoint quota" not in checks and "model licence" in checks
    assert checks["bedrock model"].status == "unchecked"
    assert checks["opensearch serverless"].status == "ok"


def test_rag_doctor_prints_each_check_and_exits_1_on_a_failure(
    tmp_path: Path, sqs_endpoint_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from typer.testing import CliRunner

    from cli.main import app

    write_stack(tmp_path, **{"rag:model": {}})  # licence not accepted
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("RAG_AWS__ENDPOINT_URL", sqs_endpoint_url)
    result = CliRunner().invoke(app, ["doctor", "--stack", "smoke"])
    assert result.exit_code == 1, result.output
    assert "FAIL model licence" in result.output
    assert "fix: read https://ai.meta.com/llama/license/" in result.output
    assert "ok   credentials" in result.output


def test_rag_doctor_says_the_stack_is_unchecked_when_a_check_could_not_run(
    tmp_path: Path, sqs_endpoint_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue #24 item 5: it exited 0 with one warning, having checked nothing."""
    from typer.testing import CliRunner

    from cli.main import app

    write_stack(tmp_path, **{"rag:model": {"source": "bedrock"}})
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("RAG_AWS__ENDPOINT_URL", sqs_endpoint_url)
    # moto can't answer for Bedrock: that check could not run, so not "ready"
    result = CliRunner().invoke(app, ["doctor", "--stack", "smoke"])
    assert result.exit_code == 2, result.output
    assert "???? bedrock model: unchecked: could not check" in result.output
    assert "stack smoke is UNCHECKED: 1 check(s) could not run (bedrock model)" in result.output
    assert "ready" not in result.output


def test_rag_doctor_without_the_infra_extras_checks_nothing_and_says_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from typer.testing import CliRunner

    from cli.main import app

    write_stack(tmp_path)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setitem(sys.modules, "infra.config", None)  # import fails, as without pulumi
    result = CliRunner().invoke(app, ["doctor", "--stack", "smoke"])
    assert result.exit_code == 2, result.output
    assert "???? stack config: unchecked: the infra extras (pulumi) are not installed" in (
        result.output
    )
    assert "stack smoke is UNCHECKED" in result.output


async def test_api_logs_without_the_account_role_fail_with_the_fix(
    tmp_path: Path, sqs_endpoint_url: str
) -> None:
    # moto's API Gateway account has no CloudWatch role set (read only: it is account-wide)
    write_stack(tmp_path, **{"rag:model": {"source": "bedrock"}, "rag:chat": {"apiLogs": True}})
    checks = by_name(await diagnose("smoke", tmp_path, {"*": sqs_endpoint_url}))
    logs = checks["api gateway logs"]
    assert logs.status == "fail"
    assert "docs/deploy.md" in logs.fix and "rag:chat.apiLogs false" in logs.fix


def test_the_rag_script_validates_the_config_from_the_project_folder(
    tmp_path: Path, sqs_endpoint_url: str
) -> None:
    """`.venv/bin/rag doctor` (not `python -m`, which puts the folder on the
    path): infra/ is not installed with the package, so it went unvalidated."""
    import os
    import subprocess

    repo = Path(__file__).resolve().parents[3]
    (tmp_path / "infra").symlink_to(repo / "infra")  # a project folder: infra/ + the stack
    write_stack(tmp_path)
    script = Path(sys.executable).parent / "rag"
    env = {**os.environ, "RAG_AWS__ENDPOINT_URL": sqs_endpoint_url, "COLUMNS": "200"}
    env.pop("PYTHONPATH", None)
    result = subprocess.run(
        [str(script), "doctor", "--stack", "smoke"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert "ok   stack config: region us-east-1" in result.stdout, result.stdout + result.stderr
    assert "ok   credentials" in result.stdout
