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
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, TypedDict

import pulumi
import pulumi_aws as aws
import pulumi_aws_native as aws_native

from infra import env, policies
from infra.config import StackConfig
from shared.model_ids import PROFILE_PREFIX, bedrock_base_model

# Bedrock cross-region inference profiles are named "<geo>.<model id>".
_ECR_IMAGE = re.compile(r"^(\d{12})\.dkr\.ecr\.([a-z0-9-]+)\.amazonaws\.com(?:\.cn)?/([^:@]+)")


# JumpStart keeps gated (licensed) models in a private cache bucket per region.
JUMPSTART_GATED_BUCKET = "jumpstart-private-cache-prod-{region}"
MODEL_DIR = "/opt/ml/model"
# Application Auto Scaling's names for an inference component's copy count.
IC_DIMENSION = "sagemaker:inference-component:DesiredCopyCount"
# SageMaker emits it when a request reaches a component with no copy (scaled to zero).
NO_CAPACITY_METRIC = "NoCapacityInvocationFailures"
# Concurrent requests per copy, sampled every 10 s: fits long streamed answers.
CONCURRENCY_METRIC = "SageMakerInferenceComponentConcurrentRequestsPerCopyHighResolution"


class ScaledDimension(TypedDict):
    """What an Application Auto Scaling target and its policies all name."""

    service_namespace: str
    resource_id: str
    scalable_dimension: str


def inference_component_name(endpoint_name: str) -> str:
    return f"{endpoint_name}-ic"


