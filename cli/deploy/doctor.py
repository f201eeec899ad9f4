"""``rag doctor --stack NAME``: check an account and a stack's config before ``pulumi up``.

Each check is one small probe with its fix. A first deploy most often fails on
things ``pulumi preview`` can't see: a GPU endpoint quota of 0 (new accounts),
a Bedrock model without access, a region without OpenSearch Serverless, the
API Gateway logging role. The probes only read (no resource is created).

    ok         the check passed
    warn       it passed, with a caveat (e.g. a Bedrock model marked LEGACY)
    FAIL       the deploy would fail or not work: the fix says what to do
    unchecked  the check could not run here (said why): what it covers is unknown

Exit code (for scripts and CI): 0 when every check ran and none failed, 1
when one failed, 2 when none failed but one could not run. A stack that was
not fully checked is never reported as ready.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from botocore.exceptions import BotoCoreError, ClientError, EndpointConnectionError

from shared.adapters.aws.client import LazyAwsClient, client_config, error_code
from shared.model_ids import bedrock_base_model

Status = Literal["ok", "warn", "fail", "unchecked"]
EXIT_OK, EXIT_FAILED, EXIT_UNCHECKED = 0, 1, 2
# Service Quotas names the endpoint quota per instance type.
QUOTA_NAME = "{instance_type} for endpoint usage"


@dataclass(frozen=True)
class Check:
    name: str
    status: Status
    detail: str
    fix: str = ""


@dataclass(frozen=True)
class StackPlan:
    """What the checks need from the stack's config (see infra/config.py)."""

    region: str
    source: str
    instance_type: str
    needs_eula: bool
    accept_eula: bool
    bedrock_model_id: str
    api_logs: bool


def read_stack_file(stack: str, cwd: Path) -> dict[str, Any]:
    from cli.deploy.stack_file import read_config

    path = cwd / f"Pulumi.{stack}.yaml"
    if not path.is_file():
        raise FileNotFoundError(
            f"{path.name} not found in {cwd}: run `pulumi stack init {stack}` in the repo, "
            f"then copy the settings from Pulumi.dev.yaml"
        )
    return read_config(path)


def check_config(
    values: dict[str, Any], stack: str, project: Path | None = None
) -> tuple[Check, StackPlan | None]:
    if project is not None:
        from cli.deploy.stack_file import project_on_path

        project_on_path(project)
    try:
        from infra.config import validate_stack_values
    except ImportError:
        return Check(
            "stack config",
            "unchecked",
            "the infra extras (pulumi) are not installed, so the config was not validated "
            "and nothing else could be checked",
            "run `scripts/bootstrap --dev` (installs pulumi and pulumi-aws)",
        ), None
    try:
        config = validate_stack_values(values, check_eula=False)
    except ValueError as exc:
        return Check("stack config", "fail", f"Pulumi.{stack}.yaml is refused", str(exc)), None
    model = config.model
    plan = StackPlan(
        region=config.region,
        source=model.source,
        instance_type=model.instance_type,
        needs_eula=model.needs_eula,
        accept_eula=model.accept_eula,
        bedrock_model_id=model.bedrock_model_id,
        api_logs=config.chat.api_logs,
    )
    detail = f"region {config.region}, model {model.source}"
    if model.source == "sagemaker":
        detail += f" on {model.instance_type} (weights: {model.weights})"
    return Check("stack config", "ok", detail), plan


def check_licence(plan: StackPlan) -> Check:
    if not plan.needs_eula:
        return Check("model licence", "ok", "no licence flag needed for this model source")
    if plan.accept_eula:
        return Check("model licence", "ok", "Llama 2 licence accepted (model.acceptEula)")
    return Check(
        "model licence",
        "fail",
        "SageMaker JumpStart serves Llama 2 only once Meta's licence is accepted",
        "read https://ai.meta.com/llama/license/, then run "
        "`pulumi config set --path rag:model.acceptEula true`",
    )


Probe = Callable[[Any], Awaitable[Check]]


