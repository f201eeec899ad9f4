"""Every environment variable the stack hands to the Lambda functions, in one place.

The services read them with pydantic-settings (prefix ``RAG_``, nested ``__``,
see ``shared/settings.py``); the authorizer reads its own ``RAG_AUTH__*`` keys
(see ``services/query/transports/authorizer.py``). Lambda supplies ``AWS_REGION`` itself,
but ``shared`` defaults its region to us-east-1, so we pass it explicitly.
"""

from __future__ import annotations

from collections.abc import Mapping

import pulumi

from infra.config import StackConfig

DATA_DIR = "RAG_DATA_DIR"
LOG_LEVEL = "RAG_LOG_LEVEL"
AWS_REGION = "RAG_AWS__REGION"
INDEX_BACKEND = "RAG_INDEX__BACKEND"
INDEX_URL = "RAG_INDEX__OPENSEARCH_URL"
INDEX_AUTH = "RAG_INDEX__AUTH"
INDEX_SIGV4_SERVICE = "RAG_INDEX__SIGV4_SERVICE"
INDEX_NAME = "RAG_INDEX__INDEX_NAME"
INDEX_ENGINE = "RAG_INDEX__ENGINE"
# classic | nextgen (the stack's collection); the services' settle time follows it.
INDEX_COLLECTION_KIND = "RAG_INDEX__COLLECTION_KIND"
INDEX_REQUEST_TIMEOUT = "RAG_INDEX__REQUEST_TIMEOUT_S"
# A NextGen collection at 0 OCU answers its first request 10-30 s late (AWS): the
# client's timeout (30 s by default) must not end that request.
WAKING_INDEX_TIMEOUT_S = 60
EMBEDDER_BACKEND = "RAG_EMBEDDER__BACKEND"
MODEL_BACKEND = "RAG_MODEL__BACKEND"
MODEL_FAMILY = "RAG_MODEL__FAMILY"
MODEL_CONTAINER = "RAG_MODEL__CONTAINER"
MODEL_ENDPOINT_NAME = "RAG_MODEL__ENDPOINT_NAME"
# Scale to zero: the inference component hosting the model on that endpoint.
MODEL_INFERENCE_COMPONENT = "RAG_MODEL__INFERENCE_COMPONENT_NAME"
MODEL_BEDROCK_ID = "RAG_MODEL__BEDROCK_MODEL_ID"
MODEL_OPENAI_BASE_URL = "RAG_MODEL__OPENAI_BASE_URL"
MODEL_OPENAI_MODEL = "RAG_MODEL__OPENAI_MODEL"
# The ARN of the Secrets Manager secret holding the key, never the key itself.
MODEL_OPENAI_KEY_SECRET = "RAG_MODEL__OPENAI_API_KEY_SECRET_ARN"
QUEUE_BACKEND = "RAG_QUEUE__BACKEND"
QUEUE_URL = "RAG_QUEUE__QUEUE_URL"
QUEUE_VISIBILITY = "RAG_QUEUE__VISIBILITY_TIMEOUT_S"
QUEUE_MAX_RECEIVE = "RAG_QUEUE__MAX_RECEIVE_COUNT"
QUEUE_DLQ_URL = "RAG_QUEUE__DLQ_URL"
QUERY_STATE_TABLE = "RAG_QUERY__STATE_TABLE"
QUERY_ADMIN_GROUP = "RAG_QUERY__ADMIN_GROUP"
INGEST_BUCKET = "RAG_INGEST__BUCKET"
STATUS_BACKEND = "RAG_STATUS__BACKEND"
STATUS_TABLE = "RAG_STATUS__TABLE"

AUTH_MODE = "RAG_AUTH__MODE"
AUTH_TOKEN_SHA256 = "RAG_AUTH__TOKEN_SHA256"
AUTH_TOKENS = "RAG_AUTH__TOKENS"
AUTH_COGNITO_ISSUER = "RAG_AUTH__COGNITO_ISSUER"
AUTH_COGNITO_CLIENT_ID = "RAG_AUTH__COGNITO_CLIENT_ID"

