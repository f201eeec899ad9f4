"""The whole stack under Pulumi mocks, for each config variant: wiring, numbers, auth, outputs.

IAM and OpenSearch Serverless policy audits live in test_policies_audit.py.
"""

from __future__ import annotations

import json
from typing import Any

from infra import env
from infra.config import StackConfig
from tests.infra.mocks import REGION, Deployment, is_secret
from tests.infra.variants import STATIC_TOKEN

FUNCTION = "aws:lambda/function:Function"
QUEUE = "aws:sqs/queue:Queue"
ROUTE = "aws:apigatewayv2/route:Route"


def functions(d: Deployment) -> dict[str, dict[str, Any]]:
    return {r.name: r.inputs for r in d.of_type(FUNCTION)}


def test_queues_sized_for_the_indexer(variant: tuple[StackConfig, Deployment]) -> None:
    config, d = variant
    queue, dlq = d.one(QUEUE, "ingest-queue"), d.one(QUEUE, "ingest-dlq")
    indexer = d.one(FUNCTION, "indexer-function").inputs
    assert queue.inputs["visibilityTimeoutSeconds"] >= 6 * indexer["timeout"]
    assert indexer["timeout"] == config.indexer.timeout_seconds
    for q in (queue, dlq):
        assert q.inputs["maxMessageSize"] == 1_048_576
        assert q.inputs["sqsManagedSseEnabled"] is True
    assert dlq.inputs["messageRetentionSeconds"] > queue.inputs["messageRetentionSeconds"]
    redrive = json.loads(queue.inputs["redrivePolicy"])
    assert redrive == {
        "deadLetterTargetArn": dlq.state["arn"],
        "maxReceiveCount": config.ingest.max_receive_count,
    }


def test_event_source_reports_batch_item_failures(variant: tuple[StackConfig, Deployment]) -> None:
    config, d = variant
    esm = d.one("aws:lambda/eventSourceMapping:EventSourceMapping", "indexer-sqs").inputs
    assert esm["eventSourceArn"] == d.one(QUEUE, "ingest-queue").state["arn"]
    assert esm["functionName"] == d.one(FUNCTION, "indexer-function").state["arn"]
    assert esm["functionResponseTypes"] == ["ReportBatchItemFailures"]
    assert esm["batchSize"] == config.indexer.batch_size
    assert esm["maximumBatchingWindowInSeconds"] == config.indexer.batching_window_seconds
    assert esm["scalingConfig"] == {"maximumConcurrency": config.indexer.max_concurrency}


