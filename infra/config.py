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
import pulumi.runtime.config as pulumi_config
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from shared.model_ids import (
    DEFAULT_BEDROCK_CHAT_MODEL,
    PromptFamily,
    jumpstart_family,
    resolve_bedrock_family,
)
from shared.settings import AOSS_REFRESH_S, SETTLE_MARGIN

CONFIG_NAMESPACE = "rag"
# Lambda's longest function timeout (seconds).
LAMBDA_MAX_TIMEOUT = 900
# The indexer's default timeout on a classic collection (see resolved_for), and
# what it needs beyond the settle wait for a batch's fetch, embedding and writes.
CLASSIC_INDEXER_TIMEOUT = 300
INDEXER_WORK_MARGIN_S = 60
# Lambda runtimes on Amazon Linux 2023 (glibc 2.34). python3.11 runs on Amazon
# Linux 2 (glibc 2.26), but the artifacts' numpy and cryptography wheels are
# manylinux_2_28: every function would fail to import there.
SUPPORTED_PYTHON = ("3.12", "3.13")
# GPU instance families SageMaker real-time endpoints offer for TGI; the quota
# name is "<type> for endpoint usage" (rag doctor checks it).
_ENDPOINT_INSTANCE = re.compile(
    r"^ml\.(g4dn|g5|g6|g6e|p3|p4d|p4de|p5|p5e)\."
    r"(xlarge|2xlarge|4xlarge|8xlarge|12xlarge|16xlarge|24xlarge|48xlarge)$"
)


_DEFAULT_JUMPSTART = "meta-textgeneration-llama-2-7b-f"


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class SearchConfig(_Frozen):
    collection_name: str = Field(
        default="rag", alias="collectionName", pattern=r"^[a-z][a-z0-9-]{2,27}$"
    )
    index_name: str = Field(default="rag-chunks", alias="indexName")
    # faiss only: every k-NN search carries the caller's access filter inside
    # knn.filter, which only lucene and faiss support (efficient k-NN filtering),
    # and the stack's collection is AOSS. nmslib is refused with the reason.
    engine: Literal["faiss"] = "faiss"
    # None: AWS-owned key. Otherwise a customer managed KMS key ARN.
    kms_key_arn: str | None = Field(default=None, alias="kmsKeyArn")
    network: Literal["public", "vpc"] = "public"
    # IAM principal ARNs (users/roles) allowed to administer the collection's indexes.
    admin_principals: tuple[str, ...] = Field(default=(), alias="adminPrincipals")
    # None: off for classic collections; NextGen collection groups require them
    # (AWS), and at minimum OCU 0 they cost nothing while idle.
    standby_replicas: bool | None = Field(default=None, alias="standbyReplicas")
    # "nextgen": a NextGen collection in a collection group of its own, which scales
    # to zero OCU after 10 idle minutes when the minimums below are 0 (10 s refresh).
    # "classic": a classic collection (no group; always-on OCUs; 60 s refresh).
    # None: nextgen for the "dev" stack, classic for every other (see resolved_for).
    collection_kind: Literal["nextgen", "classic"] | None = Field(
        default=None, alias="collectionKind"
    )
    # The collection group's capacity limits (NextGen only). Minimum 0 = scale to zero;
    # AWS requires a maximum of at least 2 OCU.
    min_indexing_ocu: float = Field(default=0, ge=0, le=1000, alias="minIndexingOcu")
    min_search_ocu: float = Field(default=0, ge=0, le=1000, alias="minSearchOcu")
    max_indexing_ocu: int = Field(default=4, ge=2, le=1000, alias="maxIndexingOcu")
    max_search_ocu: int = Field(default=4, ge=2, le=1000, alias="maxSearchOcu")

    @model_validator(mode="after")
    def _capacity_fits(self) -> SearchConfig:
        for side, low, high in (
            ("Indexing", self.min_indexing_ocu, self.max_indexing_ocu),
            ("Search", self.min_search_ocu, self.max_search_ocu),
        ):
            if low > high:
                raise ValueError(
                    f"search.min{side}Ocu ({low:g}) exceeds search.max{side}Ocu ({high}): run "
                    f"`pulumi config set --path rag:search.max{side}Ocu {max(2, int(low + 0.5))}`"
                )
            if low * 2 != int(low * 2):
                raise ValueError(f"search.min{side}Ocu must be a multiple of 0.5 OCU, not {low}")
        if self.collection_kind == "nextgen" and self.standby_replicas is False:
            raise ValueError(
                "search.standbyReplicas false is refused for a NextGen collection: AWS requires "
                "standby replicas in NextGen collection groups (at minimum OCU 0 they cost "
                "nothing idle). Run `pulumi config rm --path rag:search.standbyReplicas`, or "
                "`pulumi config set --path rag:search.collectionKind classic`"
            )
        return self

    @property
    def kind(self) -> Literal["nextgen", "classic"]:
        """The resolved kind (call StackConfig.resolved_for first; classic if unresolved)."""
        return self.collection_kind or "classic"

    @property
    def scales_to_zero(self) -> bool:
        return self.kind == "nextgen" and self.min_indexing_ocu == 0 and self.min_search_ocu == 0

    @field_validator("engine", mode="before")
    @classmethod
    def _filterable_engine(cls, value: Any) -> Any:
        if value != "faiss":
            raise ValueError(
                f"search.engine {value!r} is not supported: every search puts the caller's "
                "access filter inside the k-NN clause (knn.filter), which only the faiss and "
                "lucene engines support, and the stack's AOSS collection uses faiss. Run "
                "`pulumi config set --path rag:search.engine faiss`"
            )
        return value


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
    # API Gateway access and execution logs for the WebSocket stage. They need the
    # account-wide (per region) CloudWatch role to be set first, else the stage
    # is refused: off by default so a fresh account deploys (docs/deploy.md).
    api_logs: bool = Field(default=False, alias="apiLogs")
    # "keep" (default): never touch the account-wide role. "create": this stack
    # sets it (it replaces any role other APIs in the account rely on).
    account_log_role: Literal["create", "keep"] = Field(default="keep", alias="accountLogRole")

    @model_validator(mode="after")
    def _role_only_with_logs(self) -> ChatApiConfig:
        if self.account_log_role == "create" and not self.api_logs:
            raise ValueError(
                "chat.accountLogRole 'create' only serves chat.apiLogs: run `pulumi config set "
                "--path rag:chat.apiLogs true`, or leave accountLogRole at 'keep'"
            )
        return self