class Doctor:
    """Runs the probes with one lazily created client per AWS service."""

    def __init__(self, plan: StackPlan, endpoints: Mapping[str, str | None]) -> None:
        self._plan = plan
        self._endpoints = endpoints
        self._clients: list[LazyAwsClient] = []

    def _client(self, service: str) -> LazyAwsClient:
        endpoint = self._endpoints.get(service, self._endpoints.get("*"))
        client = LazyAwsClient(
            service,
            region=self._plan.region,
            endpoint_url=endpoint,
            config=client_config(read_timeout_s=15),
        )
        self._clients.append(client)
        return client

    async def _probe(self, name: str, service: str, probe: Probe) -> Check:
        try:
            return await probe(await self._client(service)())
        except EndpointConnectionError as exc:
            return Check(name, "fail", f"{service} is not reachable in {self._plan.region}: {exc}")
        except (ClientError, BotoCoreError) as exc:
            code = error_code(exc) or type(exc).__name__
            said = " ".join(str(exc).split())[:160]  # one line, even for an HTML error page
            return Check(name, "unchecked", f"could not check ({code}: {said})")

    async def run(self) -> list[Check]:
        plan = self._plan
        checks = [await self._probe("credentials", "sts", self._identity)]
        if checks[0].status != "ok":
            return checks
        if plan.source == "sagemaker":
            checks.append(await self._probe("endpoint quota", "service-quotas", self._quota))
        if plan.source == "bedrock":
            checks.append(await self._probe("bedrock model", "bedrock", self._bedrock))
        checks.append(
            await self._probe("opensearch serverless", "opensearchserverless", self._aoss)
        )
        if plan.api_logs:
            checks.append(await self._probe("api gateway logs", "apigateway", self._log_role))
        return checks

    async def close(self) -> None:
        for client in self._clients:
            await client.close()

    async def _identity(self, sts: Any) -> Check:
        try:
            who = await sts.get_caller_identity()
        except (ClientError, BotoCoreError) as exc:
            return Check(
                "credentials",
                "fail",
                f"no usable AWS credentials ({error_code(exc) or type(exc).__name__})",
                "configure them (aws configure, AWS_PROFILE, or aws sso login) and retry",
            )
        return Check(
            "credentials", "ok", f"account {who['Account']} as {who['Arn']}, {self._plan.region}"
        )

    async def _quota(self, quotas: Any) -> Check:
        name = QUOTA_NAME.format(instance_type=self._plan.instance_type)
        # ListServiceQuotas leaves out quotas with no applied value (AWS: "the
        # quota is not retrieved"), which is every quota a new account never
        # raised: then AWS's default holds, and for GPU instances it is often 0.
        found = await _find_quota(quotas.list_service_quotas, "sagemaker", name)
        if found is None:
            found = await _find_quota(quotas.list_aws_default_service_quotas, "sagemaker", name)
        if found is None:
            return Check(
                "endpoint quota",
                "unchecked",
                f"no quota named {name!r} in {self._plan.region} (applied or default)",
                "check model.instanceType is offered for endpoints in this region",
            )
        value = float(found.get("Value", 0))
        if value >= 1:
            return Check("endpoint quota", "ok", f"{name}: {value:g}")
        return Check(
            "endpoint quota",
            "fail",
            f"{name} is {value:g}: CreateEndpoint fails at once (ResourceLimitExceeded), "
            "so the model endpoint can't start (docs/deploy.md: what else that stops)",
            f"request 1: aws service-quotas request-service-quota-increase --region "
            f"{self._plan.region} --service-code sagemaker --quota-code {found['QuotaCode']} "
            "--desired-value 1 (approval takes hours to days; or use model.source bedrock)",
        )

    async def _bedrock(self, bedrock: Any) -> Check:
        model_id = bedrock_base_model(self._plan.bedrock_model_id)
        try:
            found = await bedrock.get_foundation_model(modelIdentifier=model_id)
        except ClientError as exc:
            if error_code(exc) in ("ResourceNotFoundException", "ValidationException"):
                return Check(
                    "bedrock model",
                    "fail",
                    f"{model_id} is not offered in {self._plan.region}",
                    "pick a model listed by `aws bedrock list-foundation-models` "
                    "(rag:model.bedrockModelId) or another region",
                )
            raise
        status = found.get("modelDetails", {}).get("modelLifecycle", {}).get("status", "")
        return Check(
            "bedrock model",
            "ok" if status != "LEGACY" else "warn",
            f"{model_id} is offered ({status or 'ACTIVE'}); model access must be granted "
            "once per account in the Bedrock console",
        )

    async def _aoss(self, aoss: Any) -> Check:
        await aoss.list_collections()
        return Check("opensearch serverless", "ok", f"available in {self._plan.region}")

    async def _log_role(self, apigateway: Any) -> Check:
        account = await apigateway.get_account()
        role = account.get("cloudwatchRoleArn")
        if role:
            return Check("api gateway logs", "ok", f"account log role {role}")
        return Check(
            "api gateway logs",
            "fail",
            "chat.apiLogs is on but the account has no API Gateway CloudWatch role",
            "set it once per account and region (docs/deploy.md, 'API Gateway logs'), "
            "or run `pulumi config set --path rag:chat.apiLogs false`",
        )


