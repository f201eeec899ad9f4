"""rag:accessTokens: a token per principal with its groups, held as a Pulumi secret;
only SHA-256 digests reach the authorizer's environment, as a secret."""

from __future__ import annotations

import json
from pathlib import Path

from infra import env
from infra.config import StackConfig
from services.query.transports import tokens
from tests.infra.mocks import REGION, deploy, fake_artifacts, is_secret

FUNCTION = "aws:lambda/function:Function"
TOKENS = {
    "alice-0123456789abcdef0123456789abcdef": {"principal": "alice", "groups": ["hr"]},
    "bob-0123456789abcdef0123456789abcdef01": {"principal": "bob", "groups": []},
}


def test_access_tokens_reach_the_authorizer_as_digests_only(tmp_path: Path) -> None:
    config = StackConfig.model_validate(
        {"region": REGION, "chat": {"auth": "token", "adminGroup": "platform-admins"}}
    )
    d = deploy(config, fake_artifacts(tmp_path), access_tokens=json.dumps(TOKENS))
    fn = d.one(FUNCTION, "connect-auth-function")
    variables = fn.inputs["environment"]["variables"]
    assert is_secret(fn.raw_inputs["environment"])
    assert env.AUTH_TOKEN_SHA256 not in variables
    stored = variables[env.AUTH_TOKENS]
    for token in TOKENS:
        assert token not in stored
        assert token not in json.dumps([r.inputs for r in d.resources], default=str)
    grants = tokens.AuthConfig.from_env(variables).tokens
    assert grants[tokens.token_sha256("bob-0123456789abcdef0123456789abcdef01")] == (
        tokens.Identity("bob", ())
    )
    # The query function learns who the admins are.
    query = [r for r in d.of_type(FUNCTION) if r.name != "connect-auth-function"]
    admin_groups = {r.inputs["environment"]["variables"].get(env.QUERY_ADMIN_GROUP) for r in query}
    assert "platform-admins" in admin_groups
