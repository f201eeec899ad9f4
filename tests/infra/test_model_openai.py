"""model.source "openai": config checks, the API key in Secrets Manager, the query env."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from infra import env
from infra.config import StackConfig, load_config, parse_config, validate_stack_values
from tests.infra.mocks import REGION, deploy, fake_artifacts, is_secret
from tests.infra.test_policies_audit import role_policies
from tests.infra.variants import OPENAI_API_KEY, STATIC_TOKEN

OPENAI = {
    "source": "openai",
    "openaiBaseUrl": "https://llm.example.com/v1",
    "openaiModel": "llama3.1:8b-instruct",
}


def model_config(**model: Any) -> StackConfig:
    return parse_config({"region": REGION, "model": {**OPENAI, **model}})


def test_https_base_url_and_model_are_accepted() -> None:
    config = model_config()
    assert (config.model.openai_base_url, config.model.openai_model) == (
        "https://llm.example.com/v1",
        "llama3.1:8b-instruct",
    )


@pytest.mark.parametrize(
    ("model", "fix"),
    [
        ({"openaiBaseUrl": None}, "rag:model.openaiBaseUrl https://HOST/v1"),
        ({"openaiModel": None}, "rag:model.openaiModel MODEL"),
        ({"openaiBaseUrl": "http://10.0.0.5:8000/v1"}, "rag:model.openaiAllowHttp true"),
        ({"openaiBaseUrl": "llm.example.com/v1"}, "is not an http\\(s\\) URL"),
        ({"openaiBaseUrl": "ftp://llm.example.com/v1"}, "is not an http\\(s\\) URL"),
    ],
)
def test_a_bad_openai_config_is_refused_with_the_fix(model: dict[str, Any], fix: str) -> None:
    values = {**OPENAI, **model}
    values = {k: v for k, v in values.items() if v is not None}
    with pytest.raises(ValueError, match=fix):
        parse_config({"region": REGION, "model": values})


def test_plain_http_only_when_explicitly_allowed() -> None:
    config = model_config(openaiBaseUrl="http://10.0.0.5:8000/v1", openaiAllowHttp=True)
    assert config.model.openai_base_url == "http://10.0.0.5:8000/v1"


def test_openai_keys_with_another_source_are_refused() -> None:
    with pytest.raises(ValueError, match=r"only read with model\.source 'openai'"):
        parse_config({"region": REGION, "model": {"source": "bedrock", "openaiModel": "llama3.1"}})


def test_the_key_secret_with_another_source_is_refused() -> None:
    values = {
        "aws:region": REGION,
        "rag:model": {"source": "bedrock"},
        "rag:staticToken": "t",
        "rag:openaiApiKey": "sk",
    }
    with pytest.raises(ValueError, match="pulumi config rm rag:openaiApiKey"):
        validate_stack_values(values)
    values["rag:model"] = OPENAI
    assert validate_stack_values(values).model.source == "openai"


def test_load_config_reads_the_key_as_a_secret(
    monkeypatch: pytest.MonkeyPatch, fresh_loop: None
) -> None:
    values = {
        "aws:region": REGION,
        "rag:model": json.dumps(OPENAI),
        "rag:staticToken": "t0ken",
        "rag:openaiApiKey": OPENAI_API_KEY,
    }
    monkeypatch.setenv("PULUMI_CONFIG", json.dumps(values))
    monkeypatch.setenv(
        "PULUMI_CONFIG_SECRET_KEYS", json.dumps(["rag:staticToken", "rag:openaiApiKey"])
    )
    config, secrets = load_config()
    assert config.model.source == "openai"
    assert secrets.openai_api_key is not None


def env_values(inputs: dict[str, Any]) -> list[str]:
    return [str(v) for v in inputs.get("environment", {}).get("variables", {}).values()]


def test_the_key_goes_to_secrets_manager_never_to_an_environment(tmp_path: Path) -> None:
    config = model_config()
    d = deploy(
        config, fake_artifacts(tmp_path), static_token=STATIC_TOKEN, openai_api_key=OPENAI_API_KEY
    )
    secret = d.one("aws:secretsmanager/secret:Secret")
    version = d.one("aws:secretsmanager/secretVersion:SecretVersion")
    assert version.inputs["secretId"] == secret.state["id"]
    assert version.inputs["secretString"] == OPENAI_API_KEY
    assert is_secret(version.raw_inputs["secretString"])  # encrypted in Pulumi state
    for function in d.of_type("aws:lambda/function:Function"):
        assert not any(OPENAI_API_KEY in value for value in env_values(function.inputs))
    query_env = d.one("aws:lambda/function:Function", "chat-query").inputs["environment"]
    assert query_env["variables"][env.MODEL_OPENAI_KEY_SECRET] == secret.state["arn"]
    assert not d.of_type("aws:sagemaker/endpoint:Endpoint")


def test_without_a_key_there_is_no_secret_and_no_grant(tmp_path: Path) -> None:
    d = deploy(model_config(), fake_artifacts(tmp_path), static_token=STATIC_TOKEN)
    assert not d.of_type("aws:secretsmanager/secret:Secret")
    query = d.one("aws:lambda/function:Function", "chat-query").inputs
    variables = query["environment"]["variables"]
    assert variables[env.MODEL_BACKEND] == "openai"
    assert env.MODEL_OPENAI_KEY_SECRET not in variables
    query_grants = role_policies(d)["query-role"]
    assert "ReadModelApiKey" not in query_grants and "InvokeChatModel" not in query_grants
