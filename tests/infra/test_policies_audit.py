"""Audit every IAM and OpenSearch Serverless policy the stack declares, for each variant."""

from __future__ import annotations

import json
from typing import Any

from infra import policies
from infra.config import StackConfig
from tests.infra.mocks import ACCOUNT, REGION, Deployment

ROLE_POLICY = "aws:iam/rolePolicy:RolePolicy"
SECURITY_POLICY = "aws:opensearch/serverlessSecurityPolicy:ServerlessSecurityPolicy"
# Actions without resource-level permissions: AWS requires Resource "*" for them.
STAR_RESOURCE_ACTIONS = frozenset(
    {
        "ecr:GetAuthorizationToken",
        "cloudwatch:PutMetricData",
        "ec2:DescribeNetworkInterfaces",
        "ec2:DescribeSubnets",
    }
)


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def wildcard_problems(doc: dict[str, Any]) -> list[str]:
    """Allow statements must name actions and resources; Deny statements only narrow access."""
    problems = []
    for stmt in doc["Statement"]:
        if stmt["Effect"] != "Allow":
            continue
        actions = as_list(stmt["Action"])
        problems += [f"wildcard action {a}" for a in actions if "*" in a]
        for resource in as_list(stmt.get("Resource", [])):
            if resource == "*":
                if not set(actions) <= STAR_RESOURCE_ACTIONS:
                    problems.append(f"Resource * for {actions}")
                continue
            parts = resource.split(":", 5)
            assert len(parts) == 6 and parts[0] == "arn", resource
            service, account, rest = parts[2], parts[4], parts[5]
            if rest.startswith("*") or (account == "*"):
                problems.append(f"unscoped resource {resource}")
            if service not in ("s3", "bedrock") and parts[3] == "*":
                problems.append(f"any-region resource {resource}")
    return problems


def role_policies(d: Deployment) -> dict[str, dict[str, Any]]:
    roles = {r.id: r.name for r in d.of_type("aws:iam/role:Role")}
    merged: dict[str, dict[str, Any]] = {}
    for rp in d.of_type(ROLE_POLICY):
        for stmt in rp.policy()["Statement"]:
            merged.setdefault(roles[rp.inputs["role"]], {})[stmt["Sid"]] = stmt
    return merged


def test_no_wildcards_in_any_iam_document(variant: tuple[StackConfig, Deployment]) -> None:
    _, d = variant
    documents = [r.policy() for r in d.of_type(ROLE_POLICY)]
    documents += [r.policy() for r in d.of_type("aws:s3/bucketPolicy:BucketPolicy")]
    documents += [r.policy("assumeRolePolicy") for r in d.of_type("aws:iam/role:Role")]
    assert len(documents) >= 7  # the audit is not vacuous
    for doc in documents:
        assert doc["Version"] == "2012-10-17"
        assert wildcard_problems(doc) == []


def test_trust_policies_name_one_service(variant: tuple[StackConfig, Deployment]) -> None:
    _, d = variant
    for role in d.of_type("aws:iam/role:Role"):
        (stmt,) = role.policy("assumeRolePolicy")["Statement"]
        expected = {
            "model-role": "sagemaker.amazonaws.com",
            "chat-apigw-logs-role": "apigateway.amazonaws.com",
        }.get(role.name, "lambda.amazonaws.com")
        assert stmt["Principal"] == {"Service": expected}
        assert stmt["Action"] == "sts:AssumeRole"


def check_model_grant(config: StackConfig, d: Deployment, query: dict[str, Any]) -> None:
    """The query role reaches its model and nothing else of the model kind."""
    if config.model.source == "openai":  # no AWS model: only its API key's secret
        assert "InvokeChatModel" not in query
        secret = d.one("aws:secretsmanager/secret:Secret").state["arn"]
        read_key = query["ReadModelApiKey"]
        assert read_key["Action"] == ["secretsmanager:GetSecretValue"]
        assert read_key["Resource"] == [secret]
        return
    assert "ReadModelApiKey" not in query
    invoke = query["InvokeChatModel"]
    if config.model.source == "sagemaker":
        endpoint = d.one("aws:sagemaker/endpoint:Endpoint").state["arn"]
        components = [
            f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:inference-component/{c.inputs['inferenceComponentName']}"
            for c in d.of_type("aws-native:sagemaker:InferenceComponent")
        ]
        assert len(components) == (1 if config.model.scale_to_zero else 0)
        assert invoke["Resource"] == [endpoint, *components]
    elif config.model.source == "existing":
        assert invoke["Resource"] == [
            f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:endpoint/my-llama2-endpoint"
        ]
    else:
        assert all(config.model.bedrock_model_id.split(".", 1)[-1] in r for r in invoke["Resource"])


