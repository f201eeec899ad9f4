"""``rag reconcile --stack``: the invoke path against a real Lambda API (moto).

moto cannot run a Python function without Docker, so what is tested here is
the failure a user meets first: a function that isn't there is named, with
what to check; the reconcile event itself is covered by the handler's tests.
"""

from __future__ import annotations

import pytest

from cli.destination.stack import reconcile_stack
from shared.errors import ConfigurationError
from shared.settings import Settings

pytestmark = pytest.mark.sqs


async def test_a_missing_function_is_a_clear_error(
    sqs_endpoint_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "test")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "test")
    settings = Settings(_env_file=None, aws={"endpoint_url": sqs_endpoint_url})
    with pytest.raises(ConfigurationError) as caught:
        await reconcile_stack(settings, "rag-dev-indexer-missing", dry_run=True)
    message = str(caught.value)
    assert "rag-dev-indexer-missing" in message and "lambda:InvokeFunction" in message
