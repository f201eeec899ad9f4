"""Identity from authentication only: the local server's tokens file and the
query Lambda's API Gateway authorizer contexts. The caller's groups scope every
search; nothing in a client frame can change them."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import ClientSession, WSServerHandshakeError
from aiohttp.test_utils import TestServer

from services.query.answer.parts import QueryDeps
from services.query.transports.identity import (
    ANONYMOUS,
    TokenAuthenticator,
    principal_from_authorizer,
)
from services.query.transports.server import create_app
from shared.access import Principal
from shared.adapters.sqlite.store import SqliteVectorIndex
from shared.errors import ConfigurationError
from shared.settings import Settings
from tests.fakes.embedder import FakeEmbedder
from tests.query.corpus import corpus_chunks
from tests.query.events import authorizer_context

TIMEOUT = 10.0
TOKENS = {
    "hr-token-0123456789": {"principal": "hannah", "groups": ["hr"]},
    "farm-token-012345678": {"principal": "fred", "groups": ["farm"]},
    "admin-token-01234567": {"principal": "root", "groups": ["rag-admins"]},
    "nogroups-token-01234": {"principal": "nora"},
}


@pytest.fixture
async def labelled_index(index: SqliteVectorIndex, embedder: FakeEmbedder) -> None:
    """The query corpus with each document readable by its team only."""
    for chunk in corpus_chunks(embedder):
        await index.set_groups(chunk.chunk.doc_id, [str(chunk.chunk.metadata["team"])])


@pytest.fixture
def tokens_file(tmp_path: Path) -> Path:
    path = tmp_path / "tokens.json"
    path.write_text(json.dumps(TOKENS))
    return path


@pytest.fixture
async def server(
    settings: Settings, deps: QueryDeps, tokens_file: Path, labelled_index: None
) -> AsyncIterator[TestServer]:
    authenticator = TokenAuthenticator.from_file(tokens_file, settings.query.admin_group)
    server = TestServer(create_app(settings, deps, authenticator), host="127.0.0.1")
    await server.start_server()
    yield server
    await server.close()


async def cited_docs(
    server: TestServer, frame: dict[str, Any], token: str | None = None, **connect: Any
) -> set[str]:
    url = server.make_url("/ws")
    if token is not None:
        url = url.with_query(token=token)
    async with ClientSession() as http, http.ws_connect(url, **connect) as ws:
        await ws.send_json(frame)
        while True:
            event = json.loads(await ws.receive_str(timeout=TIMEOUT))
            if event["event"] == "sources":
                return {c["doc_id"] for c in event["citations"]}
            assert event["event"] not in ("error", "done"), event


ASK = {"action": "ask", "question": "vacation days llamas hay server room", "k": 10}


async def test_each_token_reads_what_its_groups_allow(server: TestServer) -> None:
    assert await cited_docs(server, ASK, "hr-token-0123456789") == {"vacation", "vacation-copy"}
    assert await cited_docs(server, ASK, "farm-token-012345678") == {"llamas"}
    admin = await cited_docs(server, ASK, "admin-token-01234567")
    assert admin >= {"llamas", "servers"} and admin & {"vacation", "vacation-copy"}


async def test_the_token_works_in_the_browser_subprotocol_too(server: TestServer) -> None:
    found = await cited_docs(server, ASK, None, protocols=("bearer", "farm-token-012345678"))
    assert found == {"llamas"}


async def test_client_frames_cannot_claim_groups_or_widen_by_filters(server: TestServer) -> None:
    sneaky = {**ASK, "filters": {"team": ["hr", "it", "farm"]}}
    assert await cited_docs(server, sneaky, "farm-token-012345678") == {"llamas"}
    claims = {**ASK, "groups": ["hr"], "principal": "root"}
    async with ClientSession() as http:
        url = server.make_url("/ws").with_query(token="farm-token-012345678")
        async with http.ws_connect(url) as ws:
            await ws.send_json(claims)
            event = json.loads(await ws.receive_str(timeout=TIMEOUT))
    assert event["event"] == "error" and event["code"] == "invalid_request"


@pytest.mark.parametrize(
    ("token", "status", "reason"),
    [
        (None, 401, "no token"),
        ("wrong-token-0123456789", 403, "token mismatch"),
        ("nogroups-token-01234", 403, "principal 'nora' has no groups mapping"),
    ],
)
async def test_refused_connections_say_why(
    server: TestServer, token: str | None, status: int, reason: str
) -> None:
    url = server.make_url("/ws")
    if token is not None:
        url = url.with_query(token=token)
    async with ClientSession() as http:
        with pytest.raises(WSServerHandshakeError) as caught:
            await http.ws_connect(url)
        assert caught.value.status == status
        async with http.get(url) as response:
            assert response.status == status
            assert reason in await response.text()


def test_a_bad_tokens_file_is_a_start_up_error(tmp_path: Path) -> None:
    bad = tmp_path / "tokens.json"
    bad.write_text('{"t": {"groups": ["hr"]}}')
    with pytest.raises(ConfigurationError, match="principal"):
        TokenAuthenticator.from_file(bad, "rag-admins")
    with pytest.raises(ConfigurationError, match="cannot read"):
        TokenAuthenticator.from_file(tmp_path / "missing.json", "rag-admins")


# ---- API Gateway authorizer contexts -------------------------------------------------


def test_authorizer_context_as_api_gateway_sends_it() -> None:
    context = authorizer_context("alice", ["hr", "rag-admins"])
    assert principal_from_authorizer(context, "rag-admins") == Principal(
        "alice", frozenset({"hr", "rag-admins"}), admin=True
    )
    plain = principal_from_authorizer(authorizer_context("bob", []), "rag-admins")
    assert plain == Principal("bob", frozenset(), admin=False)


@pytest.mark.parametrize(
    "context",
    [None, {}, {"principalId": "user-1", "integrationLatency": 5}, {"principal": ""}],
)
def test_no_principal_in_the_context_is_no_identity(context: dict[str, Any] | None) -> None:
    assert principal_from_authorizer(context, "rag-admins") is None


def test_groups_that_are_not_a_json_list_grant_nothing() -> None:
    context = {**authorizer_context("mallory"), "groups": "hr"}
    assert principal_from_authorizer(context, "hr") == Principal("mallory")
    assert ANONYMOUS.access.terms() == ["*"]


async def test_single_user_mode_reads_everything(settings: Settings, deps: QueryDeps) -> None:
    server = TestServer(create_app(settings, deps), host="127.0.0.1")
    await server.start_server()
    try:
        found = await asyncio.wait_for(cited_docs(server, ASK), TIMEOUT)
    finally:
        await server.close()
    assert {"llamas", "servers"} <= found
