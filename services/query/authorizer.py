"""The WebSocket ``$connect`` Lambda authorizer (API Gateway REQUEST authorizer).

The client presents a token in one of three places (first found wins):

* query string ``?token=...`` (what browsers can do),
* ``Authorization: Bearer <token>`` (non-browser clients),
* ``Sec-WebSocket-Protocol: bearer, <token>`` (browsers that keep tokens out
  of URLs; the ``$connect`` route must then echo a subprotocol back).

Two modes, chosen by ``RAG_AUTH__MODE``:

* ``token``: a shared static token. Only its SHA-256 is in the function's
  environment (``RAG_AUTH__TOKEN_SHA256``), so reading the Lambda config does
  not reveal it; the presented token is hashed and compared in constant time.
  No network call at cold start, no secret store to pay for.
* ``cognito``: a JWT (id or access token) from the stack's Cognito user pool,
  verified with RS256 against the pool's JWKS (fetched once per container and
  cached), checking issuer, expiry, ``token_use`` and the app client id.

The answer is an IAM policy allowing or denying ``execute-api:Invoke`` on the
``$connect`` method (WebSocket authorizers cannot return the "simple" format).
This module imports only the standard library and PyJWT, so the authorizer
ships as its own small artifact.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Literal

import jwt

MODE_ENV = "RAG_AUTH__MODE"
TOKEN_SHA256_ENV = "RAG_AUTH__TOKEN_SHA256"
COGNITO_ISSUER_ENV = "RAG_AUTH__COGNITO_ISSUER"
COGNITO_CLIENT_ID_ENV = "RAG_AUTH__COGNITO_CLIENT_ID"

MAX_TOKEN_CHARS = 8192
log = logging.getLogger(__name__)


class Unauthorized(Exception):
    """The request carries no acceptable token (the reason is logged, never returned)."""


@dataclass(frozen=True)
class AuthConfig:
    mode: Literal["token", "cognito"]
    token_sha256: str | None = None
    issuer: str | None = None
    client_id: str | None = None

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> AuthConfig:
        mode = env.get(MODE_ENV, "")
        if mode == "token":
            digest = env.get(TOKEN_SHA256_ENV, "").strip().lower()
            if len(digest) != 64:
                raise ValueError(f"{TOKEN_SHA256_ENV} must be a hex SHA-256")
            return cls(mode="token", token_sha256=digest)
        if mode == "cognito":
            issuer, client_id = env.get(COGNITO_ISSUER_ENV), env.get(COGNITO_CLIENT_ID_ENV)
            if not issuer or not client_id:
                raise ValueError(f"{COGNITO_ISSUER_ENV} and {COGNITO_CLIENT_ID_ENV} are required")
            return cls(mode="cognito", issuer=issuer.rstrip("/"), client_id=client_id)
        raise ValueError(f"{MODE_ENV} must be 'token' or 'cognito', not {mode!r}")


def _header(headers: Mapping[str, str] | None, name: str) -> str | None:
    for key, value in (headers or {}).items():
        if key.lower() == name:
            return value
    return None


def extract_token(event: Mapping[str, Any]) -> str:
    query = event.get("queryStringParameters") or {}
    headers = event.get("headers")
    token = query.get("token")
    if not token:
        authorization = _header(headers, "authorization") or ""
        scheme, _, value = authorization.strip().partition(" ")
        token = value.strip() if scheme.lower() == "bearer" else authorization.strip()
    if not token:
        protocols = [
            p.strip() for p in (_header(headers, "sec-websocket-protocol") or "").split(",")
        ]
        if len(protocols) >= 2 and protocols[0].lower() == "bearer":
            token = protocols[1]
    if not token:
        raise Unauthorized("no token")
    if len(token) > MAX_TOKEN_CHARS:
        raise Unauthorized("token too long")
    return str(token)


def token_sha256(token: str) -> str:
    """The digest the stack stores (infra/components/auth.py) and requests must match."""
    return hashlib.sha256(token.encode()).hexdigest()


def verify_static(token: str, expected_sha256: str) -> str:
    if not hmac.compare_digest(token_sha256(token), expected_sha256):
        raise Unauthorized("token mismatch")
    return "static-token"


def verify_cognito(token: str, key: Any, issuer: str, client_id: str) -> str:
    """Verify an RS256 Cognito JWT with the given public key; return its subject."""
    try:
        claims = jwt.decode(
            token,
            key,
            algorithms=["RS256"],
            issuer=issuer,
            options={"require": ["exp", "iss", "sub", "token_use"], "verify_aud": False},
        )
    except jwt.PyJWTError as exc:
        raise Unauthorized(f"invalid JWT: {exc}") from exc
    token_use = claims.get("token_use")
    # Id tokens name the app client in "aud", access tokens in "client_id".
    audience = claims.get("aud") if token_use == "id" else claims.get("client_id")
    if token_use not in ("id", "access") or audience != client_id:
        raise Unauthorized("token not issued to this app client")
    return str(claims["sub"])


@lru_cache(maxsize=1)
def _jwks_client(issuer: str) -> jwt.PyJWKClient:
    return jwt.PyJWKClient(f"{issuer}/.well-known/jwks.json", cache_keys=True)


def authorize(event: Mapping[str, Any], config: AuthConfig) -> str:
    """Return the principal id for an acceptable request, else raise :class:`Unauthorized`."""
    token = extract_token(event)
    if config.mode == "token":
        assert config.token_sha256 is not None
        return verify_static(token, config.token_sha256)
    assert config.issuer is not None and config.client_id is not None
    try:
        key = _jwks_client(config.issuer).get_signing_key_from_jwt(token).key
    except jwt.PyJWTError as exc:
        raise Unauthorized(f"no signing key: {exc}") from exc
    return verify_cognito(token, key, config.issuer, config.client_id)


def policy(principal_id: str, effect: Literal["Allow", "Deny"], method_arn: str) -> dict[str, Any]:
    return {
        "principalId": principal_id,
        "policyDocument": {
            "Version": "2012-10-17",
            "Statement": [
                {"Action": "execute-api:Invoke", "Effect": effect, "Resource": method_arn}
            ],
        },
        "context": {"principal": principal_id},
    }


@lru_cache(maxsize=1)
def _config_from_environment() -> AuthConfig:
    return AuthConfig.from_env(os.environ)


def handler(event: dict[str, Any], context: object) -> dict[str, Any]:
    method_arn = str(event.get("methodArn", ""))
    try:
        principal = authorize(event, _config_from_environment())
    except Unauthorized as exc:
        log.warning("connection refused: %s", exc)
        return policy("anonymous", "Deny", method_arn)
    return policy(principal, "Allow", method_arn)
