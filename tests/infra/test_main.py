"""The Pulumi entry point itself: config from the engine, real artifacts, exports."""

from __future__ import annotations

import json
import runpy

import pytest

from infra.lambda_artifacts import REPO_ROOT
from tests.infra.mocks import RecordingMocks, run_under_mocks


def test_entry_point_builds_and_exports(monkeypatch: pytest.MonkeyPatch) -> None:
    # GIVEN the config the engine would pass (x86_64 reuses the packaging test's build cache)
    config = {
        "aws:region": "eu-west-1",
        "rag:lambda": json.dumps({"architecture": "x86_64"}),
        "rag:model": json.dumps({"source": "bedrock"}),
        "rag:staticToken": "a-token",
    }
    monkeypatch.setenv("PULUMI_CONFIG", json.dumps(config))
    monkeypatch.setenv("PULUMI_CONFIG_SECRET_KEYS", json.dumps(["rag:staticToken"]))
    mocks = RecordingMocks()

    # WHEN infra/__main__.py runs as Pulumi runs it
    run_under_mocks(mocks, lambda: runpy.run_path(str(REPO_ROOT / "infra"), run_name="__main__"))

    # THEN the functions use the real artifacts' hashes, uploaded under content-hash keys
    objects = {r.name: r.inputs for r in mocks.resources if r.typ.endswith("BucketObjectv2")}
    functions = [r.inputs for r in mocks.resources if r.typ == "aws:lambda/function:Function"]
    assert len(functions) == 3
    for fn in functions:
        key = fn["s3Key"]
        assert key in {o["key"] for o in objects.values()}
        assert len(fn["sourceCodeHash"]) == 44  # base64 of a SHA-256
        assert fn["architectures"] == ["x86_64"]
