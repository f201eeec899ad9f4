"""The chat model: a SageMaker TGI endpoint for Llama 2, an existing endpoint, Bedrock,
or any OpenAI-compatible endpoint (``model.source: openai``).

The chat API depends only on the endpoint's *name* (a plain string chosen
here), never on the endpoint resource: a fresh account often has a quota of 0
for GPU endpoint instances, and a failed endpoint must not keep the Lambda,
routes and stage from being created. Until the endpoint is in service the
query service answers ``model_unavailable``.

No secret is kept on AWS: the container loads Llama 2 from SageMaker
JumpStart's S3 cache (gated by the EULA flag in ``ModelAccessConfig``) or
from weights staged in S3 (``model.weightsS3Uri``), never from the Hugging
Face Hub with a token in the model's environment.

An OpenAI-compatible endpoint's API key (the secret ``rag:openaiApiKey``) is
stored in a Secrets Manager secret of its own; the query function gets its
ARN and ``secretsmanager:GetSecretValue`` on that one secret, and reads the
key on its first answer. The key is never a Lambda environment variable:
those are readable by anyone allowed ``lambda:GetFunctionConfiguration``,
and rotating a secret needs no redeploy.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_aws as aws

from infra import env, policies
from infra.config import StackConfig

# Bedrock cross-region inference profiles are named "<geo>.<model id>".
_PROFILE_PREFIX = re.compile(r"^(us|eu|apac|global|us-gov|ca|jp|au)\.")
_ECR_IMAGE = re.compile(r"^(\d{12})\.dkr\.ecr\.([a-z0-9-]+)\.amazonaws\.com(?:\.cn)?/([^:@]+)")


# JumpStart keeps gated (licensed) models in a private cache bucket per region.
JUMPSTART_GATED_BUCKET = "jumpstart-private-cache-prod-{region}"
MODEL_DIR = "/opt/ml/model"


@dataclass(frozen=True)
class ModelArgs:
    config: StackConfig
    endpoint_name: str
    account: pulumi.Output[str]
    partition: pulumi.Output[str]
    openai_api_key: pulumi.Output[str] | None = None  # a Pulumi secret


@dataclass(frozen=True)
class WeightsLocation:
    bucket: str
    prefix: str  # ends with "/"
    accept_eula: bool

    @property
    def uri(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}"


def weights_location(config: StackConfig) -> WeightsLocation:
    model = config.model
    if model.weights == "s3":
        assert model.weights_s3_uri is not None  # the config model requires it
        bucket, _, prefix = model.weights_s3_uri.removeprefix("s3://").partition("/")
        return WeightsLocation(bucket, prefix, accept_eula=False)
    prefix = (
        f"meta-textgeneration/{model.jumpstart_model_id}/artifacts/inference-prepack/"
        f"{model.jumpstart_artifact_version}/"
    )
    return WeightsLocation(
        JUMPSTART_GATED_BUCKET.format(region=config.region), prefix, accept_eula=model.accept_eula
    )


def endpoint_arn(
    name: str, region: str, account: pulumi.Output[str], partition: pulumi.Output[str]
) -> pulumi.Output[str]:
    """Built from the name (SageMaker lower-cases it in ARNs), not read from the resource."""
    return pulumi.Output.format(
        "arn:{0}:sagemaker:{1}:{2}:endpoint/{3}", partition, region, account, name.lower()
    )


def image_repository_arn(image_uri: str, partition: pulumi.Output[str]) -> pulumi.Output[str]:
    match = _ECR_IMAGE.match(image_uri)
    if not match:
        raise ValueError(f"model.imageUri is not an ECR image: {image_uri}")
    account, region, repo = match.groups()
    return pulumi.Output.format(
        "arn:{0}:ecr:{1}:{2}:repository/{3}", partition, region, account, repo
    )


def bedrock_resources(
    model_id: str, region: str, account: pulumi.Output[str], partition: pulumi.Output[str]
) -> list[pulumi.Output[str]]:
    if not _PROFILE_PREFIX.match(model_id):
        return [
            pulumi.Output.format(
                "arn:{0}:bedrock:{1}::foundation-model/{2}", partition, region, model_id
            )
        ]
    base = _PROFILE_PREFIX.sub("", model_id)
    return [
        pulumi.Output.format(
            "arn:{0}:bedrock:{1}:{2}:inference-profile/{3}", partition, region, account, model_id
        ),
        # A profile routes to the same model in the regions of its geography.
        pulumi.Output.format("arn:{0}:bedrock:*::foundation-model/{1}", partition, base),
    ]


class Model(pulumi.ComponentResource):
    # What the query function's role needs to reach the model (may be empty).
    invoke_statements: list[dict[str, Any]]
    environment: dict[str, pulumi.Input[str]]
    endpoint: aws.sagemaker.Endpoint | None = None
    endpoint_name: str | None = None
    api_key_secret: aws.secretsmanager.Secret | None = None

    def __init__(self, name: str, args: ModelArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("rag:infra:Model", name, None, opts)
        cfg = args.config
        if cfg.model.source == "openai":
            self._openai(name, args)
        elif cfg.model.source == "bedrock":
            resources = bedrock_resources(
                cfg.model.bedrock_model_id, cfg.region, args.account, args.partition
            )
            self.invoke_statements = [
                policies.statement(
                    "InvokeChatModel",
                    ["bedrock:InvokeModel", "bedrock:InvokeModelWithResponseStream"],
                    resources,
                )
            ]
            self.environment = env.model_environment(cfg, None)
        else:
            if cfg.model.source == "sagemaker":
                endpoint_name = args.endpoint_name
                self.endpoint = self._sagemaker_endpoint(name, args)
            else:
                assert cfg.model.endpoint_name is not None
                endpoint_name = cfg.model.endpoint_name
            self.endpoint_name = endpoint_name
            self.invoke_statements = [
                policies.statement(
                    "InvokeChatModel",
                    ["sagemaker:InvokeEndpoint", "sagemaker:InvokeEndpointWithResponseStream"],
                    [endpoint_arn(endpoint_name, cfg.region, args.account, args.partition)],
                )
            ]
            self.environment = env.model_environment(cfg, endpoint_name)
        self.register_outputs({})

    def _openai(self, name: str, args: ModelArgs) -> None:
        """No AWS model resources; the API key (if any) goes into Secrets Manager."""
        self.invoke_statements = []
        if args.openai_api_key is None:
            self.environment = env.model_environment(args.config, None)
            return
        child = pulumi.ResourceOptions(parent=self)
        secret = aws.secretsmanager.Secret(
            f"{name}-openai-api-key",
            description="API key of the OpenAI-compatible chat model (rag:openaiApiKey)",
            opts=child,
        )
        aws.secretsmanager.SecretVersion(
            f"{name}-openai-api-key-value",
            secret_id=secret.id,
            secret_string=args.openai_api_key,  # a Pulumi secret (encrypted in state)
            opts=child,
        )
        self.api_key_secret = secret
        self.invoke_statements = [
            policies.statement("ReadModelApiKey", ["secretsmanager:GetSecretValue"], [secret.arn])
        ]
        self.environment = env.model_environment(args.config, None, secret.arn)

    def _sagemaker_endpoint(self, name: str, args: ModelArgs) -> aws.sagemaker.Endpoint:
        cfg = args.config
        model = cfg.model
        image = model.image_uri.format(region=cfg.region)
        weights = weights_location(cfg)
        child = pulumi.ResourceOptions(parent=self)
        role = aws.iam.Role(
            f"{name}-role",
            assume_role_policy=policies.to_json(policies.assume_role("sagemaker.amazonaws.com")),
            opts=child,
        )
        # Created by the stack (with retention) so the role needs no logs:CreateLogGroup.
        logs = aws.cloudwatch.LogGroup(
            f"{name}-logs",
            name=f"/aws/sagemaker/Endpoints/{args.endpoint_name}",
            retention_in_days=cfg.observability.log_retention_days,
            opts=child,
        )
        statements = [
            # ECR's auth token is account-wide: AWS requires Resource "*" for this action.
            policies.statement("EcrLogin", ["ecr:GetAuthorizationToken"], ["*"]),
            policies.statement(
                "PullTgiImage",
                [
                    "ecr:BatchGetImage",
                    "ecr:GetDownloadUrlForLayer",
                    "ecr:BatchCheckLayerAvailability",
                ],
                [image_repository_arn(image, args.partition)],
            ),
            policies.statement(
                "WriteEndpointLogs",
                ["logs:CreateLogStream", "logs:PutLogEvents", "logs:DescribeLogStreams"],
                [logs.arn, pulumi.Output.concat(logs.arn, ":*")],
            ),
            # PutMetricData has no resource-level permissions (AWS requires "*");
            # the condition keeps it to SageMaker's namespaces.
            policies.statement(
                "EndpointMetrics",
                ["cloudwatch:PutMetricData"],
                ["*"],
                {"StringLike": {"cloudwatch:namespace": "/aws/sagemaker/*"}},
            ),
            *weights_statements(weights, args.partition),
        ]
        policy = aws.iam.RolePolicy(
            f"{name}-policy",
            role=role.id,
            policy=policies.to_json(policies.document(*statements)),
            opts=child,
        )
        container_env: dict[str, pulumi.Input[str]] = {
            # TGI serves the files SageMaker copied from S3, so it never calls the Hub.
            "HF_MODEL_ID": MODEL_DIR,
            "SM_NUM_GPUS": "1",
            "MAX_INPUT_TOKENS": str(model.max_input_tokens),
            "MAX_TOTAL_TOKENS": str(model.max_total_tokens),
        }
        source = aws.sagemaker.ModelPrimaryContainerModelDataSourceS3DataSourceArgs(
            s3_uri=weights.uri,
            s3_data_type="S3Prefix",
            compression_type="None",
            model_access_config=(
                aws.sagemaker.ModelPrimaryContainerModelDataSourceS3DataSourceModelAccessConfigArgs(
                    accept_eula=True
                )
                if weights.accept_eula
                else None
            ),
        )
        sm_model = aws.sagemaker.Model(
            f"{name}-model",
            execution_role_arn=role.arn,
            primary_container=aws.sagemaker.ModelPrimaryContainerArgs(
                image=image,
                environment=container_env,
                model_data_source=aws.sagemaker.ModelPrimaryContainerModelDataSourceArgs(
                    s3_data_sources=[source]
                ),
            ),
            opts=pulumi.ResourceOptions(parent=self, depends_on=[policy]),
        )
        endpoint_config = aws.sagemaker.EndpointConfiguration(
            f"{name}-config",
            production_variants=[
                aws.sagemaker.EndpointConfigurationProductionVariantArgs(
                    variant_name="primary",
                    model_name=sm_model.name,
                    instance_type=model.instance_type,
                    initial_instance_count=1,
                    container_startup_health_check_timeout_in_seconds=900,
                    model_data_download_timeout_in_seconds=1800,
                )
            ],
            opts=child,
        )
        return aws.sagemaker.Endpoint(
            f"{name}-endpoint",
            name=args.endpoint_name,
            endpoint_config_name=endpoint_config.name,
            opts=pulumi.ResourceOptions(parent=self, depends_on=[logs]),
        )


def weights_statements(
    weights: WeightsLocation, partition: pulumi.Output[str]
) -> list[dict[str, Any]]:
    """Read the model's files under their prefix only."""
    bucket = pulumi.Output.format("arn:{0}:s3:::{1}", partition, weights.bucket)
    return [
        policies.statement(
            "ReadModelWeights",
            ["s3:GetObject"],
            [pulumi.Output.format("{0}/{1}*", bucket, weights.prefix)],
        ),
        policies.statement(
            "ListModelWeights",
            ["s3:ListBucket"],
            [bucket],
            {"StringLike": {"s3:prefix": [f"{weights.prefix}*"]}},
        ),
    ]
