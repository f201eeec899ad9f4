"""The $connect authorizer: token extraction, static-token and Cognito-JWT modes.

Cognito mode is exercised end to end against a real JWKS endpoint served on
127.0.0.1 with keys generated here, so PyJWT's fetching and caching run as in Lambda.
"""

from __future__ import annotations

import hashlib
import json
import logging
import secrets
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from services.query.transports import authorizer as auth
from services.query.transports import tokens

METHOD_ARN = "arn:aws:execute-api:eu-west-1:123456789012:api0123/live/$connect"
TOKEN = "a-long-random-static-token-0123456789abcdef"
CLIENT_ID = "app-client-1"


def connect_event(
    query: dict[str, str] | None = None, headers: dict[str, str] | None = None
) -> dict[str, Any]:
    return {
        "type": "REQUEST",
        "methodArn": METHOD_ARN,
        "headers": headers or {"Host": "api0123.execute-api.eu-west-1.amazonaws.com"},
        "queryStringParameters": query,
        "requestContext": {"routeKey": "$connect", "eventType": "CONNECT"},
    }


def effect(answer: dict[str, Any]) -> str:
    (statement,) = answer["policyDocument"]["Statement"]
    assert statement["Resource"] == METHOD_ARN
    assert statement["Action"] == "execute-api:Invoke"
    return str(statement["Effect"])


# --- token extraction -------------------------------------------------------------


@pytest.mark.parametrize(
    ("query", "headers"),
    [
        ({"token": TOKEN}, None),
        (None, {"Authorization": f"Bearer {TOKEN}"}),
        (None, {"authorization": TOKEN}),
        (None, {"Sec-WebSocket-Protocol": f"bearer, {TOKEN}"}),
    ],
)
def test_token_found_in_each_place(
    query: dict[str, str] | None, headers: dict[str, str] | None
) -> None:
    assert tokens.extract_token(connect_event(query, headers)) == TOKEN


@pytest.mark.parametrize(
    "event",
    [
        connect_event(),
        connect_event({"token": ""}),
        connect_event(None, {"Sec-WebSocket-Protocol": "chat.v1"}),
        connect_event({"token": "x" * (tokens.MAX_TOKEN_CHARS + 1)}),
    ],
)
def test_missing_or_oversize_token_is_refused(event: dict[str, Any]) -> None:
    with pytest.raises(tokens.Unauthorized):
        tokens.extract_token(event)


# --- static token -----------------------------------------------------------------


@pytest.fixture
def static_mode(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv(tokens.MODE_ENV, "token")
    monkeypatch.setenv(tokens.TOKEN_SHA256_ENV, hashlib.sha256(TOKEN.encode()).hexdigest())
    auth._config_from_environment.cache_clear()
    yield
    auth._config_from_environment.cache_clear()


def test_static_token_allows(static_mode: None) -> None:
    answer = auth.handler(connect_event({"token": TOKEN}), None)
    assert effect(answer) == "Allow"
    assert answer["principalId"] == "static-token"


@pytest.mark.parametrize("presented", [TOKEN[:-1], TOKEN + "x", TOKEN.upper()])
def test_static_token_denies_anything_else(static_mode: None, presented: str) -> None:
    assert effect(auth.handler(connect_event({"token": presented}), None)) == "Deny"


def test_no_token_is_denied(static_mode: None) -> None:
    assert effect(auth.handler(connect_event(), None)) == "Deny"


@pytest.mark.parametrize(
    "env",
    [
        {},
        {tokens.MODE_ENV: "token"},
        {tokens.MODE_ENV: "token", tokens.TOKEN_SHA256_ENV: "abc"},
        {tokens.MODE_ENV: "cognito", tokens.COGNITO_ISSUER_ENV: "https://x"},
        {tokens.MODE_ENV: "open"},
    ],
)
def test_incomplete_configuration_is_an_error(env: dict[str, str]) -> None:
    with pytest.raises(ValueError):
        tokens.AuthConfig.from_env(env)


# --- Cognito JWTs ------------------------------------------------------------------


@pytest.fixture(scope="module")
def signing_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture
def jwks_issuer(signing_key: rsa.RSAPrivateKey) -> Iterator[str]:
    """A real HTTP server on 127.0.0.1 publishing the public key as a JWKS."""
    jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(signing_key.public_key()))
    body = json.dumps({"keys": [{**jwk, "kid": "key-1", "alg": "RS256", "use": "sig"}]}).encode()

    class Jwks(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            ok = self.path == "/eu-west-1_Pool0123/.well-known/jwks.json"
            self.send_response(200 if ok else 404)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(body if ok else b"{}")

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Jwks)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/eu-west-1_Pool0123"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def cognito_token(key: rsa.RSAPrivateKey, issuer: str, **claims: Any) -> str:
    payload = {
        "sub": "user-123",
        "iss": issuer,
        "exp": int(time.time()) + 600,
        "token_use": "access",
        "client_id": CLIENT_ID,
        **claims,
    }
    payload = {k: v for k, v in payload.items() if v is not None}
    return jwt.encode(payload, key, algorithm="RS256", headers={"kid": "key-1"})


