"""Issue #12: what a first `pulumi up` on a fresh account needs, under Pulumi mocks.

Config mistakes fail at load (before any resource is declared), each with its
fix; the chat API survives a failed model endpoint; no secret reaches the
model; the worker's asynchronous invocations are never retried; stateful
resources are protected outside dev.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from infra.config import StackConfig, load_config
from infra.lambda_artifacts import REPO_ROOT
from tests.infra.mocks import REGION, Deployment, RecordingMocks, deploy, fake_artifacts
from tests.infra.test_config import set_stack_config
from tests.infra.test_policies_audit import role_policies
from tests.infra.variants import STATIC_TOKEN

FUNCTION = "aws:lambda/function:Function"
ENDPOINT = "aws:sagemaker/endpoint:Endpoint"
STATEFUL = {
    "search-collection": "aws:opensearch/serverlessCollection:ServerlessCollection",
    "ingest-documents": "aws:s3/bucket:Bucket",
    "ingest-status": "aws:dynamodb/table:Table",
    "chat-state": "aws:dynamodb/table:Table",
}


def stack_config(**sections: Any) -> StackConfig:
    return StackConfig.model_validate({"region": REGION, "model": {"acceptEula": True}, **sections})


# ---- every config mistake fails at load, with the fix -------------------------

BASE = {"aws:region": "us-east-1", "rag:staticToken": "t0ken"}
SAGEMAKER = {"rag:model": {"acceptEula": True}}


@pytest.mark.parametrize(
    ("values", "fix"),
    [
        # 5: python3.11 is Amazon Linux 2: the wheels can't load there.
        (
            {**SAGEMAKER, "rag:lambda": {"pythonVersion": "3.11"}},
            "pulumi config set --path rag:lambda.pythonVersion 3.12",
        ),
        # an unknown top-level key would otherwise be ignored silently
        ({**SAGEMAKER, "rag:indexr": {"timeoutSeconds": 100}}, "pulumi config rm rag:indexr"),
        # an unknown nested key
        (
            {"rag:model": {"acceptEula": True, "instanceTyp": "ml.g5.2xlarge"}},
            "pulumi config rm --path rag:model.instanceTyp",
        ),
        # 2: the old Hugging Face token is refused, not kept around
        ({**SAGEMAKER, "rag:hfToken": "hf_x"}, "pulumi config rm rag:hfToken"),
        # an unknown instance type
        (
            {"rag:model": {"acceptEula": True, "instanceType": "ml.g5.3xlarge"}},
            "pulumi config set --path rag:model.instanceType ml.g5.2xlarge",
        ),
        # 2: JumpStart's Llama 2 needs the licence accepted, explicitly
        ({}, "pulumi config set --path rag:model.acceptEula true"),
        ({"rag:model": {"weights": "s3"}}, "rag:model.weightsS3Uri s3://BUCKET/PREFIX/"),
        # 8: the account-wide role only serves the stage's logs
        (
            {**SAGEMAKER, "rag:chat": {"accountLogRole": "create"}},
            "pulumi config set --path rag:chat.apiLogs true",
        ),
    ],
)
def test_config_mistakes_fail_at_load_with_the_fix(
    monkeypatch: pytest.MonkeyPatch, fresh_loop: None, values: dict[str, Any], fix: str
) -> None:
    set_stack_config(monkeypatch, {**BASE, **values}, secrets=("rag:staticToken", "rag:hfToken"))
    with pytest.raises(ValueError) as raised:
        load_config()
    assert fix in str(raised.value)


def test_missing_token_fails_at_load(monkeypatch: pytest.MonkeyPatch, fresh_loop: None) -> None:
    set_stack_config(monkeypatch, {"aws:region": "us-east-1", **SAGEMAKER})
    with pytest.raises(ValueError, match="pulumi config set --secret rag:staticToken"):
        load_config()


@pytest.mark.parametrize("version", ["3.12", "3.13"])
def test_supported_runtimes_load(
    monkeypatch: pytest.MonkeyPatch, fresh_loop: None, version: str
) -> None:
    set_stack_config(
        monkeypatch,
        {**BASE, **SAGEMAKER, "rag:lambda": {"pythonVersion": version}, "rag:protect": "true"},
        secrets=("rag:staticToken",),
    )
    config, _ = load_config()
    assert config.lambda_.python_version == version
    assert config.protect is True


# ---- 1: the chat API does not wait on the model endpoint ------------------------


def test_a_failed_endpoint_leaves_the_chat_api_standing(tmp_path: Path) -> None:
    # GIVEN an account where the endpoint can't be created (GPU quota 0)
    mocks = RecordingMocks(failing=frozenset({ENDPOINT}))
    config = stack_config()
    # WHEN the stack is deployed
    with pytest.raises(Exception, match="mocked"):
        deploy(config, fake_artifacts(tmp_path), static_token=STATIC_TOKEN, mocks=mocks)
    # THEN the query function, its integration, routes and stage exist all the same,
    # configured with the endpoint's name (known before the endpoint exists)
    created = {r.typ for r in mocks.resources}
    for typ in (
        "aws:apigatewayv2/integration:Integration",
        "aws:apigatewayv2/route:Route",
        "aws:apigatewayv2/stage:Stage",
        "aws:lambda/functionEventInvokeConfig:FunctionEventInvokeConfig",
    ):
        assert typ in created, typ
    query = next(r for r in mocks.resources if r.typ == FUNCTION and r.name == "chat-query")
    assert query.inputs["environment"]["variables"]["RAG_MODEL__ENDPOINT_NAME"] == "rag-dev-llm"
    routes = [r for r in mocks.resources if r.typ == "aws:apigatewayv2/route:Route"]
    assert len(routes) == 3


def test_invoke_permission_names_the_endpoint_by_arn_from_its_name(tmp_path: Path) -> None:
    d = deploy(stack_config(), fake_artifacts(tmp_path), static_token=STATIC_TOKEN)
    statement = role_policies(d)["query-role"]["InvokeChatModel"]
    assert statement["Resource"] == [
        f"arn:aws:sagemaker:{REGION}:123456789012:endpoint/rag-dev-llm",
        # dev scales to zero: the model is the endpoint's inference component
        f"arn:aws:sagemaker:{REGION}:123456789012:inference-component/rag-dev-llm-ic",
    ]
    assert d.outputs["model_endpoint_name"] == "rag-dev-llm"
    assert d.outputs["model_inference_component"] == "rag-dev-llm-ic"


# ---- 6: the worker's async invocations are never retried ------------------------


def test_worker_invocations_are_not_retried_and_expire_fast(tmp_path: Path) -> None:
    d = deploy(stack_config(), fake_artifacts(tmp_path), static_token=STATIC_TOKEN)
    config = d.one("aws:lambda/functionEventInvokeConfig:FunctionEventInvokeConfig").inputs
    assert config["functionName"] == d.one(FUNCTION, "chat-query").state["name"]
    assert config["maximumRetryAttempts"] == 0
    assert 60 <= config["maximumEventAgeInSeconds"] <= 120  # Lambda's minimum is 60


# ---- 7: versioned objects --------------------------------------------------------


def test_indexer_may_read_object_versions(tmp_path: Path) -> None:
    d = deploy(stack_config(), fake_artifacts(tmp_path), static_token=STATIC_TOKEN)
    read = role_policies(d)["indexer-role"]["ReadDocuments"]
    assert {"s3:GetObject", "s3:GetObjectVersion"} <= set(read["Action"])


# ---- 8: account-wide settings are left alone by default -------------------------


def test_default_stack_leaves_the_account_log_role_alone(tmp_path: Path) -> None:
    d = deploy(stack_config(), fake_artifacts(tmp_path), static_token=STATIC_TOKEN)
    assert not d.of_type("aws:apigateway/account:Account")
    stage = d.one("aws:apigatewayv2/stage:Stage").inputs
    assert "accessLogSettings" not in stage


# ---- 11: stateful resources are protected outside dev ---------------------------


@pytest.mark.parametrize(
    ("stack", "protect", "expected"),
    [("dev", None, False), ("prod", None, True), ("dev", True, True), ("prod", False, False)],
)
def test_stateful_resources_are_protected_outside_dev(
    tmp_path: Path, stack: str, protect: bool | None, expected: bool
) -> None:
    config = stack_config(protect=protect) if protect is not None else stack_config()
    d: Deployment = deploy(config, fake_artifacts(tmp_path), static_token=STATIC_TOKEN, stack=stack)
    for name, typ in STATEFUL.items():
        d.one(typ, name)
        assert (name in d.protected) == expected, name
    # Nothing stateless is protected: functions and roles must stay replaceable.
    assert d.protected <= set(STATEFUL)
    assert d.outputs["protected"] == ("true" if expected else "false")


# ---- 9: the VPC advice -----------------------------------------------------------


def test_vpc_advice_says_nat_and_lists_the_lambda_endpoint() -> None:
    text = (REPO_ROOT / "Pulumi.dev.yaml").read_text()
    advice = text[text.index("Required when rag:search.network") : text.index("# rag:vpc:")]
    assert "NAT" in advice
    assert "`lambda`" in advice  # the self-invoke
    assert "never `execute-api`" in advice
