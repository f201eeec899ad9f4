"""The OpenSearch Serverless vector collection and its three policies."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_aws as aws

from infra import policies
from infra.config import SearchConfig, VpcConfig


@dataclass(frozen=True)
class SearchArgs:
    collection_name: str
    search: SearchConfig
    vpc: VpcConfig | None
    indexer_role_arn: pulumi.Input[str]
    query_role_arn: pulumi.Input[str]
    protect: bool = False


class Search(pulumi.ComponentResource):
    """A VECTORSEARCH collection reachable only by the two service roles (and named admins).

    The vector index itself is created by the indexer on cold start
    (``ensure_index`` is idempotent and uses the mapping the services own), so
    the mapping lives in one place and no manual step or extra provider is needed.
    """

    def __init__(self, name: str, args: SearchArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("rag:infra:Search", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        coll = args.collection_name

        def security_policy(
            kind: str, short: str, document: Any
        ) -> aws.opensearch.ServerlessSecurityPolicy:
            """The encryption and network policies: one type, named after the collection."""
            return aws.opensearch.ServerlessSecurityPolicy(
                f"{name}-{kind}",
                name=f"{coll}-{short}",
                type=kind,
                policy=policies.to_json(document),
                opts=child,
            )

        self.encryption_policy = security_policy(
            "encryption", "enc", policies.encryption_policy(coll, args.search.kms_key_arn)
        )
        self.vpc_endpoint: aws.opensearch.ServerlessVpcEndpoint | None = None
        if args.search.network == "vpc" and args.vpc is not None:
            self.vpc_endpoint = aws.opensearch.ServerlessVpcEndpoint(
                f"{name}-vpce",
                name=f"{coll}-vpce",
                vpc_id=args.vpc.vpc_id,
                subnet_ids=list(args.vpc.subnet_ids),
                security_group_ids=list(args.vpc.security_group_ids),
                opts=child,
            )
        vpce_id = self.vpc_endpoint.id if self.vpc_endpoint else None
        self.network_policy = security_policy(
            "network", "net", policies.network_policy(coll, vpce_id)
        )
        self.access_policy = aws.opensearch.ServerlessAccessPolicy(
            f"{name}-access",
            name=f"{coll}-access",
            type="data",
            policy=policies.to_json(
                policies.data_access_policy(
                    coll,
                    args.search.index_name,
                    args.indexer_role_arn,
                    args.query_role_arn,
                    args.search.admin_principals,
                )
            ),
            opts=child,
        )
        self.group: aws.opensearch.ServerlessCollectionGroup | None = None
        if args.search.kind == "nextgen":
            self.group = collection_group(f"{name}-group", coll, args.search, child)
        # A collection cannot be created before an encryption policy covers its name.
        self.collection = aws.opensearch.ServerlessCollection(
            f"{name}-collection",
            name=coll,
            type="VECTORSEARCH",
            standby_replicas="ENABLED" if args.search.standby_replicas else "DISABLED",
            collection_group_name=self.group.name if self.group else None,
            # Protected (rag:protect): a replacement would drop every indexed document.
            opts=pulumi.ResourceOptions(
                parent=self,
                depends_on=[self.encryption_policy, self.network_policy],
                protect=args.protect,
            ),
        )
        self.register_outputs(
            {"endpoint": self.collection.collection_endpoint, "arn": self.collection.arn}
        )


def group_name(collection: str) -> str:
    """The collection group's name: the collection's (at most 25 characters) plus "-grp"."""
    return f"{collection}-grp"


def collection_group(
    resource: str, collection: str, search: SearchConfig, opts: pulumi.ResourceOptions
) -> aws.opensearch.ServerlessCollectionGroup:
    """A NextGen collection group for this one collection.

    Capacity is the group's: with both minimums at 0 the group scales to zero OCU after
    10 minutes without requests, and the first search (or write) after that waits
    10-30 s while workers return (AWS, "Scale to zero for Amazon OpenSearch
    Serverless"). AWS requires standby replicas for NextGen groups.
    """
    return aws.opensearch.ServerlessCollectionGroup(
        resource,
        name=group_name(collection),
        description=f"Capacity of the {collection} collection (rag stack)",
        generation="NEXTGEN",
        standby_replicas="ENABLED",
        capacity_limits=[
            aws.opensearch.ServerlessCollectionGroupCapacityLimitArgs(
                min_indexing_capacity_in_ocu=search.min_indexing_ocu,
                max_indexing_capacity_in_ocu=search.max_indexing_ocu,
                min_search_capacity_in_ocu=search.min_search_ocu,
                max_search_capacity_in_ocu=search.max_search_ocu,
            )
        ],
        opts=opts,
    )
