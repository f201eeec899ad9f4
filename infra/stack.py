"""Wire the components into one stack; tests call :func:`build_stack` under Pulumi mocks."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import pulumi
import pulumi_aws as aws

from infra.components.artifacts import ArtifactStore, ArtifactStoreArgs
from infra.components.auth import AuthArgs, ConnectAuth
from infra.components.chat_api import ChatApi, ChatApiArgs
from infra.components.indexer import Indexer, IndexerArgs
from infra.components.ingest import Ingest, IngestArgs
from infra.components.lambdas import lambda_role, vpc_statements
from infra.components.model import Model, ModelArgs
from infra.components.observability import Observability, ObservabilityArgs
from infra.components.search import Search, SearchArgs
from infra.config import StackConfig, StackSecrets, name_safe, resource_prefix
from infra.lambda_artifacts import LambdaArtifact

INDEXER_ARTIFACT = "indexer"
QUERY_ARTIFACT = "query"
AUTHORIZER_ARTIFACT = "authorizer"
# Security policy names ("<collection>-access") are limited to 32 characters.
MAX_COLLECTION_NAME = 25


@dataclass(frozen=True)
class StackResources:
    search: Search
    ingest: Ingest
    indexer: Indexer
    model: Model
    auth: ConnectAuth | None
    chat_api: ChatApi
    observability: Observability
    artifacts: ArtifactStore
    outputs: dict[str, pulumi.Input[str]] = field(default_factory=dict)


def collection_name(config: StackConfig, stack: str) -> str:
    return name_safe(f"{config.search.collection_name}-{stack}", MAX_COLLECTION_NAME)


def build_stack(
    config: StackConfig,
    artifacts: Mapping[str, LambdaArtifact],
    secrets: StackSecrets | None = None,
) -> StackResources:
    secrets = secrets or StackSecrets()
    stack = pulumi.get_stack()
    # Per-stack defaults ("dev" scales to zero) are settled once, here.
    config = config.resolved_for(stack)
    protect = config.protect_for(stack)
    account = aws.get_caller_identity_output().account_id
    partition = aws.get_partition_output().partition
    store = ArtifactStore("artifacts", ArtifactStoreArgs(artifacts=artifacts))
    indexer_role = lambda_role("indexer-role", None)
    query_role = lambda_role("query-role", None)
    vpc = vpc_statements(config, account, partition)

    search = Search(
        "search",
        SearchArgs(
            collection_name=collection_name(config, stack),
            search=config.search,
            vpc=config.vpc,
            indexer_role_arn=indexer_role.arn,
            query_role_arn=query_role.arn,
            protect=protect,
        ),
    )
    endpoint = search.collection.collection_endpoint
    ingest = Ingest(
        "ingest",
        IngestArgs(
            ingest=config.ingest,
            indexer_timeout_seconds=config.indexer.timeout_seconds,
            batching_window_seconds=config.indexer.batching_window_seconds,
            protect=protect,
        ),
    )
    indexer = Indexer(
        "indexer",
        IndexerArgs(
            config=config,
            code=store.code[INDEXER_ARTIFACT],
            role=indexer_role,
            ingest=ingest,
            collection_arn=search.collection.arn,
            collection_endpoint=endpoint,
            vpc_statements=vpc,
        ),
    )
    model = Model(
        "model",
        ModelArgs(
            config=config,
            endpoint_name=f"{resource_prefix(pulumi.get_project(), stack)}-llm",
            account=account,
            partition=partition,
            openai_api_key=secrets.openai_api_key,
        ),
    )
    auth = None
    if config.chat.auth != "none":
        auth = ConnectAuth(
            "connect-auth",
            AuthArgs(
                config=config,
                code=store.code[AUTHORIZER_ARTIFACT],
                static_token=secrets.static_token,
                access_tokens=secrets.access_tokens,
            ),
        )
    chat = ChatApi(
        "chat",
        ChatApiArgs(
            config=config,
            code=store.code[QUERY_ARTIFACT],
            role=query_role,
            auth=auth,
            collection_arn=search.collection.arn,
            collection_endpoint=endpoint,
            model_environment=model.environment,
            model_statements=model.invoke_statements,
            vpc_statements=vpc,
            account=account,
            partition=partition,
            protect=protect,
        ),
    )
    functions = {"indexer": indexer.function.name, "query": chat.function.name}
    if auth is not None:
        functions["authorizer"] = auth.function.name
    observability = Observability(
        "observability",
        ObservabilityArgs(
            config=config.observability,
            queue_name=ingest.queue.name,
            dlq_name=ingest.dead_letter_queue.name,
            function_names=functions,
            reconcile_function=(
                indexer.function.name if config.indexer.reconcile_schedule else None
            ),
            worker_function=chat.function.name,
        ),
    )
    # Last: a refused CreateEndpoint (GPU quota 0) must not keep anything else
    # from being created (Pulumi starts no new operation after a failure).
    model.create_endpoint(
        after=[r for r in (search, ingest, indexer, auth, chat, observability, store) if r]
    )
    outputs: dict[str, pulumi.Input[str]] = {
        "region": config.region,
        "websocket_url": chat.stage.invoke_url,
        "ingest_queue_url": ingest.queue.url,
        "dead_letter_queue_url": ingest.dead_letter_queue.url,
        "ingest_bucket": ingest.bucket.bucket,
        "status_table": ingest.status_table.name,
        "indexer_function": indexer.function.name,
        "collection_endpoint": endpoint,
        "protected": "true" if protect else "false",
        "collection_kind": config.search.kind,
    }
    if model.endpoint_name is not None:
        # rag doctor / smoke read it to tell "endpoint still creating" from a broken one.
        outputs["model_endpoint_name"] = model.endpoint_name
    if model.inference_component_name is not None:
        outputs["model_inference_component"] = model.inference_component_name
    if auth is not None and auth.user_pool is not None and auth.user_pool_client is not None:
        outputs["cognito_user_pool_id"] = auth.user_pool.id
        outputs["cognito_client_id"] = auth.user_pool_client.id
    return StackResources(
        search=search,
        ingest=ingest,
        indexer=indexer,
        model=model,
        auth=auth,
        chat_api=chat,
        observability=observability,
        artifacts=store,
        outputs=outputs,
    )