def test_scoped_grants(variant: tuple[StackConfig, Deployment]) -> None:
    config, d = variant
    grants = role_policies(d)
    collection_arn = d.one("aws:opensearch/serverlessCollection:ServerlessCollection").state["arn"]
    for role in ("indexer-role", "query-role"):
        assert grants[role]["OpenSearchServerless"]["Resource"] == [collection_arn]
    stage_arn = d.one("aws:apigatewayv2/stage:Stage").state["executionArn"]
    manage = grants["query-role"]["ManageOwnConnections"]
    assert manage["Action"] == ["execute-api:ManageConnections"]
    assert all(r.startswith(f"{stage_arn}/") for r in manage["Resource"])
    query_fn = d.one("aws:lambda/function:Function", "chat-query").state["arn"]
    assert grants["query-role"]["InvokeSelf"]["Resource"] == [query_fn, f"{query_fn}:*"]
    check_model_grant(config, d, grants["query-role"])
    # Each function role can write its own log group and nothing else.
    groups = {g.name: g.state["arn"] for g in d.of_type("aws:cloudwatch/logGroup:LogGroup")}
    assert grants["indexer-role"]["WriteOwnLogs"]["Resource"] == [f"{groups['indexer-logs']}:*"]
    assert grants["query-role"]["WriteOwnLogs"]["Resource"] == [f"{groups['chat-query-logs']}:*"]
    bucket = d.one("aws:s3/bucket:Bucket", "ingest-documents").state["arn"]
    assert grants["indexer-role"]["ReadDocuments"]["Resource"] == [f"{bucket}/*"]
    assert "ReadDocuments" not in grants["query-role"]
    state = d.one("aws:dynamodb/table:Table", "chat-state").state["arn"]
    status = d.one("aws:dynamodb/table:Table", "ingest-status").state["arn"]
    assert grants["query-role"]["QueryState"]["Resource"] == [state]
    assert grants["indexer-role"]["DocumentStatus"]["Resource"] == [status]
    dlq = d.one("aws:sqs/queue:Queue", "ingest-dlq").state["arn"]
    assert grants["indexer-role"]["DeadLetterInvalidMessages"]["Resource"] == [dlq]


def test_functions_run_as_their_roles(variant: tuple[StackConfig, Deployment]) -> None:
    _, d = variant
    roles = {r.name: r.state["arn"] for r in d.of_type("aws:iam/role:Role")}
    fns = {f.name: f.inputs["role"] for f in d.of_type("aws:lambda/function:Function")}
    assert fns["indexer-function"] == roles["indexer-role"]
    assert fns["chat-query"] == roles["query-role"]
    if "connect-auth-function" in fns:
        assert fns["connect-auth-function"] == roles["connect-auth-role"]


def test_aoss_policies(variant: tuple[StackConfig, Deployment]) -> None:
    config, d = variant
    collection = d.one("aws:opensearch/serverlessCollection:ServerlessCollection").inputs
    assert collection["type"] == "VECTORSEARCH"
    name = collection["name"]
    policies_by_type = {p.inputs["type"]: p.policy() for p in d.of_type(SECURITY_POLICY)}
    encryption, network = policies_by_type["encryption"], policies_by_type["network"]
    assert encryption["Rules"] == [
        {"ResourceType": "collection", "Resource": [f"collection/{name}"]}
    ]
    assert encryption["AWSOwnedKey"] is (config.search.kms_key_arn is None)
    assert encryption.get("KmsARN") == config.search.kms_key_arn
    (net,) = network
    assert net["Rules"] == [{"ResourceType": "collection", "Resource": [f"collection/{name}"]}]
    if config.uses_vpc:
        vpce = d.one("aws:opensearch/serverlessVpcEndpoint:ServerlessVpcEndpoint")
        assert net["AllowFromPublic"] is False and net["SourceVPCEs"] == [vpce.id]
    else:
        assert net["AllowFromPublic"] is True and "SourceVPCEs" not in net

    access = d.one("aws:opensearch/serverlessAccessPolicy:ServerlessAccessPolicy")
    assert access.inputs["type"] == "data"
    roles = {r.name: r.state["arn"] for r in d.of_type("aws:iam/role:Role")}
    by_principal = {tuple(e["Principal"]): e["Rules"] for e in access.policy()}
    expected: set[tuple[str, ...]] = {(roles["indexer-role"],), (roles["query-role"],)}
    if config.search.admin_principals:
        expected.add(tuple(config.search.admin_principals))
    assert set(by_principal) == expected
    index = f"index/{name}/{config.search.index_name}"
    perms = {
        p: {(r["ResourceType"], tuple(r["Resource"])): set(r["Permission"]) for r in rules}
        for p, rules in by_principal.items()
    }
    assert perms[(roles["query-role"],)] == {
        ("index", (index,)): {"aoss:DescribeIndex", "aoss:ReadDocument"}
    }
    indexer = perms[(roles["indexer-role"],)]
    assert indexer[("index", (index,))] == set(policies.INDEXER_INDEX_PERMISSIONS)
    assert indexer[("collection", (f"collection/{name}",))] == {"aoss:DescribeCollectionItems"}
    for rules in by_principal.values():
        assert all("aoss:*" not in r["Permission"] for r in rules)


def test_data_access_policy_builder_without_admins() -> None:
    doc = policies.data_access_policy("c", "i", "arn:indexer", "arn:query")
    assert [e["Principal"] for e in doc] == [["arn:indexer"], ["arn:query"]]
    assert json.dumps(doc).count("index/c/i") == 2


def test_wildcard_audit_catches_violations() -> None:
    bad = policies.document(
        policies.statement("A", ["s3:*"], ["arn:aws:s3:::b/*"]),
        policies.statement("B", ["sqs:SendMessage"], ["*"]),
        policies.statement("C", ["sqs:SendMessage"], ["arn:aws:sqs:eu-west-1:1:*"]),
    )
    assert len(wildcard_problems(bad)) == 3
