"""Access tokens for the WebSocket API: where a client presents one, how it is
verified, and the token map the stack builds (``hashed_grants``).

The ``$connect`` Lambda authorizer (``authorizer.py``), the local server
(``identity.py``), the CLI and the Pulumi program (``infra/components/auth.py``)
all import this module, so it depends on nothing but the standard library and
PyJWT. The token can be presented in one of three places (first found wins):

* query string ``?token=...`` (what browsers can do),
* ``Authorization: Bearer <token>`` (non-browser clients),
* ``Sec-WebSocket-Protocol: bearer, <token>`` (browsers that keep tokens out
  of URLs; the ``$connect`` route must then echo a subprotocol back).

Two modes, chosen by ``RAG_AUTH__MODE``:

* ``token``: static tokens, each mapped to a principal and its groups
  (``RAG_AUTH__TOKENS``: ``{"sha256:<hex of token>": {"principal": "alice",
  "groups": ["hr"]}}``, from the ``rag:accessTokens`` Pulumi secret), and/or
  the older single shared token (``RAG_AUTH__TOKEN_SHA256``: principal
  ``static-token``, no groups). Only SHA-256 digests are in the function's
  environment, so reading the Lambda config does not reveal a token; the
  presented token is hashed and looked up (a dict lookup on a digest of a
  high-entropy token leaks nothing useful through timing; the single token is
  compared in constant time). A token whose entry has no ``groups`` is
  refused with that reason. No network call at cold start.
* ``cognito``: a JWT (id or access token) from the stack's Cognito user pool,
  verified with RS256 against the pool's JWKS (fetched once per container and
  cached), checking issuer, expiry, ``token_use`` and the app client id. The
  groups are the token's ``cognito:groups`` claim (none: no groups).

PyJWT is imported on first use, so the query function can reuse the
token-map code without shipping it.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    import jwt

MODE_ENV = "RAG_AUTH__MODE"
TOKEN_SHA256_ENV = "RAG_AUTH__TOKEN_SHA256"
TOKENS_ENV = "RAG_AUTH__TOKENS"
COGNITO_ISSUER_ENV = "RAG_AUTH__COGNITO_ISSUER"
COGNITO_CLIENT_ID_ENV = "RAG_AUTH__COGNITO_CLIENT_ID"

MAX_TOKEN_CHARS = 8192
LEGACY_PRINCIPAL = "static-token"
# Kept in step with shared.access.GROUP_PATTERN (this module imports no pydantic).
_GROUP = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:@+/=-]{0,127}$")
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_HASHED_PREFIX = "sha256:"
# Context keys of an Allow, read back by the query function (services.query.transports.identity).
CONTEXT_PRINCIPAL = "principal"
CONTEXT_GROUPS = "groups"


class Unauthorized(Exception):
    """The request carries no acceptable token (the reason is logged, never returned)."""


@dataclass(frozen=True)
class Identity:
    """Who an accepted token belongs to; ``groups`` None: the token has no groups
    mapping (refused at $connect)."""

    principal: str
    groups: tuple[str, ...] | None = ()

    def context(self) -> dict[str, str]:
        """The authorizer's ``context``: scalar values only, so groups go as JSON."""
        return {CONTEXT_PRINCIPAL: self.principal, CONTEXT_GROUPS: json.dumps(self.groups or [])}


def token_sha256(token: str) -> str:
    """The digest the stack stores (infra/components/auth.py) and requests must match."""
    return hashlib.sha256(token.encode()).hexdigest()


def _groups(value: Any, where: str) -> tuple[str, ...] | None:
    if value is None:
        return None
    if not isinstance(value, list) or not all(
        isinstance(g, str) and _GROUP.match(g) for g in value
    ):
        raise ValueError(
            f"{where}: groups must be a list of group names (letters, digits, _.:@+/=-; "
            "at most 128 characters, starting with a letter or digit)"
        )
    return tuple(sorted(set(value)))


def parse_token_grants(raw: str | Mapping[str, Any]) -> dict[str, Identity]:
    """A tokens map (``rag serve --tokens FILE``, the ``rag:accessTokens`` secret)
    as ``{sha256 of token: Identity}``.

    Keys are tokens, or ``sha256:<hex>`` digests so that a file need not hold
    plain tokens. Each value is ``{"principal": "...", "groups": [...]}``; an
    entry without ``groups`` is kept, and refused at $connect with that reason.
    """
    data = json.loads(raw) if isinstance(raw, str) else raw
    if not isinstance(data, Mapping):
        raise ValueError("the tokens map must be a JSON object: {token: {principal, groups}}")
    grants: dict[str, Identity] = {}
    for n, (key, entry) in enumerate(data.items(), 1):
        where = f"token entry {n}"  # never the token itself
        if not isinstance(key, str) or not key:
            raise ValueError(f"{where}: the key must be a token or sha256:<hex>")
        digest = key[len(_HASHED_PREFIX) :].lower() if key.startswith(_HASHED_PREFIX) else None
        if digest is not None and not _SHA256.match(digest):
            raise ValueError(f"{where}: sha256: must be followed by 64 hex digits")
        if not isinstance(entry, Mapping) or not isinstance(entry.get("principal"), str):
            raise ValueError(f"{where}: the value must be an object with a principal (a string)")
        principal = str(entry["principal"]).strip()
        if not principal:
            raise ValueError(f"{where}: the principal is empty")
        grants[digest or token_sha256(key)] = Identity(
            principal, _groups(entry.get("groups"), where)
        )
    return grants


