"""The environment the stack gives the functions is the one the services read.

``shared.settings`` ignores unknown ``RAG_*`` variables, so a misspelt name in
infra/env.py would silently fall back to a local default; this test loads the
services' real settings from the stack's variables and checks every value landed.
"""

from __future__ import annotations

from collections.abc import Mapping

import pytest

from infra import env
from infra.config import StackConfig
from services.query.transports import tokens
from shared.settings import Settings, load_settings

VALUES = {
    "collection_endpoint": "https://c1.eu-west-1.aoss.amazonaws.com",
    "queue_url": "https://sqs.eu-west-1.amazonaws.com/1/ingest",
    "dlq_url": "https://sqs.eu-west-1.amazonaws.com/1/dlq",
    "bucket": "docs-bucket",
    "status_table": "status-table",
}


def apply(monkeypatch: pytest.MonkeyPatch, variables: Mapping[str, object]) -> None:
    for key, value in variables.items():
        monkeypatch.setenv(key, str(value))


def test_indexer_environment_reaches_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    config = StackConfig(region="eu-west-1")
    apply(monkeypatch, env.indexer_environment(config, visibility_timeout=732, **VALUES))
    settings = load_settings()
    assert settings.aws.region == "eu-west-1"
    assert str(settings.data_dir).startswith("/tmp/")
    assert settings.index.backend == "opensearch"
    assert settings.index.opensearch_url == VALUES["collection_endpoint"]
    assert (settings.index.auth, settings.index.sigv4_service) == ("sigv4", "aoss")
    assert settings.index.index_name == config.search.index_name
    assert settings.index.engine == config.search.engine
    check_collection_kind(settings, "classic")
    assert settings.embedder.backend == "minilm"
    assert settings.queue.backend == "sqs"
    assert settings.queue.queue_url == VALUES["queue_url"]
    assert settings.queue.dlq_url == VALUES["dlq_url"]
    assert settings.queue.visibility_timeout_s == 732
    assert settings.queue.max_receive_count == config.ingest.max_receive_count
    assert settings.ingest.bucket == VALUES["bucket"]
    assert (settings.status.backend, settings.status.table) == ("dynamodb", "status-table")


def check_collection_kind(settings: Settings, kind: str) -> None:
    """The settle time follows the stack's collection kind (RAG_INDEX__COLLECTION_KIND)."""
    assert settings.index.collection_kind == kind


def test_dev_stack_tells_both_functions_its_collection_kind(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    config = StackConfig(region="eu-west-1").resolved_for("dev")
    indexer = env.indexer_environment(config, visibility_timeout=732, **VALUES)
    query = env.query_environment(config, VALUES["collection_endpoint"], {}, "t")
    assert indexer[env.INDEX_COLLECTION_KIND] == query[env.INDEX_COLLECTION_KIND] == "nextgen"
    apply(monkeypatch, indexer)
    check_collection_kind(load_settings(), "nextgen")
    prod = StackConfig(region="eu-west-1").resolved_for("prod")
    assert env.common_environment(prod, "https://c")[env.INDEX_COLLECTION_KIND] == "classic"


def test_a_collection_that_scales_to_zero_gets_time_to_wake(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # AWS: the first request after idle takes 10-30 s; the default 30 s timeout is the edge
    dev = StackConfig(region="eu-west-1").resolved_for("dev")
    apply(monkeypatch, env.query_environment(dev, VALUES["collection_endpoint"], {}, "t"))
    assert load_settings().index.request_timeout_s >= 2 * 30
    prod = StackConfig(region="eu-west-1").resolved_for("prod")
    assert env.INDEX_REQUEST_TIMEOUT not in env.common_environment(prod, "https://c")


OPENAI_MODEL = {
    "source": "openai",
    "openaiBaseUrl": "https://llm.example.com/v1",
    "openaiModel": "llama3.1:8b-instruct",
}
KEY_ARN = "arn:aws:secretsmanager:us-east-1:123456789012:secret:model-openai-api-key-AbCdEf"


@pytest.mark.parametrize("source", ["sagemaker", "bedrock", "openai"])
def test_query_environment_reaches_settings(monkeypatch: pytest.MonkeyPatch, source: str) -> None:
    model = OPENAI_MODEL if source == "openai" else {"source": source}
    config = StackConfig.model_validate({"model": model})
    endpoint = None if source == "openai" else "llama2-endpoint"
    model_env = env.model_environment(config, endpoint, KEY_ARN if source == "openai" else None)
    variables = env.query_environment(
        config, VALUES["collection_endpoint"], model_env, "state-table"
    )
    apply(monkeypatch, variables)
    settings = load_settings()
    assert settings.query.state_table == "state-table"
    assert settings.model.backend == source
    assert settings.model.family == config.model.family
    if source == "openai":
        assert settings.model.openai_base_url == "https://llm.example.com/v1"
        assert settings.model.openai_model == "llama3.1:8b-instruct"
        assert settings.model.openai_api_key_secret_arn == KEY_ARN
        assert settings.model.openai_api_key is None  # the key itself is never in the env
        assert settings.model.prompt_source_tokens is None  # whole chunks for deployed models
    elif source == "sagemaker":
        assert settings.model.endpoint_name == "llama2-endpoint"
        assert settings.model.container == "tgi"
        assert settings.model.inference_component_name is None
    else:
        assert settings.model.bedrock_model_id == config.model.bedrock_model_id


def test_authorizer_variable_names_match() -> None:
    assert env.AUTH_MODE == tokens.MODE_ENV
    assert env.AUTH_TOKEN_SHA256 == tokens.TOKEN_SHA256_ENV
    assert env.AUTH_COGNITO_ISSUER == tokens.COGNITO_ISSUER_ENV
    assert env.AUTH_COGNITO_CLIENT_ID == tokens.COGNITO_CLIENT_ID_ENV


def test_inference_component_reaches_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    config = StackConfig.model_validate({"model": {"scaleToZero": True}}).resolved_for("dev")
    model_env = env.model_environment(config, "rag-dev-llm", inference_component="rag-dev-llm-ic")
    apply(monkeypatch, env.query_environment(config, VALUES["collection_endpoint"], model_env, "t"))
    settings = load_settings()
    assert settings.model.endpoint_name == "rag-dev-llm"
    assert settings.model.inference_component_name == "rag-dev-llm-ic"