def test_documents_bucket_private_encrypted_tls_only(
    variant: tuple[StackConfig, Deployment],
) -> None:
    _, d = variant
    for bucket in d.of_type("aws:s3/bucket:Bucket"):
        name = bucket.name
        block = d.one(
            "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock", f"{name}-public-access"
        )
        assert all(
            block.inputs[k] is True
            for k in (
                "blockPublicAcls",
                "blockPublicPolicy",
                "ignorePublicAcls",
                "restrictPublicBuckets",
            )
        )
        sse = d.one(
            "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration",
            f"{name}-encryption",
        )
        assert (
            sse.inputs["rules"][0]["applyServerSideEncryptionByDefault"]["sseAlgorithm"] == "AES256"
        )
        policy = d.one("aws:s3/bucketPolicy:BucketPolicy", f"{name}-tls-only").policy()
        (deny,) = policy["Statement"]
        assert deny["Effect"] == "Deny"
        assert deny["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
        assert bucket.state["arn"] in deny["Resource"]


def test_status_table(variant: tuple[StackConfig, Deployment]) -> None:
    _, d = variant
    table = d.one("aws:dynamodb/table:Table", "ingest-status").inputs
    assert table["hashKey"] == "doc_id"
    assert table["billingMode"] == "PAY_PER_REQUEST"
    assert table["serverSideEncryption"] == {"enabled": True}
    assert table["pointInTimeRecovery"] == {"enabled": True}


def test_service_environment_is_wired(variant: tuple[StackConfig, Deployment]) -> None:
    config, d = variant
    fns = functions(d)
    collection = d.one("aws:opensearch/serverlessCollection:ServerlessCollection").state
    indexer_env = fns["indexer-function"]["environment"]["variables"]
    query_env = fns["chat-query"]["environment"]["variables"]
    for variables in (indexer_env, query_env):
        assert variables[env.INDEX_URL] == collection["collectionEndpoint"]
        assert variables[env.INDEX_AUTH] == "sigv4"
        assert variables[env.INDEX_SIGV4_SERVICE] == "aoss"
        assert variables[env.AWS_REGION] == REGION
        assert variables[env.DATA_DIR].startswith("/tmp/")
    assert indexer_env[env.QUEUE_URL] == d.one(QUEUE, "ingest-queue").state["url"]
    assert (
        indexer_env[env.INGEST_BUCKET]
        == d.one("aws:s3/bucket:Bucket", "ingest-documents").state["bucket"]
    )
    assert (
        indexer_env[env.STATUS_TABLE]
        == d.one("aws:dynamodb/table:Table", "ingest-status").state["name"]
    )
    assert indexer_env[env.QUEUE_DLQ_URL] == d.one(QUEUE, "ingest-dlq").state["url"]
    state = d.one("aws:dynamodb/table:Table", "chat-state")
    assert query_env[env.QUERY_STATE_TABLE] == state.state["name"]
    assert (state.inputs["hashKey"], state.inputs["rangeKey"]) == ("pk", "sk")
    assert state.inputs["ttl"] == {"attributeName": "expires_at", "enabled": True}
    if config.model.source == "openai":
        assert query_env[env.MODEL_BACKEND] == "openai"
        assert query_env[env.MODEL_OPENAI_BASE_URL] == config.model.openai_base_url
        assert query_env[env.MODEL_OPENAI_MODEL] == config.model.openai_model
        secret = d.one("aws:secretsmanager/secret:Secret").state["arn"]
        assert query_env[env.MODEL_OPENAI_KEY_SECRET] == secret
    elif config.model.source == "bedrock":
        assert query_env[env.MODEL_BACKEND] == "bedrock"
        assert query_env[env.MODEL_BEDROCK_ID] == config.model.bedrock_model_id
    else:
        assert query_env[env.MODEL_BACKEND] == "sagemaker"
        assert query_env[env.MODEL_CONTAINER] == "tgi"
        expected = (
            config.model.endpoint_name or d.one("aws:sagemaker/endpoint:Endpoint").inputs["name"]
        )
        assert query_env[env.MODEL_ENDPOINT_NAME] == expected


def test_functions_use_the_built_artifacts_and_own_log_groups(
    variant: tuple[StackConfig, Deployment],
) -> None:
    config, d = variant
    bucket = d.one("aws:s3/bucket:Bucket", "artifacts-bucket").state["bucket"]
    objects = {o.name: o.inputs for o in d.of_type("aws:s3/bucketObjectv2:BucketObjectv2")}
    groups = {g.state["name"]: g.inputs for g in d.of_type("aws:cloudwatch/logGroup:LogGroup")}
    assert all(
        g["retentionInDays"] == config.observability.log_retention_days for g in groups.values()
    )
    artifact_of = {
        "connect-auth-function": "artifacts-authorizer",
        "indexer-function": "artifacts-indexer",
        "chat-query": "artifacts-query",
    }
    for name, fn in functions(d).items():
        artifact = artifact_of[name]
        assert (fn["s3Bucket"], fn["s3Key"]) == (bucket, objects[artifact]["key"])
        assert fn["runtime"] == f"python{config.lambda_.python_version}"
        assert fn["architectures"] == [config.lambda_.architecture]
        assert fn["loggingConfig"]["logGroup"] in groups
        in_vpc = "vpcConfig" in fn
        assert in_vpc == (config.uses_vpc and not name.startswith("connect-auth"))


def test_websocket_routes_and_authorizer(variant: tuple[StackConfig, Deployment]) -> None:
    config, d = variant
    api = d.one("aws:apigatewayv2/api:Api")
    assert api.inputs["protocolType"] == "WEBSOCKET"
    assert api.inputs["routeSelectionExpression"] == "$request.body.action"
    integration = d.one("aws:apigatewayv2/integration:Integration")
    assert integration.inputs["integrationUri"] == d.one(FUNCTION, "chat-query").state["invokeArn"]
    routes = {r.inputs["routeKey"]: r.inputs for r in d.of_type(ROUTE)}
    assert set(routes) == {"$connect", "$disconnect", "$default"}
    assert all(r["target"] == f"integrations/{integration.id}" for r in routes.values())
    authorizers = d.of_type("aws:apigatewayv2/authorizer:Authorizer")
    if config.chat.auth == "none":
        assert not authorizers and routes["$connect"]["authorizationType"] == "NONE"
        return
    (authorizer,) = authorizers
    assert authorizer.inputs["authorizerType"] == "REQUEST"
    assert (
        authorizer.inputs["authorizerUri"]
        == d.one(FUNCTION, "connect-auth-function").state["invokeArn"]
    )
    assert routes["$connect"]["authorizationType"] == "CUSTOM"
    assert routes["$connect"]["authorizerId"] == authorizer.id
    assert routes["$default"]["authorizationType"] == "NONE"
    permission = d.one("aws:lambda/permission:Permission", "chat-invoke-authorizer").inputs
    assert permission["sourceArn"].endswith(f"/authorizers/{authorizer.id}")


def test_websocket_lambda_integration_is_a_post_proxy(
    variant: tuple[StackConfig, Deployment],
) -> None:
    """AWS: a Lambda integration's method must be POST (the Lambda Invoke action);
    WebSocket APIs take the Lambda proxy type, and payload format 1.0 is their only one."""
    _, d = variant
    integration = d.one("aws:apigatewayv2/integration:Integration").inputs
    assert integration["integrationType"] == "AWS_PROXY"
    assert integration["integrationMethod"] == "POST"
    assert integration.get("payloadFormatVersion", "1.0") == "1.0"


def test_authorizer_mode(variant: tuple[StackConfig, Deployment]) -> None:
    config, d = variant
    if config.chat.auth == "none":
        return
    fn = d.one(FUNCTION, "connect-auth-function")
    variables = fn.inputs["environment"]["variables"]
    assert variables[env.AUTH_MODE] == config.chat.auth
    if config.chat.auth == "token":
        import hashlib

        assert variables[env.AUTH_TOKEN_SHA256] == hashlib.sha256(STATIC_TOKEN.encode()).hexdigest()
        assert is_secret(fn.raw_inputs["environment"])
        assert not d.of_type("aws:cognito/userPool:UserPool")
    else:
        pool = d.one("aws:cognito/userPool:UserPool")
        client = d.one("aws:cognito/userPoolClient:UserPoolClient")
        assert pool.inputs["adminCreateUserConfig"]["allowAdminCreateUserOnly"] is True
        assert client.inputs["generateSecret"] is False
        assert variables[env.AUTH_COGNITO_ISSUER] == f"https://{pool.state['endpoint']}"
        assert variables[env.AUTH_COGNITO_CLIENT_ID] == client.id


def test_secrets_never_reach_state_in_plaintext(variant: tuple[StackConfig, Deployment]) -> None:
    _, d = variant
    for r in d.resources:
        as_sent = json.dumps(r.raw_inputs, default=str)
        assert STATIC_TOKEN not in as_sent
    # No token of any kind in the model's environment (readable with DescribeModel).
    for model in d.of_type("aws:sagemaker/model:Model"):
        environment = model.inputs["primaryContainer"]["environment"]
        assert set(environment) == {
            "HF_MODEL_ID", "SM_NUM_GPUS", "MAX_INPUT_TOKENS", "MAX_TOTAL_TOKENS"
        }  # fmt: skip
        assert not is_secret(model.raw_inputs["primaryContainer"])


def test_stage_throttled_and_logged(variant: tuple[StackConfig, Deployment]) -> None:
    config, d = variant
    stage = d.one("aws:apigatewayv2/stage:Stage").inputs
    settings = stage["defaultRouteSettings"]
    assert settings["throttlingRateLimit"] == config.chat.throttling_rate_limit
    assert settings["throttlingBurstLimit"] == config.chat.throttling_burst_limit
    assert settings["dataTraceEnabled"] is False
    accounts = d.of_type("aws:apigateway/account:Account")
    assert len(accounts) == (1 if config.chat.account_log_role == "create" else 0)
    if not config.chat.api_logs:
        # Without the account-wide role API Gateway refuses a logging stage.
        assert "accessLogSettings" not in stage and settings["loggingLevel"] == "OFF"
        return
    access = d.one("aws:cloudwatch/logGroup:LogGroup", "chat-access-logs").state["arn"]
    assert stage["accessLogSettings"]["destinationArn"] == access
    assert (
        json.loads(stage["accessLogSettings"]["format"])["connectionId"] == "$context.connectionId"
    )


def test_model_variant(variant: tuple[StackConfig, Deployment]) -> None:
    config, d = variant
    endpoints = d.of_type("aws:sagemaker/endpoint:Endpoint")
    if config.model.source != "sagemaker":
        assert not endpoints and not d.of_type("aws:sagemaker/model:Model")
        return
    (endpoint,) = endpoints
    model = d.one("aws:sagemaker/model:Model").inputs
    container = model["primaryContainer"]
    assert "huggingface-pytorch-tgi-inference" in container["image"]
    assert f".dkr.ecr.{REGION}." in container["image"]
    # TGI serves what SageMaker copied from S3: no Hub download, no token.
    assert container["environment"]["HF_MODEL_ID"] == "/opt/ml/model"
    (source,) = container["modelDataSource"]["s3DataSources"]
    assert (source["s3DataType"], source["compressionType"]) == ("S3Prefix", "None")
    if config.model.weights == "jumpstart":
        assert source["s3Uri"] == (
            f"s3://jumpstart-private-cache-prod-{REGION}/meta-textgeneration/"
            "meta-textgeneration-llama-2-7b-f/artifacts/inference-prepack/v1.0.0/"
        )
        assert source["modelAccessConfig"] == {"acceptEula": True}
    else:
        assert source["s3Uri"] == config.model.weights_s3_uri
        assert "modelAccessConfig" not in source
    endpoint_config = d.one("aws:sagemaker/endpointConfiguration:EndpointConfiguration")
    (variant_args,) = endpoint_config.inputs["productionVariants"]
    assert variant_args["instanceType"] == config.model.instance_type
    assert endpoint.inputs["endpointConfigName"] == endpoint_config.state["name"]


def test_alarms(variant: tuple[StackConfig, Deployment]) -> None:
    config, d = variant
    alarms = {a.name: a.inputs for a in d.of_type("aws:cloudwatch/metricAlarm:MetricAlarm")}
    dlq = d.one(QUEUE, "ingest-dlq").state["name"]
    queue = d.one(QUEUE, "ingest-queue").state["name"]
    assert alarms["observability-dlq-depth"]["dimensions"] == {"QueueName": dlq}
    assert alarms["observability-oldest-message-age"]["dimensions"] == {"QueueName": queue}
    fns = {f.name: f.state["name"] for f in d.of_type(FUNCTION)}
    assert alarms["observability-indexer-errors"]["dimensions"] == {
        "FunctionName": fns["indexer-function"]
    }
    assert alarms["observability-query-errors"]["dimensions"] == {"FunctionName": fns["chat-query"]}
    # Dropped worker events (issue #26 item 5) and records that could not be kept.
    for key, metric in (
        ("answers-dropped", "AsyncEventsDropped"),
        ("answer-failures-undelivered", "DestinationDeliveryFailures"),
    ):
        alarm = alarms[f"observability-{key}"]
        assert (alarm["namespace"], alarm["metricName"]) == ("AWS/Lambda", metric)
        assert alarm["dimensions"] == {"FunctionName": fns["chat-query"]}
        assert alarm["statistic"] == "Sum" and alarm["threshold"] == 0
    topic = config.observability.alarm_topic_arn
    # The model's wake alarm acts on its scaling policy (test_scale_to_zero.py).
    for name, alarm in alarms.items():
        if name != "model-no-capacity":
            assert alarm.get("alarmActions", []) == ([topic] if topic else [])


def test_outputs(variant: tuple[StackConfig, Deployment]) -> None:
    config, d = variant
    out = d.outputs
    assert (
        out["websocket_url"]
        == f"wss://api0123.execute-api.{REGION}.amazonaws.com/{config.chat.stage_name}"
    )
    assert out["ingest_queue_url"] == d.one(QUEUE, "ingest-queue").state["url"]
    assert out["dead_letter_queue_url"] == d.one(QUEUE, "ingest-dlq").state["url"]
    assert out["ingest_bucket"] == d.one("aws:s3/bucket:Bucket", "ingest-documents").state["bucket"]
    assert out["collection_endpoint"].startswith("https://")
    assert ("cognito_user_pool_id" in out) == (config.chat.auth == "cognito")


def test_dropped_worker_events_are_recorded_and_read_back(
    variant: tuple[StackConfig, Deployment],
) -> None:
    """Issue #26 item 5: a worker event Lambda drops (0 retries, 60 s maximum age)
    goes to an on-failure destination the query function reads, so the client
    hears about it instead of waiting forever."""
    config, d = variant
    query = d.one(FUNCTION, "chat-query")
    queue = d.one(QUEUE, "chat-worker-failures")
    invoke_config = d.one("aws:lambda/functionEventInvokeConfig:FunctionEventInvokeConfig").inputs
    assert invoke_config["functionName"] == query.state["name"]
    assert invoke_config["maximumRetryAttempts"] == 0
    assert invoke_config["destinationConfig"]["onFailure"]["destination"] == queue.state["arn"]
    assert "onSuccess" not in invoke_config["destinationConfig"]
    sources = [
        m.inputs
        for m in d.of_type("aws:lambda/eventSourceMapping:EventSourceMapping")
        if m.inputs["eventSourceArn"] == queue.state["arn"]
    ]
    assert len(sources) == 1
    assert sources[0]["functionName"] == query.state["arn"]
    assert sources[0]["functionResponseTypes"] == ["ReportBatchItemFailures"]
    assert queue.inputs["visibilityTimeoutSeconds"] >= 6 * config.chat.query_timeout_seconds
    assert queue.inputs["messageRetentionSeconds"] <= 3600
    assert queue.inputs["sqsManagedSseEnabled"] is True
    # The query role may send and read records on this queue, and on no other queue.
    roles = {r.id: r.name for r in d.of_type("aws:iam/role:Role")}
    grants = {
        stmt["Sid"]: stmt
        for rp in d.of_type("aws:iam/rolePolicy:RolePolicy")
        if roles[rp.inputs["role"]] == "query-role"
        for stmt in rp.policy()["Statement"]
    }
    sqs = {sid: s for sid, s in grants.items() if any(a.startswith("sqs:") for a in s["Action"])}
    assert set(sqs) == {"RecordFailedWorkers", "ReadFailedWorkers"}
    assert all(s["Resource"] == [queue.state["arn"]] for s in sqs.values())
    assert sqs["RecordFailedWorkers"]["Action"] == ["sqs:SendMessage"]