def hashed_grants(grants: Mapping[str, Identity]) -> str:
    """The ``RAG_AUTH__TOKENS`` value: ``sha256:<hex>`` keys only, never a token."""
    entries: dict[str, dict[str, Any]] = {}
    for digest, who in sorted(grants.items()):
        entry: dict[str, Any] = {"principal": who.principal}
        if who.groups is not None:
            entry["groups"] = list(who.groups)
        entries[f"{_HASHED_PREFIX}{digest}"] = entry
    return json.dumps(entries)


@dataclass(frozen=True)
class AuthConfig:
    mode: Literal["token", "cognito"]
    token_sha256: str | None = None
    issuer: str | None = None
    client_id: str | None = None
    tokens: Mapping[str, Identity] = field(default_factory=dict)

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> AuthConfig:
        mode = env.get(MODE_ENV, "")
        if mode == "token":
            digest = env.get(TOKEN_SHA256_ENV, "").strip().lower() or None
            if digest is not None and not _SHA256.match(digest):
                raise ValueError(f"{TOKEN_SHA256_ENV} must be a hex SHA-256")
            tokens = parse_token_grants(env[TOKENS_ENV]) if env.get(TOKENS_ENV) else {}
            if digest is None and not tokens:
                raise ValueError(f"token mode needs {TOKENS_ENV} or {TOKEN_SHA256_ENV}")
            return cls(mode="token", token_sha256=digest, tokens=tokens)
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


def verify_static(token: str, config: AuthConfig) -> Identity:
    """The identity a static token maps to; refuse unknown tokens and tokens
    that have no groups mapping."""
    digest = token_sha256(token)
    found = config.tokens.get(digest)
    if found is not None:
        if found.groups is None:
            raise Unauthorized(
                f"the token of principal {found.principal!r} has no groups mapping; add "
                '"groups": [...] (may be empty) to its entry in the tokens map'
            )
        return found
    if config.token_sha256 is not None and hmac.compare_digest(digest, config.token_sha256):
        return Identity(LEGACY_PRINCIPAL, ())
    raise Unauthorized("token mismatch")


def verify_cognito(token: str, key: Any, issuer: str, client_id: str) -> Identity:
    """Verify an RS256 Cognito JWT with the given public key; return its subject
    and ``cognito:groups``."""
    try:
        claims = _jwt().decode(
            token,
            key,
            algorithms=["RS256"],
            issuer=issuer,
            options={"require": ["exp", "iss", "sub", "token_use"], "verify_aud": False},
        )
    except _jwt().PyJWTError as exc:
        # By kind only: PyJWT's messages may quote the token (no part may be logged).
        raise Unauthorized(f"invalid JWT ({type(exc).__name__})") from exc
    token_use = claims.get("token_use")
    # Id tokens name the app client in "aud", access tokens in "client_id".
    audience = claims.get("aud") if token_use == "id" else claims.get("client_id")
    if token_use not in ("id", "access") or audience != client_id:
        raise Unauthorized("token not issued to this app client")
    groups = claims.get("cognito:groups") or []
    if not isinstance(groups, list) or not all(isinstance(g, str) for g in groups):
        raise Unauthorized("cognito:groups is not a list of names")
    # A Cognito group name the index cannot hold as an access term is left out.
    return Identity(str(claims["sub"]), tuple(sorted({g for g in groups if _GROUP.match(g)})))


@lru_cache(maxsize=1)
def _jwks_client(issuer: str) -> jwt.PyJWKClient:
    client: jwt.PyJWKClient = _jwt().PyJWKClient(f"{issuer}/.well-known/jwks.json", cache_keys=True)
    return client


def _jwt() -> Any:
    """PyJWT, imported on first use: the query function reuses this module's
    token-map code (services.query.transports.identity) without shipping PyJWT."""
    import jwt

    return jwt


def authorize(event: Mapping[str, Any], config: AuthConfig) -> Identity:
    """Return the caller's identity for an acceptable request, else raise :class:`Unauthorized`."""
    token = extract_token(event)
    if config.mode == "token":
        return verify_static(token, config)
    assert config.issuer is not None and config.client_id is not None
    try:
        key = _jwks_client(config.issuer).get_signing_key_from_jwt(token).key
    except _jwt().PyJWTError as exc:
        # Not the message: it quotes the token header's "kid".
        raise Unauthorized(f"no signing key for the token ({type(exc).__name__})") from exc
    return verify_cognito(token, key, config.issuer, config.client_id)
