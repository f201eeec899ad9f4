"""The stack's configuration as typed values, read once from ``Pulumi.<stack>.yaml``.

Everything non-secret lives in :class:`StackConfig` (a frozen pydantic model that
forbids unknown keys, so a typo in ``Pulumi.dev.yaml`` fails ``pulumi up`` instead
of being silently ignored). Secrets stay Pulumi ``Output``s end to end
(:class:`StackSecrets`) so they are never written to state in plaintext.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Literal

import pulumi
from pydantic import BaseModel, ConfigDict, Field, model_validator

CONFIG_NAMESPACE = "rag"


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class SearchConfig(_Frozen):
    collection_name: str = Field(
        default="rag", alias="collectionName", pattern=r"^[a-z][a-z0-9-]{2,27}$"
    )
    index_name: str = Field(default="rag-chunks", alias="indexName")
    engine: Literal["faiss", "nmslib"] = "faiss"
    # None: AWS-owned key. Otherwise a customer managed KMS key ARN.
    kms_key_arn: str | None = Field(default=None, alias="kmsKeyArn")
    network: Literal["public", "vpc"] = "public"
    # IAM principal ARNs (users/roles) allowed to administer the collection's indexes.
    admin_principals: tuple[str, ...] = Field(default=(), alias="adminPrincipals")
    standby_replicas: bool = Field(default=False, alias="standbyReplicas")


class VpcConfig(_Frozen):
    vpc_id: str = Field(alias="vpcId")
    subnet_ids: tuple[str, ...] = Field(alias="subnetIds", min_length=1)
    security_group_ids: tuple[str, ...] = Field(alias="securityGroupIds", min_length=1)


class IngestConfig(_Frozen):
    max_receive_count: int = Field(default=5, ge=1, le=1000, alias="maxReceiveCount")
    retention_seconds: int = Field(
        default=4 * 86400, ge=60, le=14 * 86400, alias="retentionSeconds"
    )
    # The DLQ must outlive the source queue or redriven messages expire early.
    dlq_retention_seconds: int = Field(
        default=14 * 86400, ge=60, le=14 * 86400, alias="dlqRetentionSeconds"
    )
    versioned_bucket: bool = Field(default=True, alias="versionedBucket")
    force_destroy_bucket: bool = Field(default=False, alias="forceDestroyBucket")

    @model_validator(mode="after")
    def _dlq_outlives_source(self) -> IngestConfig:
        if self.dlq_retention_seconds <= self.retention_seconds:
            raise ValueError("ingest.dlqRetentionSeconds must exceed ingest.retentionSeconds")
        return self


class IndexerConfig(_Frozen):
    timeout_seconds: int = Field(default=120, ge=10, le=900, alias="timeoutSeconds")
    memory_mb: int = Field(default=3008, ge=512, le=10240, alias="memoryMb")
    batch_size: int = Field(default=10, ge=1, le=10000, alias="batchSize")
    batching_window_seconds: int = Field(default=2, ge=0, le=300, alias="batchingWindowSeconds")
    # SQS event-source scaling cap (AWS minimum is 2).
    max_concurrency: int = Field(default=4, ge=2, le=1000, alias="maxConcurrency")
    # EventBridge schedule of the reconciler run (the indexer function); null: none.
    reconcile_schedule: str | None = Field(
        default="rate(1 hour)",
        alias="reconcileSchedule",
        pattern=r"^(rate\(.+\)|cron\(.+\))$",
    )


class ChatApiConfig(_Frozen):
    stage_name: str = Field(default="live", alias="stageName", pattern=r"^[A-Za-z0-9_-]+$")
    throttling_rate_limit: float = Field(default=20.0, gt=0, alias="throttlingRateLimit")
    throttling_burst_limit: int = Field(default=40, ge=1, alias="throttlingBurstLimit")
    auth: Literal["token", "cognito", "none"] = "token"
    # Members of this group (Cognito group, or in rag:accessTokens) read every document.
    admin_group: str = Field(
        default="rag-admins", alias="adminGroup", pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:@+/=-]{0,127}$"
    )
    query_timeout_seconds: int = Field(default=300, ge=10, le=900, alias="queryTimeoutSeconds")
    query_memory_mb: int = Field(default=2048, ge=512, le=10240, alias="queryMemoryMb")
    # "create": the stack sets the account-wide API Gateway CloudWatch role (needed for
    # access logs); "keep": the account already has one and the stack must not touch it.
    account_log_role: Literal["create", "keep"] = Field(default="create", alias="accountLogRole")


class ModelConfig(_Frozen):
    source: Literal["sagemaker", "existing", "bedrock"] = "sagemaker"
    hf_model_id: str = Field(default="meta-llama/Llama-2-7b-chat-hf", alias="hfModelId")
    instance_type: str = Field(default="ml.g5.2xlarge", alias="instanceType")
    # Hugging Face TGI deep learning container; "{region}" is filled in.
    image_uri: str = Field(
        default=(
            "763104351884.dkr.ecr.{region}.amazonaws.com/huggingface-pytorch-tgi-inference:"
            "2.4.0-tgi2.4.0-gpu-py311-cu124-ubuntu22.04"
        ),
        alias="imageUri",
    )
    max_input_tokens: int = Field(default=3072, ge=256, alias="maxInputTokens")
    max_total_tokens: int = Field(default=4096, ge=512, alias="maxTotalTokens")
    endpoint_name: str | None = Field(default=None, alias="endpointName")
    bedrock_model_id: str = Field(default="meta.llama2-13b-chat-v1", alias="bedrockModelId")
    family: Literal["llama2", "chatml", "llama3"] = "llama2"

    @model_validator(mode="after")
    def _existing_needs_name(self) -> ModelConfig:
        if self.source == "existing" and not self.endpoint_name:
            raise ValueError("model.endpointName is required when model.source is 'existing'")
        return self


class ObservabilityConfig(_Frozen):
    log_retention_days: int = Field(default=30, alias="logRetentionDays")
    alarm_topic_arn: str | None = Field(default=None, alias="alarmTopicArn")
    oldest_message_age_seconds: int = Field(default=900, ge=60, alias="oldestMessageAgeSeconds")


class LambdaConfig(_Frozen):
    architecture: Literal["arm64", "x86_64"] = "arm64"
    python_version: Literal["3.12", "3.11"] = Field(default="3.12", alias="pythonVersion")
    log_level: str = Field(default="INFO", alias="logLevel")


class StackConfig(_Frozen):
    region: str = "us-east-1"
    search: SearchConfig = Field(default_factory=SearchConfig)
    vpc: VpcConfig | None = None
    ingest: IngestConfig = Field(default_factory=IngestConfig)
    indexer: IndexerConfig = Field(default_factory=IndexerConfig)
    chat: ChatApiConfig = Field(default_factory=ChatApiConfig)
    model: ModelConfig = Field(default_factory=ModelConfig)
    observability: ObservabilityConfig = Field(default_factory=ObservabilityConfig)
    lambda_: LambdaConfig = Field(default_factory=LambdaConfig, alias="lambda")

    @model_validator(mode="after")
    def _vpc_when_needed(self) -> StackConfig:
        if self.search.network == "vpc" and self.vpc is None:
            raise ValueError(
                "rag:vpc (vpcId, subnetIds, securityGroupIds) is required for search.network=vpc"
            )
        return self

    @property
    def uses_vpc(self) -> bool:
        return self.search.network == "vpc"


@dataclass(frozen=True)
class StackSecrets:
    """Secret config values, kept as Pulumi secrets (never plaintext in state)."""

    static_token: pulumi.Output[str] | None = None
    hf_token: pulumi.Output[str] | None = None
    # JSON {token: {"principal": ..., "groups": [...]}}; only digests reach the authorizer.
    access_tokens: pulumi.Output[str] | None = None


_SECTIONS = ("search", "vpc", "ingest", "indexer", "chat", "model", "observability", "lambda")


def load_config() -> tuple[StackConfig, StackSecrets]:
    """Read ``rag:*`` (and ``aws:region``) from the current stack."""
    cfg = pulumi.Config(CONFIG_NAMESPACE)
    raw: dict[str, Any] = {"region": pulumi.Config("aws").require("region")}
    for section in _SECTIONS:
        value = cfg.get_object(section)
        if value is not None:
            raw[section] = value
    config = StackConfig.model_validate(raw)
    secrets = StackSecrets(
        static_token=cfg.get_secret("staticToken"),
        hf_token=cfg.get_secret("hfToken"),
        access_tokens=cfg.get_secret("accessTokens"),
    )
    if (
        config.chat.auth == "token"
        and secrets.static_token is None
        and secrets.access_tokens is None
    ):
        raise ValueError(
            "chat.auth is 'token' but no token is set: run "
            '`pulumi config set --secret rag:accessTokens "$(cat tokens.json)"` (a token per '
            "principal with its groups, see docs/security.md) or "
            "`pulumi config set --secret rag:staticToken $(openssl rand -hex 32)`"
        )
    if config.model.source == "sagemaker" and secrets.hf_token is None:
        raise ValueError(
            "model.source is 'sagemaker' and Llama 2 is gated on the Hugging Face Hub: run "
            "`pulumi config set --secret rag:hfToken hf_...` (or use model.source existing/bedrock)"
        )
    return config, secrets


def name_safe(text: str, max_chars: int) -> str:
    """Lower case, letters/digits/hyphens only, at most ``max_chars``, no edge hyphens."""
    return re.sub(r"[^a-z0-9-]", "-", text.lower())[:max_chars].strip("-")


def resource_prefix(project: str, stack: str) -> str:
    """A short, name-safe prefix for the few resources that need a fixed name."""
    return name_safe(f"{project}-{stack}", 40)