# Lambda's only writable path; the embedded defaults are never used there.
LAMBDA_DATA_DIR = "/tmp/rag-data"

Env = Mapping[str, pulumi.Input[str]]


def common_environment(
    config: StackConfig, collection_endpoint: pulumi.Input[str]
) -> dict[str, pulumi.Input[str]]:
    variables: dict[str, pulumi.Input[str]] = {
        DATA_DIR: LAMBDA_DATA_DIR,
        LOG_LEVEL: config.lambda_.log_level,
        AWS_REGION: config.region,
        INDEX_BACKEND: "opensearch",
        INDEX_URL: collection_endpoint,
        INDEX_AUTH: "sigv4",
        INDEX_SIGV4_SERVICE: "aoss",
        INDEX_NAME: config.search.index_name,
        INDEX_ENGINE: config.search.engine,
        INDEX_COLLECTION_KIND: config.search.kind,
        EMBEDDER_BACKEND: "minilm",
    }
    if config.search.scales_to_zero:
        variables[INDEX_REQUEST_TIMEOUT] = str(WAKING_INDEX_TIMEOUT_S)
    return variables


def indexer_environment(
    config: StackConfig,
    collection_endpoint: pulumi.Input[str],
    queue_url: pulumi.Input[str],
    dlq_url: pulumi.Input[str],
    visibility_timeout: int,
    bucket: pulumi.Input[str],
    status_table: pulumi.Input[str],
) -> dict[str, pulumi.Input[str]]:
    return {
        **common_environment(config, collection_endpoint),
        QUEUE_BACKEND: "sqs",
        QUEUE_URL: queue_url,
        # Poison messages go to the DLQ directly, with their reason attached.
        QUEUE_DLQ_URL: dlq_url,
        QUEUE_VISIBILITY: str(visibility_timeout),
        QUEUE_MAX_RECEIVE: str(config.ingest.max_receive_count),
        INGEST_BUCKET: bucket,
        STATUS_BACKEND: "dynamodb",
        STATUS_TABLE: status_table,
    }


def query_environment(
    config: StackConfig,
    collection_endpoint: pulumi.Input[str],
    model_env: Mapping[str, pulumi.Input[str]],
    state_table: pulumi.Input[str],
) -> dict[str, pulumi.Input[str]]:
    # The state table lets $default, cancel and the self-invoked worker share state.
    return {
        **common_environment(config, collection_endpoint),
        **model_env,
        QUERY_STATE_TABLE: state_table,
        QUERY_ADMIN_GROUP: config.chat.admin_group,
    }


def model_environment(
    config: StackConfig,
    endpoint_name: pulumi.Input[str] | None,
    openai_key_secret_arn: pulumi.Input[str] | None = None,
    inference_component: str | None = None,
) -> dict[str, pulumi.Input[str]]:
    model = config.model
    if model.source == "openai":
        assert model.openai_base_url is not None and model.openai_model is not None
        variables: dict[str, pulumi.Input[str]] = {
            MODEL_BACKEND: "openai",
            MODEL_OPENAI_BASE_URL: model.openai_base_url,
            MODEL_OPENAI_MODEL: model.openai_model,
        }
        if openai_key_secret_arn is not None:
            variables[MODEL_OPENAI_KEY_SECRET] = openai_key_secret_arn
        return variables
    if model.source == "bedrock":
        return {
            MODEL_BACKEND: "bedrock",
            MODEL_BEDROCK_ID: model.bedrock_model_id,
            MODEL_FAMILY: model.family,
        }
    assert endpoint_name is not None
    variables = {
        MODEL_BACKEND: "sagemaker",
        MODEL_ENDPOINT_NAME: endpoint_name,
        MODEL_CONTAINER: "tgi",
        MODEL_FAMILY: model.family,
    }
    if inference_component is not None:
        variables[MODEL_INFERENCE_COMPONENT] = inference_component
    return variables
