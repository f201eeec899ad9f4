"""Pulumi mocks that record every declared resource with its resolved inputs.

``deploy`` runs ``build_stack`` under ``pulumi.runtime.set_mocks`` on a fresh
event loop (pytest-asyncio tests share this process) and returns the record.
Assertions then read plain dicts, so none of them hides inside an ``apply``.
"""

from __future__ import annotations

import asyncio
import json
import zipfile
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pulumi
from pulumi.runtime.mocks import MockMonitor

ACCOUNT = "123456789012"
REGION = "eu-west-1"
PROJECT = "rag"
STACK = "dev"


# How the Pulumi wire format marks a secret value.
_SECRET_SIG = ("4dabf18193072939515e22adb298388d", "1b47061264138c4ac30d75fd1eb44270")


def is_secret(value: Any) -> bool:
    return isinstance(value, dict) and value.get(_SECRET_SIG[0]) == _SECRET_SIG[1]


def unsecret(value: Any) -> Any:
    if is_secret(value):
        return unsecret(value["value"])
    if isinstance(value, dict):
        return {k: unsecret(v) for k, v in value.items()}
    if isinstance(value, list):
        return [unsecret(v) for v in value]
    return value


@dataclass(frozen=True)
class Recorded:
    typ: str
    name: str
    id: str
    inputs: dict[str, Any]  # secrets unwrapped
    raw_inputs: dict[str, Any]  # as sent, secrets still marked
    state: dict[str, Any]  # inputs plus the mocked computed outputs

    def policy(self, key: str = "policy") -> Any:
        return json.loads(self.inputs[key])


def _computed(typ: str, name: str, inputs: Mapping[str, Any]) -> dict[str, Any]:
    """The outputs AWS would compute, shaped like the real ones."""
    service = typ.split(":")[1].split("/")[0]
    arn = f"arn:aws:{service}:{REGION}:{ACCOUNT}:{name}"
    out: dict[str, Any] = {"arn": arn, "id": f"{name}-id", "name": inputs.get("name", name)}
    if typ == "aws:sqs/queue:Queue":
        out["url"] = f"https://sqs.{REGION}.amazonaws.com/{ACCOUNT}/{name}"
    elif typ == "aws:lambda/function:Function":
        out["arn"] = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{name}"
        out["invokeArn"] = (
            f"arn:aws:apigateway:{REGION}:lambda:path/functions/{out['arn']}/invocations"
        )
    elif typ == "aws:apigatewayv2/api:Api":
        out["id"] = "api0123"
        out["executionArn"] = f"arn:aws:execute-api:{REGION}:{ACCOUNT}:api0123"
        out["apiEndpoint"] = f"wss://api0123.execute-api.{REGION}.amazonaws.com"
    elif typ == "aws:apigatewayv2/stage:Stage":
        api, stage = inputs["apiId"], inputs["name"]
        out["executionArn"] = f"arn:aws:execute-api:{REGION}:{ACCOUNT}:{api}/{stage}"
        out["invokeUrl"] = f"wss://{api}.execute-api.{REGION}.amazonaws.com/{stage}"
    elif typ == "aws:opensearch/serverlessCollection:ServerlessCollection":
        out["id"] = "coll0123"
        out["arn"] = f"arn:aws:aoss:{REGION}:{ACCOUNT}:collection/coll0123"
        out["collectionEndpoint"] = f"https://coll0123.{REGION}.aoss.amazonaws.com"
    elif typ == "aws:s3/bucket:Bucket":
        out["bucket"] = f"{name}-0a1b2c"
        out["id"] = out["bucket"]
        out["arn"] = f"arn:aws:s3:::{out['bucket']}"
    elif typ == "aws:cloudwatch/logGroup:LogGroup":
        out["name"] = inputs.get("name") or f"{name}-0a1b2c"
        out["arn"] = f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:{out['name']}"
    elif typ == "aws:iam/role:Role":
        out["arn"] = f"arn:aws:iam::{ACCOUNT}:role/{name}"
        out["id"] = name
    elif typ == "aws:cognito/userPool:UserPool":
        out["id"] = f"{REGION}_Pool0123"
        out["endpoint"] = f"cognito-idp.{REGION}.amazonaws.com/{REGION}_Pool0123"
    elif typ == "aws:sagemaker/endpoint:Endpoint":
        out["arn"] = f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:endpoint/{inputs['name']}"
    elif typ == "aws:opensearch/serverlessVpcEndpoint:ServerlessVpcEndpoint":
        out["id"] = "vpce-0123456789"
    return out


class RecordingMocks(pulumi.runtime.Mocks):
    """``failing``: resource types whose creation fails, as AWS would refuse them."""

    def __init__(self, failing: frozenset[str] = frozenset()) -> None:
        self.resources: list[Recorded] = []
        self.failing = failing
        self.protected: set[str] = set()  # names of resources registered with protect
        # What the engine orders creations by: URN -> (type, name), URN -> the URNs
        # it waits for (explicit depends_on and those of its inputs).
        self.urns: dict[str, tuple[str, str]] = {}
        self.dependencies: dict[str, set[str]] = {}

    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str, dict[str, Any]]:
        if args.typ in self.failing:
            raise RuntimeError(f"creating {args.typ} {args.name} failed (mocked)")
        computed = _computed(args.typ, args.name, args.inputs)
        state = {**args.inputs, **computed}
        self.resources.append(
            Recorded(args.typ, args.name, computed["id"], unsecret(args.inputs), args.inputs, state)
        )
        return computed["id"], state

    def call(
        self, args: pulumi.runtime.MockCallArgs
    ) -> tuple[dict[str, Any], list[tuple[str, str]]]:
        if args.token == "aws:index/getCallerIdentity:getCallerIdentity":
            arn = f"arn:aws:iam::{ACCOUNT}:user/deployer"
            return {"accountId": ACCOUNT, "arn": arn, "id": ACCOUNT, "userId": "AIDA"}, []
        if args.token == "aws:index/getPartition:getPartition":
            partition = {"partition": "aws", "dnsSuffix": "amazonaws.com", "id": "aws"}
            return {**partition, "reverseDnsPrefix": "com.amazonaws"}, []
        raise NotImplementedError(f"unexpected invoke {args.token}")


