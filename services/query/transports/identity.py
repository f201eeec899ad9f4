"""The caller's identity, from authentication only (never from a client frame).

* Lambda: the ``$connect`` authorizer's context arrives as
  ``requestContext.authorizer`` (``principal``, ``groups`` as a JSON list in a
  string, plus API Gateway's own ``principalId`` and ``integrationLatency``);
  :func:`principal_from_authorizer` reads it, and the query function keeps it
  per connection.
* Local server: :class:`TokenAuthenticator` checks the token of the WebSocket
  upgrade against a tokens file (the same map the stack's ``rag:accessTokens``
  holds); without one the server is single-user and the user reads everything.

Admins are the members of ``RAG_QUERY__ADMIN_GROUP``; they read every
document, including those with an empty access list.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from services.query.transports.tokens import (
    CONTEXT_GROUPS,
    CONTEXT_PRINCIPAL,
    AuthConfig,
    Identity,
    extract_token,
    parse_token_grants,
    verify_static,
)
from shared.access import Principal
from shared.errors import ConfigurationError

# A deployment without an authorizer (chat.auth = none): nobody is vouched for,
# so callers read only the documents open to every authenticated user.
ANONYMOUS = Principal(id="anonymous")


def principal_from_authorizer(
    authorizer: Mapping[str, Any] | None, admin_group: str
) -> Principal | None:
    """The principal of a ``requestContext.authorizer``; None if it names none."""
    if not authorizer:
        return None
    principal = authorizer.get(CONTEXT_PRINCIPAL)
    if not isinstance(principal, str) or not principal:
        return None
    raw = authorizer.get(CONTEXT_GROUPS) or "[]"
    try:
        groups = json.loads(raw) if isinstance(raw, str) else raw
    except ValueError:
        groups = None
    if not isinstance(groups, list) or not all(isinstance(g, str) for g in groups):
        # The authorizer always writes a JSON list: anything else is not trusted.
        return Principal(id=principal)
    return Principal.from_claims(principal, groups, admin_group)


def principal_of(identity: Identity, admin_group: str) -> Principal:
    return Principal.from_claims(identity.principal, identity.groups or (), admin_group)


class TokenAuthenticator:
    """Static tokens for the local server, from a tokens file."""

    def __init__(self, grants: Mapping[str, Identity], admin_group: str) -> None:
        self._config = AuthConfig(mode="token", tokens=dict(grants))
        self._admin_group = admin_group

    @classmethod
    def from_file(cls, path: Path, admin_group: str) -> TokenAuthenticator:
        try:
            grants = parse_token_grants(path.read_text())
        except OSError as exc:
            raise ConfigurationError(f"cannot read the tokens file {path}: {exc}") from exc
        except ValueError as exc:
            raise ConfigurationError(f"the tokens file {path} is not valid: {exc}") from exc
        if not grants:
            raise ConfigurationError(f"the tokens file {path} lists no tokens")
        return cls(grants, admin_group)

    def __len__(self) -> int:
        return len(self._config.tokens)

    def authenticate(self, headers: Mapping[str, str], query: Mapping[str, str]) -> Principal:
        """The caller of a WebSocket upgrade; raise Unauthorized with the reason."""
        event = {"headers": dict(headers), "queryStringParameters": dict(query)}
        return principal_of(verify_static(extract_token(event), self._config), self._admin_group)
