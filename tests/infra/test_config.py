"""Pulumi.yaml, Pulumi.dev.yaml and reading the stack config."""

from __future__ import annotations

import json
from typing import Any

import pytest
import yaml

from infra.config import StackConfig, StackSecrets, load_config, validate_stack_values
from infra.lambda_artifacts import REPO_ROOT


def test_project_file() -> None:
    project = yaml.safe_load((REPO_ROOT / "Pulumi.yaml").read_text())
    assert project["name"] == "rag"  # the config namespace infra.config reads
    assert project["main"] == "infra/"
    assert project["runtime"]["name"] == "python"
    assert project["runtime"]["options"]["virtualenv"] == ".venv"
    assert (REPO_ROOT / "infra" / "__main__.py").exists()


def dev_stack_config() -> dict[str, Any]:
    config: dict[str, Any] = yaml.safe_load((REPO_ROOT / "Pulumi.dev.yaml").read_text())["config"]
    return config


def test_dev_stack_documents_the_real_defaults() -> None:
    raw = dev_stack_config()
    sections = {k.removeprefix("rag:"): v for k, v in raw.items() if k.startswith("rag:")}
    config = StackConfig.model_validate({"region": raw["aws:region"], **sections})
    # Some defaults depend on the stack (dev scales to zero): compare what dev deploys.
    assert config.resolved_for("dev") == StackConfig(region=raw["aws:region"]).resolved_for("dev")
    # Every section of the config model is written out (rag:vpc, rag:protect as comments).
    documented = set(sections) | {"vpc", "protect"}
    assert documented == {f.alias or name for name, f in StackConfig.model_fields.items()} - {
        "region"
    }


def set_stack_config(
    monkeypatch: pytest.MonkeyPatch, values: dict[str, Any], secrets: tuple[str, ...] = ()
) -> None:
    encoded = {k: v if isinstance(v, str) else json.dumps(v) for k, v in values.items()}
    monkeypatch.setenv("PULUMI_CONFIG", json.dumps(encoded))
    monkeypatch.setenv("PULUMI_CONFIG_SECRET_KEYS", json.dumps(list(secrets)))


def test_load_config_reads_sections_and_secrets(
    monkeypatch: pytest.MonkeyPatch, fresh_loop: None
) -> None:
    set_stack_config(
        monkeypatch,
        {
            "aws:region": "eu-central-1",
            "rag:indexer": {"timeoutSeconds": 200},
            "rag:model": {"source": "bedrock"},
            "rag:staticToken": "t0ken",
        },
        secrets=("rag:staticToken",),
    )
    config, secrets = load_config()
    assert config.region == "eu-central-1"
    assert config.indexer.timeout_seconds == 200
    assert config.model.source == "bedrock"
    assert isinstance(secrets, StackSecrets) and secrets.static_token is not None


def test_token_auth_without_a_token_says_how_to_set_one(
    monkeypatch: pytest.MonkeyPatch, fresh_loop: None
) -> None:
    set_stack_config(monkeypatch, {"aws:region": "us-east-1", "rag:model": {"source": "bedrock"}})
    with pytest.raises(ValueError, match="pulumi config set --secret rag:staticToken"):
        load_config()


@pytest.mark.parametrize(
    "values",
    [
        {"rag:indexer": {"timeoutSecs": 100}},  # typo: unknown keys are refused
        {"rag:search": {"network": "vpc"}},  # vpc without rag:vpc
        {"rag:model": {"source": "existing"}},  # no endpoint name
        {"rag:ingest": {"retentionSeconds": 1209600, "dlqRetentionSeconds": 1209600}},
    ],
)
def test_invalid_config_is_refused(
    monkeypatch: pytest.MonkeyPatch, fresh_loop: None, values: dict[str, Any]
) -> None:
    set_stack_config(monkeypatch, {"aws:region": "us-east-1", **values})
    with pytest.raises(ValueError, match="invalid stack config"):
        load_config()


def test_no_infra_module_shadows_an_installed_one() -> None:
    """Pulumi puts infra/ first on sys.path: infra/packaging.py would hide `packaging`."""
    import importlib.util
    import sys

    names = {p.stem for p in (REPO_ROOT / "infra").glob("*.py")} - {"__init__", "__main__"}
    names |= {
        p.name for p in (REPO_ROOT / "infra").iterdir() if p.is_dir() and p.name != "__pycache__"
    }
    shadowed = {n for n in names if n in sys.stdlib_module_names or importlib.util.find_spec(n)}
    assert shadowed == set()


def test_nmslib_engine_is_refused_before_any_resource() -> None:
    """Issue #26 item 3: the access filter sits inside knn.filter (lucene/faiss only)."""
    values = {
        "aws:region": "eu-west-1",
        "rag:search": {"engine": "nmslib"},
        "rag:chat": {"auth": "none"},
    }
    with pytest.raises(ValueError) as refused:
        validate_stack_values(values, check_eula=False)
    message = str(refused.value)
    assert message.startswith("invalid stack config:")
    assert "rag:search.engine" in message and "knn.filter" in message
    assert "pulumi config set --path rag:search.engine faiss" in message
    faiss = {**values, "rag:search": {"engine": "faiss"}}
    assert validate_stack_values(faiss, check_eula=False).search.engine == "faiss"


def test_bedrock_default_is_current_and_the_family_follows_the_model() -> None:
    """Issue #26 item 7: Llama 2 chat is past Bedrock's end of life."""
    bedrock = StackConfig.model_validate({"model": {"source": "bedrock"}}).model
    assert "llama2" not in bedrock.bedrock_model_id
    assert bedrock.family == "llama3"
    llama2 = StackConfig.model_validate(
        {"model": {"source": "bedrock", "bedrockModelId": "meta.llama2-13b-chat-v1"}}
    ).model
    assert llama2.family == "llama2"
    # SageMaker's JumpStart default is Llama 2 chat; a Llama 3 JumpStart id reads Llama 3.
    assert StackConfig().model.family == "llama2"
    jumpstart3 = {"jumpstartModelId": "meta-textgeneration-llama-3-8b-instruct"}
    assert StackConfig.model_validate({"model": jumpstart3}).model.family == "llama3"
    mismatch = {
        "source": "bedrock",
        "bedrockModelId": "meta.llama2-13b-chat-v1",
        "family": "llama3",
    }
    with pytest.raises(ValueError, match="does not match Bedrock model"):
        validate_stack_values(
            {"aws:region": "us-east-1", "rag:model": mismatch, "rag:chat": {"auth": "none"}}
        )


def test_classic_collection_gives_the_indexer_time_to_wait_out_its_refresh() -> None:
    # GIVEN a stack on a classic collection (60 s refresh, settle 90 s) with no timeout set
    classic = StackConfig.model_validate({"search": {"collectionKind": "classic"}})
    # THEN the indexer's default timeout leaves room for the settle wait and the work
    assert classic.resolved_for("prod").indexer.timeout_seconds == 300
    # and a NextGen stack keeps the short default (10 s refresh, settle 15 s)
    assert StackConfig().resolved_for("dev").indexer.timeout_seconds == 120


def test_classic_collection_refuses_an_indexer_timeout_shorter_than_its_settle() -> None:
    raw = {"search": {"collectionKind": "classic"}, "indexer": {"timeoutSeconds": 120}}
    with pytest.raises(ValueError, match=r"indexer\.timeoutSeconds 120 is too short.*classic"):
        StackConfig.model_validate(raw).resolved_for("prod")