def inference_component_arn(
    name: str, region: str, account: pulumi.Output[str], partition: pulumi.Output[str]
) -> pulumi.Output[str]:
    return pulumi.Output.format(
        "arn:{0}:sagemaker:{1}:{2}:inference-component/{3}",
        partition,
        region,
        account,
        name.lower(),
    )


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
    if not PROFILE_PREFIX.match(model_id):
        return [
            pulumi.Output.format(
                "arn:{0}:bedrock:{1}::foundation-model/{2}", partition, region, model_id
            )
        ]
    base = bedrock_base_model(model_id)
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
    # Scale to zero: the component hosting Llama 2, its scaling target, policies, alarm.
    inference_component: aws_native.sagemaker.InferenceComponent | None = None
    inference_component_name: str | None = None
    scaling_target: aws.appautoscaling.Target | None = None
    wake_alarm: aws.cloudwatch.MetricAlarm | None = None
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
            else:
                assert cfg.model.endpoint_name is not None
                endpoint_name = cfg.model.endpoint_name
            self.endpoint_name = endpoint_name
            resources = [endpoint_arn(endpoint_name, cfg.region, args.account, args.partition)]
            if cfg.model.uses_inference_component:
                self.inference_component_name = inference_component_name(endpoint_name)
                resources.append(
                    inference_component_arn(
                        self.inference_component_name, cfg.region, args.account, args.partition
                    )
                )
            self.invoke_statements = [
                policies.statement(
                    "InvokeChatModel",
                    ["sagemaker:InvokeEndpoint", "sagemaker:InvokeEndpointWithResponseStream"],
                    resources,
                )
            ]
            self.environment = env.model_environment(
                cfg, endpoint_name, inference_component=self.inference_component_name
            )
        self._name, self._args = name, args
        self.register_outputs({})

    def create_endpoint(self, after: Sequence[pulumi.Resource]) -> None:
        """Declare the SageMaker endpoint (source "sagemaker"), after everything in ``after``.

        CreateEndpoint is the step a fresh account most often refuses (a GPU quota of
        0: ResourceLimitExceeded at once). Pulumi starts no new operation after a
        failure, so anything still waiting would never be created; waiting for the
        rest of the stack makes the endpoint the last operation, and its failure
        leaves every other resource in place (docs/deploy.md).
        """
        if self._args.config.model.source != "sagemaker":
            return
        self.endpoint = self._sagemaker_endpoint(self._name, self._args, list(after))

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

    def _sagemaker_endpoint(
        self, name: str, args: ModelArgs, after: list[pulumi.Resource]
    ) -> aws.sagemaker.Endpoint:
        cfg = args.config
        model = cfg.model
        image = model.image_uri.format(region=cfg.region)
        weights = weights_location(cfg)
        child = pulumi.ResourceOptions(parent=self)
        first = pulumi.ResourceOptions(parent=self, depends_on=after)
        role = aws.iam.Role(
            f"{name}-role",
            assume_role_policy=policies.to_json(policies.assume_role("sagemaker.amazonaws.com")),
            opts=first,
        )
        # Created by the stack (with retention) so the role needs no logs:CreateLogGroup.
        log_groups = [
            aws.cloudwatch.LogGroup(
                f"{name}-logs" if kind == "Endpoints" else f"{name}-component-logs",
                name=f"/aws/sagemaker/{kind}/{resource}",
                retention_in_days=cfg.observability.log_retention_days,
                opts=first,
            )
            for kind, resource in (
                ("Endpoints", args.endpoint_name),
                # An inference component's container logs to a group named after it.
                ("InferenceComponents", self.inference_component_name),
            )
            if resource is not None
        ]
        logs = log_groups[0]
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
                [
                    arn
                    for group in log_groups
                    for arn in (group.arn, pulumi.Output.concat(group.arn, ":*"))
                ],
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
        if model.uses_inference_component:
            endpoint_config = self._component_config(name, args, role)
        else:
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
        endpoint = aws.sagemaker.Endpoint(
            f"{name}-endpoint",
            name=args.endpoint_name,
            endpoint_config_name=endpoint_config.name,
            opts=pulumi.ResourceOptions(parent=self, depends_on=[logs, *after]),
        )
        if model.uses_inference_component:
            self._component(name, args, sm_model, endpoint)
        return endpoint

    def _component_config(
        self, name: str, args: ModelArgs, role: aws.iam.Role
    ) -> aws.sagemaker.EndpointConfiguration:
        """An endpoint that scales to zero instances, hosting Llama 2 as an inference component.

        AWS ("Scale an endpoint to zero instances"): the variant has no model and
        ManagedInstanceScaling with MinInstanceCount 0; the component's copy count is
        an Application Auto Scaling target with minimum 0; a target-tracking policy
        scales it in when idle; and because target tracking cannot leave zero, a step
        policy on the NoCapacityInvocationFailures alarm adds a copy when a question
        arrives (the question itself fails until the copy is in service: the query
        service waits for it, telling the client, see docs/protocol.md).
        """
        model = args.config.model
        return aws.sagemaker.EndpointConfiguration(
            f"{name}-config",
            # Required when the variant names no model (inference components).
            execution_role_arn=role.arn,
            production_variants=[
                aws.sagemaker.EndpointConfigurationProductionVariantArgs(
                    variant_name="primary",
                    instance_type=model.instance_type,
                    initial_instance_count=1,
                    managed_instance_scaling=aws.sagemaker.EndpointConfigurationProductionVariantManagedInstanceScalingArgs(
                        status="ENABLED",
                        min_instance_count=0,
                        max_instance_count=model.max_instances,
                    ),
                    routing_configs=[
                        aws.sagemaker.EndpointConfigurationProductionVariantRoutingConfigArgs(
                            routing_strategy="LEAST_OUTSTANDING_REQUESTS"
                        )
                    ],
                )
            ],
            opts=pulumi.ResourceOptions(parent=self),
        )

    def _component(
        self,
        name: str,
        args: ModelArgs,
        sm_model: aws.sagemaker.Model,
        endpoint: aws.sagemaker.Endpoint,
    ) -> None:
        """Llama 2 as an inference component on ``endpoint``, with its scaling."""
        model = args.config.model
        assert self.inference_component_name is not None
        # The AWS Cloud Control provider reads its region from `aws-native:region`,
        # not `aws:region`: without an explicit provider `pulumi up` stops on the
        # missing key (the mocks would not notice). The stack's region, once.
        native = aws_native.Provider(
            f"{name}-aws-native",
            region=args.config.region,
            opts=pulumi.ResourceOptions(parent=self),
        )
        component = aws_native.sagemaker.InferenceComponent(
            f"{name}-component",
            inference_component_name=self.inference_component_name,
            endpoint_name=endpoint.name,
            variant_name="primary",
            specification=aws_native.sagemaker.InferenceComponentSpecificationArgs(
                model_name=sm_model.name,
                compute_resource_requirements=aws_native.sagemaker.InferenceComponentComputeResourceRequirementsArgs(
                    # One GPU per copy; host memory is a scheduling reservation, and
                    # more than the instance's schedulable pool is refused outright.
                    number_of_accelerator_devices_required=1,
                    min_memory_required_in_mb=1024,
                ),
                startup_parameters=aws_native.sagemaker.InferenceComponentStartupParametersArgs(
                    container_startup_health_check_timeout_in_seconds=900,
                    model_data_download_timeout_in_seconds=1800,
                ),
            ),
            # One copy at creation, so `pulumi up` ends with a model that answers;
            # the policies take it to zero after the idle period.
            runtime_config=aws_native.sagemaker.InferenceComponentRuntimeConfigArgs(copy_count=1),
            opts=pulumi.ResourceOptions(parent=self, provider=native),
        )
        self.inference_component = component
        self._scaling(name, component, model.max_instances, model.streams_per_copy)

    def _scaling(
        self,
        name: str,
        component: aws_native.sagemaker.InferenceComponent,
        max_copies: int,
        streams_per_copy: int,
    ) -> None:
        assert self.inference_component_name is not None
        # What the target and both policies scale: the component's copy count.
        scaled = ScaledDimension(
            service_namespace="sagemaker",
            resource_id=f"inference-component/{self.inference_component_name}",
            scalable_dimension=IC_DIMENSION,
        )
        target = aws.appautoscaling.Target(
            f"{name}-scaling-target",
            **scaled,
            min_capacity=0,
            max_capacity=max_copies,
            opts=pulumi.ResourceOptions(parent=self, depends_on=[component]),
        )
        self.scaling_target = target
        on_target = pulumi.ResourceOptions(parent=self, depends_on=[target])
        aws.appautoscaling.Policy(
            f"{name}-scale-by-streams",
            policy_type="TargetTrackingScaling",
            **scaled,
            target_tracking_scaling_policy_configuration=aws.appautoscaling.PolicyTargetTrackingScalingPolicyConfigurationArgs(
                target_value=float(streams_per_copy),
                predefined_metric_specification=aws.appautoscaling.PolicyTargetTrackingScalingPolicyConfigurationPredefinedMetricSpecificationArgs(
                    predefined_metric_type=CONCURRENCY_METRIC
                ),
                scale_in_cooldown=300,
                scale_out_cooldown=60,
            ),
            opts=on_target,
        )
        wake = aws.appautoscaling.Policy(
            f"{name}-wake-from-zero",
            policy_type="StepScaling",
            **scaled,
            step_scaling_policy_configuration=aws.appautoscaling.PolicyStepScalingPolicyConfigurationArgs(
                adjustment_type="ChangeInCapacity",
                metric_aggregation_type="Maximum",
                cooldown=60,
                step_adjustments=[
                    aws.appautoscaling.PolicyStepScalingPolicyConfigurationStepAdjustmentArgs(
                        metric_interval_lower_bound="0", scaling_adjustment=1
                    )
                ],
            ),
            opts=on_target,
        )
        self.wake_alarm = aws.cloudwatch.MetricAlarm(
            f"{name}-no-capacity",
            alarm_description=(
                "A question reached the model while it had no copy: add one (wake from zero)"
            ),
            namespace="AWS/SageMaker",
            metric_name=NO_CAPACITY_METRIC,
            dimensions={"InferenceComponentName": self.inference_component_name},
            statistic="Sum",
            period=60,
            evaluation_periods=1,
            datapoints_to_alarm=1,
            # One refused question is enough (AWS's example waits for a second one).
            threshold=1,
            comparison_operator="GreaterThanOrEqualToThreshold",
            treat_missing_data="notBreaching",
            alarm_actions=[wake.arn],
            opts=pulumi.ResourceOptions(parent=self),
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
