"""Pulumi entry point (``main: infra/`` in Pulumi.yaml): read config, build, export."""

import sys
from pathlib import Path

# Pulumi runs this directory as a script; make the repo root importable so the
# program is the same `infra` package the tests import.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import pulumi

from infra.config import load_config
from infra.lambda_artifacts import AUTHORIZER_SPEC, INDEXER_SPEC, QUERY_SPEC, build_artifact
from infra.stack import AUTHORIZER_ARTIFACT, INDEXER_ARTIFACT, QUERY_ARTIFACT, build_stack

config, secrets = load_config()
arch, python = config.lambda_.architecture, config.lambda_.python_version
artifacts = {
    INDEXER_ARTIFACT: build_artifact(INDEXER_SPEC, arch, python),
    QUERY_ARTIFACT: build_artifact(QUERY_SPEC, arch, python),
    AUTHORIZER_ARTIFACT: build_artifact(AUTHORIZER_SPEC, arch, python),
}
resources = build_stack(config, artifacts, secrets)
for key, value in resources.outputs.items():
    pulumi.export(key, value)
