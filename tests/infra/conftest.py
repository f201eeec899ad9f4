"""One mocked deployment per config variant, shared by the infra test modules."""

from __future__ import annotations

import pytest

from infra.config import StackConfig
from tests.infra.mocks import REGION, Deployment, deploy, fake_artifacts
from tests.infra.variants import OPENAI_API_KEY, STATIC_TOKEN, VARIANTS


@pytest.fixture(scope="session", params=sorted(VARIANTS))
def variant(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> tuple[StackConfig, Deployment]:
    config = StackConfig.model_validate({"region": REGION, **VARIANTS[request.param]})
    artifacts = fake_artifacts(tmp_path_factory.mktemp("artifacts"))
    openai_key = OPENAI_API_KEY if config.model.source == "openai" else None
    return config, deploy(config, artifacts, static_token=STATIC_TOKEN, openai_api_key=openai_key)
