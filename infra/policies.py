"""Pure builders for IAM and OpenSearch Serverless policy documents.

Values may be plain strings or Pulumi ``Output``s; callers serialise with
``pulumi.Output.json_dumps`` (no ``apply``, so preview shows the same document
as ``up``). Tests call these with plain strings and audit the result.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pulumi

IAM_VERSION = "2012-10-17"

# AOSS data-plane permissions, least per role. WriteDocument covers index,
# update and delete of documents; the indexer creates the index idempotently
# on cold start, so it also needs CreateIndex/UpdateIndex/DescribeIndex.
INDEXER_COLLECTION_PERMISSIONS = ("aoss:DescribeCollectionItems",)
INDEXER_INDEX_PERMISSIONS = (
    "aoss:CreateIndex",
    "aoss:DescribeIndex",
    "aoss:UpdateIndex",
    "aoss:ReadDocument",
    "aoss:WriteDocument",
)
QUERY_INDEX_PERMISSIONS = ("aoss:DescribeIndex", "aoss:ReadDocument")
ADMIN_COLLECTION_PERMISSIONS = (
    "aoss:CreateCollectionItems",
    "aoss:DeleteCollectionItems",
    "aoss:UpdateCollectionItems",
    "aoss:DescribeCollectionItems",
)
ADMIN_INDEX_PERMISSIONS = (
    "aoss:CreateIndex",
    "aoss:DeleteIndex",
    "aoss:UpdateIndex",
    "aoss:DescribeIndex",
    "aoss:ReadDocument",
    "aoss:WriteDocument",
)

Input = pulumi.Input[str]


# What a function needs to consume an SQS queue (an event source mapping's poller).
QUEUE_CONSUMER_ACTIONS = (
    "sqs:ReceiveMessage",
    "sqs:DeleteMessage",
    "sqs:ChangeMessageVisibility",
    "sqs:GetQueueAttributes",
)


def statement(
    sid: str,
    actions: Sequence[str],
    resources: Sequence[Input],
    condition: dict[str, Any] | None = None,
) -> dict[str, Any]:
    stmt: dict[str, Any] = {
        "Sid": sid,
        "Effect": "Allow",
        "Action": list(actions),
        "Resource": list(resources),
    }
    if condition:
        stmt["Condition"] = condition
    return stmt


def document(*statements: dict[str, Any]) -> dict[str, Any]:
    return {"Version": IAM_VERSION, "Statement": list(statements)}


def assume_role(service: str) -> dict[str, Any]:
    return {
        "Version": IAM_VERSION,
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"Service": service},
                "Action": "sts:AssumeRole",
            }
        ],
    }


def log_statement(log_group_arn: pulumi.Output[str]) -> dict[str, Any]:
    """Write to this function's own log group only (it is created by the stack)."""
    return statement(
        "WriteOwnLogs",
        ["logs:CreateLogStream", "logs:PutLogEvents"],
        [pulumi.Output.concat(log_group_arn, ":*")],
    )


def collection_resource(collection: str) -> str:
    return f"collection/{collection}"


def index_resource(collection: str, index: str) -> str:
    return f"index/{collection}/{index}"


def encryption_policy(collection: str, kms_key_arn: str | None) -> dict[str, Any]:
    policy: dict[str, Any] = {
        "Rules": [{"ResourceType": "collection", "Resource": [collection_resource(collection)]}],
        "AWSOwnedKey": kms_key_arn is None,
    }
    if kms_key_arn is not None:
        policy["KmsARN"] = kms_key_arn
    return policy


def network_policy(collection: str, vpc_endpoint_id: Input | None) -> list[dict[str, Any]]:
    """Public endpoint (still IAM-authenticated) or reachable only from one VPC endpoint.

    Dashboards are not listed, so they are reachable from nowhere.
    """
    rule: dict[str, Any] = {
        "Description": f"{collection} data plane",
        "Rules": [{"ResourceType": "collection", "Resource": [collection_resource(collection)]}],
        "AllowFromPublic": vpc_endpoint_id is None,
    }
    if vpc_endpoint_id is not None:
        rule["SourceVPCEs"] = [vpc_endpoint_id]
    return [rule]


def data_access_policy(
    collection: str,
    index: str,
    indexer_role_arn: Input,
    query_role_arn: Input,
    admin_principals: Sequence[str] = (),
) -> list[dict[str, Any]]:
    """One entry per principal group, each with only what that group needs."""
    coll = collection_resource(collection)
    idx = index_resource(collection, index)
    entries: list[dict[str, Any]] = [
        {
            "Description": "indexer: create the index, write and delete chunks",
            "Principal": [indexer_role_arn],
            "Rules": [
                {
                    "ResourceType": "collection",
                    "Resource": [coll],
                    "Permission": list(INDEXER_COLLECTION_PERMISSIONS),
                },
                {
                    "ResourceType": "index",
                    "Resource": [idx],
                    "Permission": list(INDEXER_INDEX_PERMISSIONS),
                },
            ],
        },
        {
            "Description": "query: read chunks",
            "Principal": [query_role_arn],
            "Rules": [
                {
                    "ResourceType": "index",
                    "Resource": [idx],
                    "Permission": list(QUERY_INDEX_PERMISSIONS),
                }
            ],
        },
    ]
    if admin_principals:
        entries.append(
            {
                "Description": "administrators",
                "Principal": list(admin_principals),
                "Rules": [
                    {
                        "ResourceType": "collection",
                        "Resource": [coll],
                        "Permission": list(ADMIN_COLLECTION_PERMISSIONS),
                    },
                    {
                        "ResourceType": "index",
                        "Resource": [f"index/{collection}/*"],
                        "Permission": list(ADMIN_INDEX_PERMISSIONS),
                    },
                ],
            }
        )
    return entries


def to_json(doc: Any) -> pulumi.Output[str]:
    return pulumi.Output.json_dumps(doc)
