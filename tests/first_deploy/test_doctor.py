"""``rag doctor`` against the moto server (STS, OpenSearch Serverless, Service Quotas'
"not available here") and a Service Quotas stand-in speaking the real JSON protocol."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from aiohttp import web

from cli.doctor import Check, diagnose, exit_code
from tests.query.aws_stand_in import serve_app

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


def quotas_app(value: float) -> web.Application:
    """ListServiceQuotas in its JSON 1.1 wire format, over two pages."""
    other: dict[str, Any] = {
        "QuotaName": "ml.g5.xlarge for endpoint usage",
        "QuotaCode": "L-1",
        "Value": 2.0,
    }
    ours: dict[str, Any] = {
        "QuotaName": "ml.g5.2xlarge for endpoint usage",
        "QuotaCode": QUOTA_CODE,
    }
    pages: list[dict[str, Any]] = [
        {"Quotas": [other], "NextToken": "page-2"},
        {"Quotas": [{**ours, "Value": value}]},
    ]

    async def handle(request: web.Request) -> web.Response:
        target = request.headers.get("X-Amz-Target", "")
        assert target == "ServiceQuotasV20190624.ListServiceQuotas", target
        body = json.loads(await request.read())
        assert body["ServiceCode"] == "sagemaker"
        page = pages[1] if body.get("NextToken") == "page-2" else pages[0]
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


async def quotas(value: float) -> AsyncIterator[str]:
    async for url in serve_app(quotas_app(value)):
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


async def test_a_ready_account_passes(tmp_path: Path, sqs_endpoint_url: str) -> None:
    write_stack(tmp_path)
    async for quota_url in quotas(1.0):
        checks = await diagnose(
            "smoke", tmp_path, {"*": sqs_endpoint_url, "service-quotas": quota_url}
        )
    assert [c.status for c in checks] == ["ok"] * 5
    assert exit_code(checks) == 0


async def test_a_quota_that_cant_be_read_is_a_warning(
    tmp_path: Path, sqs_endpoint_url: str
) -> None:
    # moto does not implement ListServiceQuotas (it answers 500): not a failure
    write_stack(tmp_path)
    checks = by_name(await diagnose("smoke", tmp_path, {"*": sqs_endpoint_url}))
    assert checks["endpoint quota"].status == "warn"
    assert checks["endpoint quota"].detail.startswith("could not check")
    assert exit_code(list(checks.values())) == 0


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


async def test_bedrock_model_that_cannot_be_checked_is_a_warning(
    tmp_path: Path, sqs_endpoint_url: str
) -> None:
    write_stack(tmp_path, **{"rag:model": {"source": "bedrock"}})
    checks = by_name(await diagnose("smoke", tmp_path, {"*": sqs_endpoint_url}))
    assert "endpoint quota" not in checks and "model licence" in checks
    assert checks["bedrock model"].status in ("warn", "ok", "fail")
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


def test_rag_doctor_exits_0_when_nothing_failed(
    tmp_path: Path, sqs_endpoint_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from typer.testing import CliRunner

    from cli.main import app

    write_stack(tmp_path, **{"rag:model": {"source": "bedrock"}})
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("RAG_AWS__ENDPOINT_URL", sqs_endpoint_url)
    result = CliRunner().invoke(app, ["doctor", "--stack", "smoke"])
    # moto can't answer for Bedrock: a warning, not a failure
    assert result.exit_code == 0, result.output
    assert "warn bedrock model" in result.output


async def test_api_logs_without_the_account_role_fail_with_the_fix(
    tmp_path: Path, sqs_endpoint_url: str
) -> None:
    # moto's API Gateway account has no CloudWatch role set (read only: it is account-wide)
    write_stack(tmp_path, **{"rag:model": {"source": "bedrock"}, "rag:chat": {"apiLogs": True}})
    checks = by_name(await diagnose("smoke", tmp_path, {"*": sqs_endpoint_url}))
    logs = checks["api gateway logs"]
    assert logs.status == "fail"
    assert "docs/deploy.md" in logs.fix and "rag:chat.apiLogs false" in logs.fix