class RecordingMonitor(MockMonitor):
    """The mock monitor, also noting resource options the mocks API does not show."""

    def __init__(self, mocks: RecordingMocks) -> None:
        super().__init__(mocks)
        self.recording = mocks

    def RegisterResource(self, request: Any) -> Any:  # the gRPC method name
        if request.protect:
            self.recording.protected.add(request.name)
        response = super().RegisterResource(request)  # type: ignore[no-untyped-call]
        self.recording.urns[response.urn] = (request.type, request.name)
        waits = set(request.dependencies)
        for deps in request.propertyDependencies.values():
            waits |= set(deps.urns)
        self.recording.dependencies[response.urn] = waits
        return response


@dataclass
class Deployment:
    resources: list[Recorded]
    outputs: dict[str, Any] = field(default_factory=dict)
    protected: set[str] = field(default_factory=set)
    urns: dict[str, tuple[str, str]] = field(default_factory=dict)
    dependencies: dict[str, set[str]] = field(default_factory=dict)

    def waits_for(self, typ: str, name: str) -> set[tuple[str, str]]:
        """Every resource the engine must create before ``name`` (transitively)."""
        start = next(urn for urn, key in self.urns.items() if key == (typ, name))
        seen: set[str] = set()
        todo = [start]
        while todo:
            for dep in self.dependencies.get(todo.pop(), set()) - seen:
                seen.add(dep)
                todo.append(dep)
        return {self.urns[urn] for urn in seen if urn in self.urns}

    def of_type(self, typ: str) -> list[Recorded]:
        return [r for r in self.resources if r.typ == typ]

    def one(self, typ: str, name: str | None = None) -> Recorded:
        found = [r for r in self.of_type(typ) if name is None or r.name == name]
        assert len(found) == 1, f"expected one {typ} {name or ''}, found {[r.name for r in found]}"
        return found[0]

    def by_id(self, typ: str, ident: str) -> Recorded:
        return next(r for r in self.of_type(typ) if r.id == ident)


def fake_artifacts(tmp: Path) -> dict[str, Any]:
    from infra.lambda_artifacts import LambdaArtifact

    artifacts = {}
    for name in ("indexer", "query", "authorizer"):
        path = tmp / f"{name}.zip"
        with zipfile.ZipFile(path, "w") as zf:
            zf.writestr("placeholder.txt", name)
        artifacts[name] = LambdaArtifact(
            name=name,
            zip_path=path,
            sha256_hex=f"{ord(name[0]):02x}" * 32,
            unzipped_bytes=10,
            architecture="arm64",
            python_version="3.12",
        )
    return artifacts


def run_under_mocks(mocks: RecordingMocks, program: Callable[[], Any], stack: str = STACK) -> None:
    """Run a Pulumi program under ``mocks`` on a fresh event loop, waiting for every RPC."""
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    # The mock monitor runs in executor threads and gives each its own event loop;
    # own those loops so they are closed (warnings are errors in this suite).
    thread_loops: list[asyncio.AbstractEventLoop] = []

    def own_thread_loop() -> None:
        thread_loop = asyncio.new_event_loop()
        asyncio.set_event_loop(thread_loop)
        thread_loops.append(thread_loop)

    executor = ThreadPoolExecutor(max_workers=4, initializer=own_thread_loop)
    loop.set_default_executor(executor)
    pulumi.runtime.set_mocks(
        mocks, project=PROJECT, stack=stack, preview=False, monitor=RecordingMonitor(mocks)
    )
    try:
        pulumi.runtime.test(program)()  # type: ignore[no-untyped-call]  # pulumi: no annotations
    finally:
        executor.shutdown(wait=True)
        for thread_loop in thread_loops:
            thread_loop.close()
        loop.close()
        asyncio.set_event_loop(None)


def deploy(
    config: Any,
    artifacts: Mapping[str, Any],
    static_token: str | None = None,
    access_tokens: str | None = None,
    openai_api_key: str | None = None,
    mocks: RecordingMocks | None = None,
    stack: str = STACK,
) -> Deployment:
    """Secrets are given as plain strings: their Outputs must live on the fresh loop."""
    from infra.config import StackSecrets
    from infra.stack import build_stack

    mocks = mocks or RecordingMocks()
    deployment = Deployment(
        mocks.resources,
        protected=mocks.protected,
        urns=mocks.urns,
        dependencies=mocks.dependencies,
    )

    def program() -> pulumi.Output[None]:
        secrets = StackSecrets(
            static_token=pulumi.Output.secret(static_token) if static_token else None,
            access_tokens=pulumi.Output.secret(access_tokens) if access_tokens else None,
            openai_api_key=pulumi.Output.secret(openai_api_key) if openai_api_key else None,
        )
        stack = build_stack(config, artifacts, secrets)
        return pulumi.Output.all(**stack.outputs).apply(deployment.outputs.update)

    run_under_mocks(mocks, program, stack)
    return deployment