class ModelConfig(_Frozen):
    # "openai": any OpenAI-compatible streaming endpoint (vLLM, a llama.cpp
    # server, Ollama behind TLS, a hosted API); no model resources are created.
    source: Literal["sagemaker", "existing", "bedrock", "openai"] = "sagemaker"
    # Where the SageMaker endpoint loads Llama 2 from, with no secret on AWS:
    # "jumpstart": SageMaker JumpStart's copy in its S3 cache (needs acceptEula);
    # "s3": weights you staged yourself (Hugging Face layout) under weightsS3Uri.
    weights: Literal["jumpstart", "s3"] = "jumpstart"
    jumpstart_model_id: str = Field(
        default=_DEFAULT_JUMPSTART,
        alias="jumpstartModelId",
        pattern=r"^[a-z0-9][a-z0-9-]+$",
    )
    jumpstart_artifact_version: str = Field(
        default="v1.0.0", alias="jumpstartArtifactVersion", pattern=r"^v\d+\.\d+\.\d+$"
    )
    # Meta's Llama 2 licence; JumpStart serves the weights only when it is accepted.
    accept_eula: bool = Field(default=False, alias="acceptEula")
    weights_s3_uri: str | None = Field(
        default=None, alias="weightsS3Uri", pattern=r"^s3://[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]/.+/$"
    )
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
    endpoint_name: str | None = Field(
        default=None, alias="endpointName", pattern=r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$"
    )
    # Llama 2 chat is past its Bedrock end of life (still reachable by naming it).
    bedrock_model_id: str = Field(default=DEFAULT_BEDROCK_CHAT_MODEL, alias="bedrockModelId")
    # Prompt template; when unset it follows the model (the Bedrock id, or the
    # JumpStart id: llama3 for Llama 3 models, llama2 otherwise).
    family: PromptFamily = "llama2"
    # source "openai": the server's base URL (…/v1) and model name; its API key
    # is the secret rag:openaiApiKey (kept in Secrets Manager, docs/models.md).
    openai_base_url: str | None = Field(default=None, alias="openaiBaseUrl")
    openai_model: str | None = Field(default=None, alias="openaiModel", min_length=1)
    # Plain http sends questions, sources and the key unencrypted: only on request.
    openai_allow_http: bool = Field(default=False, alias="openaiAllowHttp")
    # source "sagemaker": host Llama 2 as an inference component on an endpoint that
    # scales to zero instances when idle (and back out on the first question, in
    # several minutes). None: on for the "dev" stack, off (always on) for every other.
    scale_to_zero: bool | None = Field(default=None, alias="scaleToZero")
    # The most instances (= model copies, one GPU each) the endpoint scales out to.
    max_instances: int = Field(default=1, ge=1, le=20, alias="maxInstances")
    # Concurrent answers per model copy the target-tracking policy aims at.
    streams_per_copy: int = Field(default=4, ge=1, le=64, alias="streamsPerCopy")

    @model_validator(mode="before")
    @classmethod
    def _removed_keys(cls, data: Any) -> Any:
        if isinstance(data, dict) and "hfModelId" in data:
            raise ValueError(
                "model.hfModelId is no longer used: the endpoint loads Llama 2 from SageMaker "
                "JumpStart (model.jumpstartModelId) or from model.weightsS3Uri, so no Hugging "
                "Face token is needed; run `pulumi config rm --path rag:model.hfModelId`"
            )
        return data

    @model_validator(mode="before")
    @classmethod
    def _family_follows_model(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        configured = data.get("family")
        try:
            if data.get("source") == "bedrock":
                model_id = data.get("bedrockModelId", data.get("bedrock_model_id"))
                family = resolve_bedrock_family(
                    str(model_id or DEFAULT_BEDROCK_CHAT_MODEL), configured
                )
            elif configured is None and data.get("source", "sagemaker") == "sagemaker":
                jumpstart = data.get("jumpstartModelId", data.get("jumpstart_model_id"))
                family = jumpstart_family(str(jumpstart or _DEFAULT_JUMPSTART))
            else:
                return data
        except ValueError as exc:
            raise ValueError(f"model.bedrockModelId / model.family: {exc}") from None
        return {**data, "family": family}

    @field_validator("instance_type")
    @classmethod
    def _known_instance(cls, value: str) -> str:
        if not _ENDPOINT_INSTANCE.match(value):
            raise ValueError(
                f"model.instanceType {value!r} is not a SageMaker GPU endpoint instance type "
                "(e.g. ml.g5.2xlarge, ml.g6.2xlarge, ml.g5.12xlarge): run `pulumi config set "
                "--path rag:model.instanceType ml.g5.2xlarge`"
            )
        return value

    @model_validator(mode="after")
    def _openai_needs(self) -> ModelConfig:
        if self.source != "openai":
            if self.openai_base_url or self.openai_model:
                raise ValueError(
                    "model.openaiBaseUrl / model.openaiModel are only read with model.source "
                    "'openai': run `pulumi config set --path rag:model.source openai`, or "
                    "remove them"
                )
            return self
        if not self.openai_base_url or not self.openai_model:
            raise ValueError(
                "model.source is 'openai' but model.openaiBaseUrl or model.openaiModel is not set: "
                "run `pulumi config set --path rag:model.openaiBaseUrl https://HOST/v1` and "
                "`pulumi config set --path rag:model.openaiModel MODEL`"
            )
        check_openai_url(self.openai_base_url, self.openai_allow_http)
        return self

    @model_validator(mode="after")
    def _source_needs(self) -> ModelConfig:
        if self.scale_to_zero and self.source != "sagemaker":
            raise ValueError(
                "model.scaleToZero applies only to model.source 'sagemaker' (an endpoint the "
                "stack creates): run `pulumi config rm --path rag:model.scaleToZero`"
            )
        if self.source == "existing" and not self.endpoint_name:
            raise ValueError(
                "model.endpointName is required when model.source is 'existing': run "
                "`pulumi config set --path rag:model.endpointName <name>`"
            )
        if self.source != "sagemaker":
            return self
        if self.weights == "s3" and not self.weights_s3_uri:
            raise ValueError(
                "model.weights is 's3' but model.weightsS3Uri is not set: stage the Hugging Face "
                "files (config.json, tokenizer, *.safetensors) under a prefix and run `pulumi "
                "config set --path rag:model.weightsS3Uri s3://BUCKET/PREFIX/`"
            )
        if self.max_total_tokens <= self.max_input_tokens:
            raise ValueError("model.maxTotalTokens must exceed model.maxInputTokens")
        return self

    @property
    def needs_eula(self) -> bool:
        return self.source == "sagemaker" and self.weights == "jumpstart"

    @property
    def uses_inference_component(self) -> bool:
        """A stack-created endpoint that scales to zero (resolved config)."""
        return self.source == "sagemaker" and bool(self.scale_to_zero)


def check_openai_url(url: str, allow_http: bool) -> None:
    """An absolute http(s) URL with a host; https unless plain http is allowed."""
    scheme, sep, rest = url.partition("://")
    host = rest.split("/", 1)[0]
    if not sep or scheme not in ("https", "http") or not host or " " in url:
        raise ValueError(
            f"model.openaiBaseUrl {url!r} is not an http(s) URL: set it to the server's API root, "
            "e.g. https://llm.example.com/v1"
        )
    if scheme == "http" and not allow_http:
        raise ValueError(
            f"model.openaiBaseUrl {url!r} is plain http: questions, sources and the API key would "
            "cross the network unencrypted. Use https, or if the server is only reachable on a "
            "private network you trust, run `pulumi config set --path rag:model.openaiAllowHttp "
            "true`"
        )


class ObservabilityConfig(_Frozen):
    log_retention_days: int = Field(default=30, alias="logRetentionDays")
    alarm_topic_arn: str | None = Field(default=None, alias="alarmTopicArn")
    oldest_message_age_seconds: int = Field(default=900, ge=60, alias="oldestMessageAgeSeconds")


class LambdaConfig(_Frozen):
    architecture: Literal["arm64", "x86_64"] = "arm64"
    python_version: str = Field(default="3.12", alias="pythonVersion")
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field(
        default="INFO", alias="logLevel"
    )

    @field_validator("python_version", mode="before")
    @classmethod
    def _supported_runtime(cls, value: Any) -> str:
        text = str(value)
        if text not in SUPPORTED_PYTHON:
            raise ValueError(
                f"lambda.pythonVersion {text!r} is not supported: the functions need a runtime "
                f"on Amazon Linux 2023 ({', '.join(SUPPORTED_PYTHON)}); python3.11 runs on "
                "Amazon Linux 2, whose glibc 2.26 can't load the numpy/cryptography wheels. "
                "Run `pulumi config set --path rag:lambda.pythonVersion 3.12`"
            )
        return text


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
    # Protect the collection, documents bucket and tables from replacement and
    # deletion. None: on for every stack but "dev" (see protect_for).
    protect: bool | None = None

    def protect_for(self, stack: str) -> bool:
        return self.protect if self.protect is not None else stack != "dev"

    @model_validator(mode="after")
    def _vpc_when_needed(self) -> StackConfig:
        if self.search.network == "vpc" and self.vpc is None:
            raise ValueError(
                "rag:vpc (vpcId, subnetIds, securityGroupIds) is required for search.network=vpc: "
                "run `pulumi config set --path rag:vpc.vpcId vpc-…` and `pulumi config set "
                "--path 'rag:vpc.subnetIds[0]' subnet-…` (and securityGroupIds), or set "
                "search.network back to public"
            )
        return self

    @model_validator(mode="after")
    def _indexer_outlasts_settle(self) -> StackConfig:
        kind = self.search.collection_kind
        # Unset, the timeout follows the kind (resolved_for); only a chosen one is checked.
        if kind is None or "timeout_seconds" not in self.indexer.model_fields_set:
            return self
        settle = AOSS_REFRESH_S[kind] * SETTLE_MARGIN
        if self.indexer.timeout_seconds < settle + INDEXER_WORK_MARGIN_S:
            raise ValueError(
                f"indexer.timeoutSeconds {self.indexer.timeout_seconds} is too short for a "
                f"{kind} collection: a re-index waits up to {settle:.0f} s for the last write "
                f"to become searchable (AWS's {AOSS_REFRESH_S[kind]:.0f} s refresh x "
                f"{SETTLE_MARGIN}) before its clean-up; set it to at least "
                f"{settle + INDEXER_WORK_MARGIN_S:.0f} (`pulumi config set --path "
                f"rag:indexer.timeoutSeconds {CLASSIC_INDEXER_TIMEOUT}`)"
            )
        return self

    @property
    def uses_vpc(self) -> bool:
        return self.search.network == "vpc"

    def resolved_for(self, stack: str) -> StackConfig:
        """This config with the per-stack defaults filled in (see docs/cost.md).

        "dev" idles near zero: a NextGen collection that scales to zero, a model that
        scales to zero instances, a query function allowed the whole 15 minutes (the
        first question after idle waits for the model), and a daily reconcile (each
        run wakes the collection: hourly would cost about $2 a day). Every other stack
        keeps the always-on resources unless its config says otherwise.
        """
        dev = stack == "dev"
        search = self.search.model_copy(
            update={
                "collection_kind": self.search.collection_kind or ("nextgen" if dev else "classic")
            }
        )
        nextgen = search.collection_kind == "nextgen"
        if search.standby_replicas is None:
            search = search.model_copy(update={"standby_replicas": nextgen})
        model = self.model
        if model.scale_to_zero is None:
            model = model.model_copy(update={"scale_to_zero": dev and model.source == "sagemaker"})
        chat = self.chat
        if model.uses_inference_component and "query_timeout_seconds" not in chat.model_fields_set:
            chat = chat.model_copy(update={"query_timeout_seconds": LAMBDA_MAX_TIMEOUT})
        indexer = self.indexer
        if search.scales_to_zero and "reconcile_schedule" not in indexer.model_fields_set:
            indexer = indexer.model_copy(update={"reconcile_schedule": "rate(1 day)"})
        if (
            search.collection_kind == "classic"
            and "timeout_seconds" not in indexer.model_fields_set
        ):
            # A re-index within a minute of the last waits out classic's 60 s
            # refresh (x1.5) inside the invocation: 120 s would leave ~30 s for
            # the fetch, embedding and writes of a whole batch.
            indexer = indexer.model_copy(update={"timeout_seconds": CLASSIC_INDEXER_TIMEOUT})
        resolved = self.model_copy(
            update={"search": search, "model": model, "chat": chat, "indexer": indexer}
        )
        # model_copy skips validation: run the cross-field checks on the result.
        return StackConfig.model_validate(resolved.model_dump(by_alias=True))


@dataclass(frozen=True)
class StackSecrets:
    """Secret config values, kept as Pulumi secrets (never plaintext in state)."""

    static_token: pulumi.Output[str] | None = None
    # JSON {token: {"principal": ..., "groups": [...]}}; only digests reach the authorizer.
    access_tokens: pulumi.Output[str] | None = None
    # model.source "openai": the server's API key, stored in Secrets Manager by the stack.
    openai_api_key: pulumi.Output[str] | None = None


TOKEN_FIX = (
    "chat.auth is 'token' but no token is set: run "
    '`pulumi config set --secret rag:accessTokens "$(cat tokens.json)"` (a token per '
    "principal with its groups, see docs/security.md) or "
    "`pulumi config set --secret rag:staticToken $(openssl rand -hex 32)`"
)
EULA_FIX = (
    "model.weights is 'jumpstart': SageMaker serves Llama 2 only after you accept Meta's "
    "licence (https://ai.meta.com/llama/license/). Read it, then run `pulumi config set "
    "--path rag:model.acceptEula true` (or use model.weights s3 with your own copy, or "
    "model.source bedrock)"
)
_SECTIONS = ("search", "vpc", "ingest", "indexer", "chat", "model", "observability", "lambda")
_SCALARS = ("protect",)
_SECRETS = ("staticToken", "accessTokens", "openaiApiKey")
OPENAI_KEY_FIX = (
    "rag:openaiApiKey is set but model.source is not 'openai': run `pulumi config rm "
    "rag:openaiApiKey`, or `pulumi config set --path rag:model.source openai`"
)
_REMOVED = {
    "hfToken": (
        "rag:hfToken is no longer used: no secret is kept on AWS, the endpoint loads Llama 2 "
        "from SageMaker JumpStart (or model.weightsS3Uri). Run `pulumi config rm rag:hfToken`"
    ),
}


def check_keys(keys: set[str]) -> None:
    """Refuse ``rag:*`` keys the program does not read (a typo would be ignored)."""
    known = set(_SECTIONS) | set(_SCALARS) | set(_SECRETS)
    for key in sorted(keys):
        namespace, _, name = key.partition(":")
        if namespace != CONFIG_NAMESPACE:
            continue
        if name in _REMOVED:
            raise ValueError(_REMOVED[name])
        if name not in known:
            raise ValueError(
                f"unknown config key {key}: known keys are "
                f"{', '.join(f'rag:{k}' for k in sorted(known))}; run `pulumi config rm {key}`"
            )


def explain(exc: ValidationError) -> str:
    """pydantic's errors as ``rag:<path>: <problem>`` lines, with the fix where we know it."""
    lines = []
    for error in exc.errors():
        path = ".".join(str(p) for p in error["loc"])
        where = f"rag:{path}" if path else "rag"
        message = error["msg"].removeprefix("Value error, ")
        if error["type"] == "extra_forbidden":
            message = f"unknown key; run `pulumi config rm --path {where}`"
        lines.append(f"{where}: {message}")
    return "invalid stack config:\n  " + "\n  ".join(lines)


def config_keys() -> set[str]:
    """Every key set on the stack (the engine passes them all to the program)."""
    return set(pulumi_config.CONFIG.get()) | set(pulumi_config.get_config_env() or {})


def parse_config(raw: dict[str, Any]) -> StackConfig:
    try:
        return StackConfig.model_validate(raw)
    except ValidationError as exc:
        raise ValueError(explain(exc)) from None


def load_config() -> tuple[StackConfig, StackSecrets]:
    """Read ``rag:*`` (and ``aws:region``) from the current stack.

    Every mistake is raised here, before any resource is declared, so
    ``pulumi preview`` fails at once with the fix instead of halfway through ``up``.
    """
    check_keys(config_keys())
    cfg = pulumi.Config(CONFIG_NAMESPACE)
    raw: dict[str, Any] = {"region": pulumi.Config("aws").require("region")}
    for section in _SECTIONS:
        value = cfg.get_object(section)
        if value is not None:
            raw[section] = value
    protect = cfg.get_bool("protect")
    if protect is not None:
        raw["protect"] = protect
    config = parse_config(raw)
    secrets = StackSecrets(
        static_token=cfg.get_secret("staticToken"),
        access_tokens=cfg.get_secret("accessTokens"),
        openai_api_key=cfg.get_secret("openaiApiKey"),
    )
    if secrets.openai_api_key is not None and config.model.source != "openai":
        raise ValueError(OPENAI_KEY_FIX)
    if (
        config.chat.auth == "token"
        and secrets.static_token is None
        and secrets.access_tokens is None
    ):
        raise ValueError(TOKEN_FIX)
    # Checked here, not in the model, so that the defaults stay a valid value:
    # accepting a licence must be the deployer's own, explicit act.
    if config.model.needs_eula and not config.model.accept_eula:
        raise ValueError(EULA_FIX)
    return config, secrets


def validate_stack_values(
    values: dict[str, Any], *, check_eula: bool = True, check_secrets: bool = True
) -> StackConfig:
    """``load_config``'s checks on the ``config:`` map of a ``Pulumi.<stack>.yaml``
    (``rag doctor`` runs them before ``pulumi up``; secrets are only looked for,
    and not at all with ``check_secrets=False``: ``rag cost`` needs none)."""
    check_keys(set(values))
    region = values.get("aws:region")
    if not region:
        raise ValueError("aws:region is not set: run `pulumi config set aws:region us-east-1`")
    raw: dict[str, Any] = {"region": region}
    for section in _SECTIONS:
        if f"{CONFIG_NAMESPACE}:{section}" in values:
            raw[section] = values[f"{CONFIG_NAMESPACE}:{section}"]
    for scalar in _SCALARS:
        if f"{CONFIG_NAMESPACE}:{scalar}" in values:
            raw[scalar] = values[f"{CONFIG_NAMESPACE}:{scalar}"]
    config = parse_config(raw)
    tokens = {f"{CONFIG_NAMESPACE}:staticToken", f"{CONFIG_NAMESPACE}:accessTokens"}
    if check_secrets and config.chat.auth == "token" and not tokens & set(values):
        raise ValueError(TOKEN_FIX)
    if f"{CONFIG_NAMESPACE}:openaiApiKey" in values and config.model.source != "openai":
        raise ValueError(OPENAI_KEY_FIX)
    if check_eula and config.model.needs_eula and not config.model.accept_eula:
        raise ValueError(EULA_FIX)
    return config


def name_safe(text: str, max_chars: int) -> str:
    """Lower case, letters/digits/hyphens only, at most ``max_chars``, no edge hyphens."""
    return re.sub(r"[^a-z0-9-]", "-", text.lower())[:max_chars].strip("-")


def resource_prefix(project: str, stack: str) -> str:
    """A short, name-safe prefix for the few resources that need a fixed name."""
    return name_safe(f"{project}-{stack}", 40)