def cognito_config(issuer: str) -> tokens.AuthConfig:
    return tokens.AuthConfig(mode="cognito", issuer=issuer, client_id=CLIENT_ID)


def test_cognito_access_token_accepted(signing_key: rsa.RSAPrivateKey, jwks_issuer: str) -> None:
    token = cognito_token(signing_key, jwks_issuer)
    event = connect_event(None, {"Authorization": f"Bearer {token}"})
    assert tokens.authorize(event, cognito_config(jwks_issuer)) == tokens.Identity("user-123", ())


def test_cognito_id_token_accepted(signing_key: rsa.RSAPrivateKey, jwks_issuer: str) -> None:
    token = cognito_token(signing_key, jwks_issuer, token_use="id", client_id=None, aud=CLIENT_ID)
    identity = tokens.authorize(connect_event({"token": token}), cognito_config(jwks_issuer))
    assert identity == tokens.Identity("user-123", ())


@pytest.mark.parametrize(
    "claims",
    [
        {"client_id": "another-app"},
        {"token_use": "refresh"},
        {"token_use": None},
        {"exp": int(time.time()) - 60},
        {"iss": "https://cognito-idp.eu-west-1.amazonaws.com/someone-else"},
        {"token_use": "id", "client_id": None, "aud": "another-app"},
    ],
)
def test_cognito_token_rejected(
    signing_key: rsa.RSAPrivateKey, jwks_issuer: str, claims: dict[str, Any]
) -> None:
    token = cognito_token(signing_key, jwks_issuer, **claims)
    with pytest.raises(tokens.Unauthorized):
        tokens.authorize(connect_event({"token": token}), cognito_config(jwks_issuer))


def test_cognito_rejects_foreign_key_and_hmac(jwks_issuer: str) -> None:
    stranger = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    forged = cognito_token(stranger, jwks_issuer)
    hmac_token = jwt.encode(
        {"sub": "x", "iss": jwks_issuer, "exp": int(time.time()) + 60, "token_use": "access"},
        "a-shared-secret-that-is-long-enough-for-hs256",
        algorithm="HS256",
        headers={"kid": "key-1"},
    )
    for token in (forged, hmac_token, "not-a-jwt"):
        with pytest.raises(tokens.Unauthorized):
            tokens.authorize(connect_event({"token": token}), cognito_config(jwks_issuer))


