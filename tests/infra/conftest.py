"""One mocked deployment per config variant, shared by the infra test modules."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

from infra.config import StackConfig
from tests.infra.mocks import REGION, STACK, Deployment, deploy, fake_artifacts
from tests.infra.variants import OPENAI_API_KEY, STATIC_TOKEN, VARIANTS


@pytest.fixture(scope="session", params=sorted(VARIANTS))
def variant(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> tuple[StackConfig, Deployment]:
    config = StackConfig.model_validate({"region": REGION, **VARIANTS[request.param]})
    artifacts = fake_artifacts(tmp_path_factory.mktemp("artifacts"))
    openai_key = OPENAI_API_KEY if config.model.source == "openai" else None
    deployment = deploy(config, artifacts, static_token=STATIC_TOKEN, openai_api_key=openai_key)
    # The tests check what was deployed: the config with the stack's defaults settled.
    return config.resolved_for(STACK), deployment


@pytest.fixture
def fresh_loop() -> Iterator[None]:
    """Config secrets are Outputs, which need an event loop of their own here."""
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    yield
    # Let the secrets' Output tasks finish: a destroyed pending task is an error later.
    pending = asyncio.all_tasks(loop)
    loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
    loop.close()
    asyncio.set_event_loop(None)
