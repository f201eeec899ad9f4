"""Read one secret string from AWS Secrets Manager, once per process.

The deployed query function gets an OpenAI-compatible endpoint's API key this
way (``RAG_MODEL__OPENAI_API_KEY_SECRET_ARN``, set by the stack): the key is
never a Lambda environment variable, and a rotated key is picked up by the
next cold start without a redeploy.
"""

from __future__ import annotations

import asyncio

from shared.adapters.aws.client import LazyAwsClient, error_code
from shared.errors import ModelError
from shared.settings import Settings


class SecretString:
    """``await secret()``: the secret's ``SecretString``, fetched on first use."""

    def __init__(self, secret_id: str, client: LazyAwsClient) -> None:
        self._secret_id = secret_id
        self._client = client
        self._value: str | None = None
        self._lock = asyncio.Lock()

    @classmethod
    def from_settings(cls, secret_id: str, settings: Settings) -> SecretString:
        return cls(secret_id, LazyAwsClient.from_settings("secretsmanager", settings))

    async def __call__(self) -> str:
        if self._value is not None:
            return self._value
        async with self._lock:
            if self._value is None:
                self._value = await self._fetch()
        return self._value

    async def _fetch(self) -> str:
        try:
            client = await self._client()
            response = await client.get_secret_value(SecretId=self._secret_id)
        except Exception as exc:  # botocore ClientError, endpoint and credential errors
            code = error_code(exc) or type(exc).__name__
            raise ModelError(
                f"could not read the model's API key from Secrets Manager ({self._secret_id}): "
                f"{code}; check that the secret exists and the function may "
                "secretsmanager:GetSecretValue on it"
            ) from exc
        finally:
            await self._client.close()  # read once per process: no client kept open
        value = response.get("SecretString")
        if not value:
            raise ModelError(f"the secret {self._secret_id} holds no SecretString")
        return str(value)