async def _find_quota(
    list_quotas: Callable[..., Awaitable[Any]], service: str, name: str
) -> dict[str, Any] | None:
    """The quota named ``name`` from a paged Service Quotas listing."""
    token: str | None = None
    while True:
        kwargs: dict[str, Any] = {"ServiceCode": service, "MaxResults": 100}
        if token:
            kwargs["NextToken"] = token
        page = await list_quotas(**kwargs)
        for quota in page.get("Quotas", []):
            if quota.get("QuotaName") == name:
                found: dict[str, Any] = quota
                return found
        token = page.get("NextToken")
        if not token:
            return None


async def diagnose(
    stack: str, cwd: Path, endpoints: Mapping[str, str | None] | None = None
) -> list[Check]:
    """Every check for ``stack``; ``endpoints`` maps a service (or "*") to an endpoint URL."""
    try:
        values = read_stack_file(stack, cwd)
    except ImportError:  # PyYAML comes with the Pulumi SDK (the dev extras)
        return [
            Check(
                "stack config",
                "fail",
                "the Pulumi SDK is not installed here, so the stack's config can't be read",
                "run `scripts/bootstrap --dev` (installs pulumi and pulumi-aws)",
            )
        ]
    except (OSError, ValueError) as exc:
        return [Check("stack config", "fail", f"can't read the stack's config: {exc}")]
    config_check, plan = check_config(values, stack, cwd)
    if plan is None:
        return [config_check]
    doctor = Doctor(plan, endpoints or {})
    try:
        return [config_check, check_licence(plan), *await doctor.run()]
    finally:
        await doctor.close()


def exit_code(checks: list[Check]) -> int:
    if any(c.status == "fail" for c in checks):
        return EXIT_FAILED
    return EXIT_UNCHECKED if any(c.status == "unchecked" for c in checks) else EXIT_OK


def verdict(stack: str, checks: list[Check]) -> str:
    """The last line: failed, unchecked (and what), or ready."""
    failed = [c.name for c in checks if c.status == "fail"]
    unchecked = [c.name for c in checks if c.status == "unchecked"]
    if failed:
        line = f"stack {stack}: {len(failed)} check(s) FAILED ({', '.join(failed)}): fix them"
        if unchecked:
            line += f"; not checked: {', '.join(unchecked)}"
        return line + ", then run `rag doctor` again"
    if unchecked:
        return (
            f"stack {stack} is UNCHECKED: {len(unchecked)} check(s) could not run "
            f"({', '.join(unchecked)}), so `pulumi up` may still fail on what they cover; "
            "fix what they say and run `rag doctor` again"
        )
    return f"stack {stack}: every check passed; ready for `pulumi up -s {stack}`"
