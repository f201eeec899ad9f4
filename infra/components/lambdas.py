"""Shared pieces for the three functions: roles, log groups, the function itself."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_aws as aws

from infra import policies
from infra.config import StackConfig, VpcConfig


def lambda_role(name: str, parent: pulumi.Resource | None) -> aws.iam.Role:
    """A role with a trust policy only; each component adds the inline policy it needs."""
    return aws.iam.Role(
        name,
        assume_role_policy=policies.to_json(policies.assume_role("lambda.amazonaws.com")),
        opts=pulumi.ResourceOptions(parent=parent),
    )


def inline_policy(
    name: str, role: aws.iam.Role, statements: Sequence[dict[str, Any]], parent: pulumi.Resource
) -> aws.iam.RolePolicy:
    return aws.iam.RolePolicy(
        name,
        role=role.id,
        policy=policies.to_json(policies.document(*statements)),
        opts=pulumi.ResourceOptions(parent=parent),
    )


def vpc_statements(
    config: StackConfig, account: pulumi.Output[str], partition: pulumi.Output[str]
) -> list[dict[str, Any]]:
    """What Lambda needs to attach ENIs in the configured subnets.

    ec2:Describe* calls do not support resource-level permissions, so AWS
    requires Resource "*" for them; the mutating calls are scoped.
    """
    vpc: VpcConfig | None = config.vpc
    if not config.uses_vpc or vpc is None:
        return []

    def ec2_arn(kind: str, ident: str) -> pulumi.Output[str]:
        return pulumi.Output.format(
            "arn:{0}:ec2:{1}:{2}:{3}/{4}", partition, config.region, account, kind, ident
        )

    scoped = [ec2_arn("network-interface", "*")]
    scoped += [ec2_arn("subnet", s) for s in vpc.subnet_ids]
    scoped += [ec2_arn("security-group", g) for g in vpc.security_group_ids]
    return [
        policies.statement(
            "DescribeNetworkInterfaces",  # AWS requires "*": no resource-level permissions.
            ["ec2:DescribeNetworkInterfaces", "ec2:DescribeSubnets"],
            ["*"],
        ),
        policies.statement(
            "ManageFunctionEnis",
            [
                "ec2:CreateNetworkInterface",
                "ec2:DeleteNetworkInterface",
                "ec2:AssignPrivateIpAddresses",
                "ec2:UnassignPrivateIpAddresses",
            ],
            scoped,
        ),
    ]


@dataclass(frozen=True)
class CodeLocation:
    bucket: pulumi.Input[str]
    key: pulumi.Input[str]
    source_code_hash: str


@dataclass(frozen=True)
class FunctionSpec:
    handler: str
    timeout: int
    memory_mb: int
    environment: Mapping[str, pulumi.Input[str]]
    in_vpc: bool = False


def log_group(name: str, retention_days: int, parent: pulumi.Resource) -> aws.cloudwatch.LogGroup:
    return aws.cloudwatch.LogGroup(
        name,
        retention_in_days=retention_days,
        opts=pulumi.ResourceOptions(parent=parent),
    )


def service_function(
    name: str,
    config: StackConfig,
    spec: FunctionSpec,
    code: CodeLocation,
    role: aws.iam.Role,
    logs: aws.cloudwatch.LogGroup,
    parent: pulumi.Resource,
    depends_on: Sequence[pulumi.Resource] = (),
) -> aws.lambda_.Function:
    vpc_config = None
    if spec.in_vpc and config.vpc is not None:
        vpc_config = aws.lambda_.FunctionVpcConfigArgs(
            subnet_ids=list(config.vpc.subnet_ids),
            security_group_ids=list(config.vpc.security_group_ids),
        )
    return aws.lambda_.Function(
        name,
        runtime=f"python{config.lambda_.python_version}",
        architectures=[config.lambda_.architecture],
        handler=spec.handler,
        role=role.arn,
        s3_bucket=code.bucket,
        s3_key=code.key,
        source_code_hash=code.source_code_hash,
        timeout=spec.timeout,
        memory_size=spec.memory_mb,
        environment=aws.lambda_.FunctionEnvironmentArgs(variables=dict(spec.environment)),
        logging_config=aws.lambda_.FunctionLoggingConfigArgs(
            log_format="JSON", log_group=logs.name
        ),
        vpc_config=vpc_config,
        opts=pulumi.ResourceOptions(parent=parent, depends_on=list(depends_on)),
    )
