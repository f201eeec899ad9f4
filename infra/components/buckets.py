"""Private, encrypted, TLS-only S3 buckets."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from infra import policies


@dataclass(frozen=True)
class PrivateBucket:
    bucket: aws.s3.Bucket
    policy: aws.s3.BucketPolicy


def tls_only_policy(bucket_arn: pulumi.Input[str]) -> dict[str, object]:
    return {
        "Version": policies.IAM_VERSION,
        "Statement": [
            {
                "Sid": "DenyInsecureTransport",
                "Effect": "Deny",
                "Principal": {"AWS": "*"},
                "Action": "s3:*",
                "Resource": [bucket_arn, pulumi.Output.concat(bucket_arn, "/*")],
                "Condition": {"Bool": {"aws:SecureTransport": "false"}},
            }
        ],
    }


def private_bucket(
    name: str,
    parent: pulumi.Resource,
    *,
    versioned: bool,
    force_destroy: bool,
    protect: bool = False,
) -> PrivateBucket:
    opts = pulumi.ResourceOptions(parent=parent)
    bucket = aws.s3.Bucket(
        name,
        force_destroy=force_destroy,
        opts=pulumi.ResourceOptions(parent=parent, protect=protect),
    )
    aws.s3.BucketOwnershipControls(
        f"{name}-ownership",
        bucket=bucket.id,
        rule=aws.s3.BucketOwnershipControlsRuleArgs(object_ownership="BucketOwnerEnforced"),
        opts=opts,
    )
    block = aws.s3.BucketPublicAccessBlock(
        f"{name}-public-access",
        bucket=bucket.id,
        block_public_acls=True,
        block_public_policy=True,
        ignore_public_acls=True,
        restrict_public_buckets=True,
        opts=opts,
    )
    aws.s3.BucketServerSideEncryptionConfiguration(
        f"{name}-encryption",
        bucket=bucket.id,
        rules=[
            aws.s3.BucketServerSideEncryptionConfigurationRuleArgs(
                apply_server_side_encryption_by_default=aws.s3.BucketServerSideEncryptionConfigurationRuleApplyServerSideEncryptionByDefaultArgs(
                    sse_algorithm="AES256"
                ),
                bucket_key_enabled=True,
            )
        ],
        opts=opts,
    )
    if versioned:
        aws.s3.BucketVersioning(
            f"{name}-versioning",
            bucket=bucket.id,
            versioning_configuration=aws.s3.BucketVersioningVersioningConfigurationArgs(
                status="Enabled"
            ),
            opts=opts,
        )
    # A deny-only bucket policy: it grants nothing, it refuses plain HTTP.
    policy = aws.s3.BucketPolicy(
        f"{name}-tls-only",
        bucket=bucket.id,
        policy=policies.to_json(tls_only_policy(bucket.arn)),
        opts=pulumi.ResourceOptions(parent=parent, depends_on=[block]),
    )
    return PrivateBucket(bucket=bucket, policy=policy)
