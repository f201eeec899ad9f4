"""The WebSocket ``$connect`` Lambda authorizer (API Gateway REQUEST authorizer).

It verifies the presented token with ``tokens.py`` (where a client may put
it, the two modes ``RAG_AUTH__MODE`` chooses) and answers with an IAM policy
allowing or denying ``execute-api:Invoke`` on the ``$connect`` method
(WebSocket authorizers cannot return the "simple" format). An Allow carries
the caller's identity in its ``context`` (``principal``, and ``groups`` as a
JSON list in a string: context values must be scalars); API Gateway hands it
to the query function as ``requestContext.authorizer``. A refusal's reason is
logged here; the client sees only HTTP 403.

This module and ``tokens.py`` import only the standard library and PyJWT, so
the authorizer ships as its own small artifact.
"""

from __future__ import annotations

import logging
import os
from functools import lru_cache
from typing import Any, Literal

from services.query.transports.tokens import AuthConfig, Identity, Unauthorized, authorize

log = logging.getLogger(__name__)


def policy(identity: Identity, effect: Literal["Allow", "Deny"], method_arn: str) -> dict[str, Any]:
    answer: dict[str, Any] = {
        "principalId": identity.principal,
        "policyDocument": {
            "Version": "2012-10-17",
            "Statement": [
                {"Action": "execute-api:Invoke", "Effect": effect, "Resource": method_arn}
            ],
        },
    }
    if effect == "Allow":
        answer["context"] = identity.context()
    return answer


@lru_cache(maxsize=1)
def _config_from_environment() -> AuthConfig:
    return AuthConfig.from_env(os.environ)


def handler(event: dict[str, Any], context: object) -> dict[str, Any]:
    method_arn = str(event.get("methodArn", ""))
    try:
        identity = authorize(event, _config_from_environment())
    except Unauthorized as exc:
        log.warning("connection refused: %s", exc)
        return policy(Identity("anonymous"), "Deny", method_arn)
    return policy(identity, "Allow", method_arn)