def test_handler_in_cognito_mode(
    signing_key: rsa.RSAPrivateKey, jwks_issuer: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(tokens.MODE_ENV, "cognito")
    monkeypatch.setenv(tokens.COGNITO_ISSUER_ENV, jwks_issuer)
    monkeypatch.setenv(tokens.COGNITO_CLIENT_ID_ENV, CLIENT_ID)
    auth._config_from_environment.cache_clear()
    try:
        good = cognito_token(signing_key, jwks_issuer)
        assert effect(auth.handler(connect_event({"token": good}), None)) == "Allow"
        assert effect(auth.handler(connect_event({"token": good + "x"}), None)) == "Deny"
    finally:
        auth._config_from_environment.cache_clear()


# --- identities: principals and groups -------------------------------------------

ALICE = "alice-token-0123456789abcdef0123456789"
BOB = "bob-token-0123456789abcdef0123456789abc"
CAROL = "carol-token-0123456789abcdef01234567890"


def tokens_env() -> dict[str, str]:
    grants = tokens.parse_token_grants(
        {
            ALICE: {"principal": "alice", "groups": ["hr", "staff"]},
            f"sha256:{tokens.token_sha256(BOB)}": {"principal": "bob", "groups": []},
            CAROL: {"principal": "carol"},  # no groups mapping
        }
    )
    return {tokens.MODE_ENV: "token", tokens.TOKENS_ENV: tokens.hashed_grants(grants)}


@pytest.fixture
def tokens_mode(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name, value in tokens_env().items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv(tokens.TOKEN_SHA256_ENV, raising=False)
    auth._config_from_environment.cache_clear()
    yield
    auth._config_from_environment.cache_clear()


def test_the_environment_holds_digests_never_tokens() -> None:
    value = tokens_env()[tokens.TOKENS_ENV]
    for token in (ALICE, BOB, CAROL):
        assert token not in value
    assert tokens.token_sha256(ALICE) in value


def test_each_token_maps_to_its_principal_and_groups(tokens_mode: None) -> None:
    answer = auth.handler(connect_event({"token": ALICE}), None)
    assert effect(answer) == "Allow"
    assert answer["principalId"] == "alice"
    # Context values must be scalars: the groups travel as a JSON list in a string.
    assert answer["context"] == {"principal": "alice", "groups": '["hr", "staff"]'}
    bob = auth.handler(connect_event(None, {"Authorization": f"Bearer {BOB}"}), None)
    assert bob["context"] == {"principal": "bob", "groups": "[]"}


def test_a_token_without_a_groups_mapping_is_refused_with_the_reason(
    tokens_mode: None, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level("WARNING", logger=auth.__name__):
        answer = auth.handler(connect_event({"token": CAROL}), None)
    assert effect(answer) == "Deny" and "context" not in answer
    assert "principal 'carol' has no groups mapping" in caplog.text
    assert CAROL not in caplog.text


def test_unknown_tokens_are_refused_in_tokens_mode(tokens_mode: None) -> None:
    assert effect(auth.handler(connect_event({"token": ALICE + "x"}), None)) == "Deny"


def test_the_single_legacy_token_reads_what_everyone_reads(static_mode: None) -> None:
    answer = auth.handler(connect_event({"token": TOKEN}), None)
    assert answer["context"] == {"principal": "static-token", "groups": "[]"}


@pytest.mark.parametrize(
    "raw",
    [
        "[]",
        '{"t": "alice"}',
        '{"t": {"groups": ["hr"]}}',
        '{"t": {"principal": "a", "groups": "hr"}}',
        '{"t": {"principal": "a", "groups": ["has space"]}}',
        '{"sha256:abc": {"principal": "a", "groups": []}}',
        '{"t": {"principal": " ", "groups": []}}',
    ],
)
def test_bad_tokens_maps_are_configuration_errors(raw: str) -> None:
    with pytest.raises(ValueError) as caught:
        tokens.parse_token_grants(raw)
    assert '"t"' not in str(caught.value)  # a token never appears in an error


def test_cognito_groups_claim_becomes_the_groups(
    signing_key: rsa.RSAPrivateKey, jwks_issuer: str
) -> None:
    token = cognito_token(signing_key, jwks_issuer, **{"cognito:groups": ["staff", "hr"]})
    identity = tokens.authorize(connect_event({"token": token}), cognito_config(jwks_issuer))
    assert identity == tokens.Identity("user-123", ("hr", "staff"))
    assert identity.context() == {"principal": "user-123", "groups": '["hr", "staff"]'}


def test_refusal_logs_say_why_without_any_part_of_the_token(
    signing_key: rsa.RSAPrivateKey,
    jwks_issuer: str,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Issue #26 item 9: PyJWT's messages quote the token's header (an unknown
    ``kid``); the authorizer logs the kind of refusal only."""
    monkeypatch.setenv(tokens.MODE_ENV, "cognito")
    monkeypatch.setenv(tokens.COGNITO_ISSUER_ENV, jwks_issuer)
    monkeypatch.setenv(tokens.COGNITO_CLIENT_ID_ENV, CLIENT_ID)
    auth._config_from_environment.cache_clear()
    caplog.set_level(logging.DEBUG)
    secret_kid = "kid-" + secrets.token_hex(16)
    unknown_key = jwt.encode(
        {"sub": "u", "iss": jwks_issuer, "exp": int(time.time()) + 60, "token_use": "access"},
        signing_key,
        algorithm="RS256",
        headers={"kid": secret_kid},
    )
    try:
        assert effect(auth.handler(connect_event({"token": unknown_key}), None)) == "Deny"
    finally:
        auth._config_from_environment.cache_clear()
    refusals = [r for r in caplog.records if r.getMessage().startswith("connection refused")]
    assert refusals, "the refusal is logged"
    text = caplog.text
    assert secret_kid not in text and secret_kid[4:20] not in text
    assert unknown_key.split(".")[0][:20] not in text
