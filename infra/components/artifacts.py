"""A private bucket for the Lambda zips (the service zip exceeds the 50 MB direct upload)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from infra.components.buckets import private_bucket
from infra.components.lambdas import CodeLocation
from infra.lambda_artifacts import LambdaArtifact


@dataclass(frozen=True)
class ArtifactStoreArgs:
    artifacts: Mapping[str, LambdaArtifact]


class ArtifactStore(pulumi.ComponentResource):
    code: dict[str, CodeLocation]

    def __init__(
        self, name: str, args: ArtifactStoreArgs, opts: pulumi.ResourceOptions | None = None
    ):
        super().__init__("rag:infra:ArtifactStore", name, None, opts)
        # Artifacts are rebuilt from the repo on every `up`: destroy may empty the bucket.
        self.bucket = private_bucket(f"{name}-bucket", self, versioned=False, force_destroy=True)
        self.code = {}
        for key, artifact in sorted(args.artifacts.items()):
            # The key carries the content hash: an unchanged artifact is the same object.
            object_key = f"{key}/{artifact.sha256_hex}.zip"
            obj = aws.s3.BucketObjectv2(
                f"{name}-{key}",
                bucket=self.bucket.bucket.id,
                key=object_key,
                source=pulumi.FileAsset(str(artifact.zip_path)),
                opts=pulumi.ResourceOptions(parent=self),
            )
            self.code[key] = CodeLocation(
                bucket=obj.bucket, key=obj.key, source_code_hash=artifact.source_code_hash
            )
        self.register_outputs({"bucket": self.bucket.bucket.id})
