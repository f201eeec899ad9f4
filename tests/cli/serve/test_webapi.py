"""The local server's document API on real SQLite files (no models involved)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from cli.destination import destination_for
from cli.local_parts import LocalParts
from cli.serve.webapi import add_local_routes
from shared.settings import Settings

PAGE = {"X-Requested-With": "rag-page"}


@pytest.fixture
async def parts(tmp_path: Path) -> AsyncIterator[LocalParts]:
    parts = LocalParts(Settings(data_dir=tmp_path / "data"))
    yield parts
    await parts.close()


@pytest.fixture
async def base_url(parts: LocalParts) -> AsyncIterator[str]:
    app = web.Application()
    add_local_routes(app, destination_for(parts))
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    yield str(server.make_url("")).rstrip("/")
    await server.close()


def upload_form(*files: tuple[str, bytes]) -> aiohttp.FormData:
    # Browsers send file names as they are; aiohttp's client would percent-encode them.
    form = aiohttp.FormData(quote_fields=False)
    for name, data in files:
        form.add_field("file", data, filename=name)
    return form


async def test_the_page_is_served_with_a_content_security_policy(base_url: str) -> None:
    async with aiohttp.ClientSession() as http, http.get(base_url + "/") as response:
        body = await response.text()
        csp = response.headers["Content-Security-Policy"]
    assert response.status == 200 and "<title>RAG chat</title>" in body
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp


async def test_uploads_are_queued_and_bad_files_rejected_with_reasons(
    base_url: str, parts: LocalParts
) -> None:
    form = upload_form(("notes.txt", b"hello"), ("tool.exe", b"MZ"), ("blank.md", b"  \n"))
    async with aiohttp.ClientSession() as http:
        async with http.post(base_url + "/api/documents", data=form, headers=PAGE) as response:
            result = await response.json()
        async with http.get(base_url + "/api/documents") as response:
            listed = await response.json()

    assert response.status == 200
    assert [a["doc_id"] for a in result["accepted"]] == ["notes.txt"]
    reasons = {r["name"]: r["reason"] for r in result["rejected"]}
    assert reasons["tool.exe"].startswith("unsupported file type")
    assert reasons["blank.md"] == "the file is empty"
    assert [(d["doc_id"], d["state"]) for d in listed["documents"]] == [("notes.txt", "queued")]
    (message,) = await parts.queue.receive(5, 0, 60)
    assert json.loads(message.body)["text"] == "hello"


@pytest.mark.parametrize(
    "headers",
    [{}, {"X-Requested-With": "rag-page", "Origin": "http://evil.example"}],
    ids=["no-page-header", "foreign-origin"],
)
async def test_mutations_from_elsewhere_are_refused(
    base_url: str, parts: LocalParts, headers: dict[str, str]
) -> None:
    async with aiohttp.ClientSession() as http:
        async with http.post(
            base_url + "/api/documents", data=upload_form(("a.txt", b"x")), headers=headers
        ) as response:
            status = response.status
        async with http.post(base_url + "/api/samples", headers=headers) as response:
            samples_status = response.status
    assert (status, samples_status) == (403, 403)
    assert (await parts.queue.counts()).pending == 0  # type: ignore[attr-defined]


async def test_delete_queues_a_delete_and_unknown_ids_are_404(
    base_url: str, parts: LocalParts
) -> None:
    async with aiohttp.ClientSession() as http:
        await http.post(
            base_url + "/api/documents", data=upload_form(("dir/a b.txt", b"x")), headers=PAGE
        )
        async with http.delete(base_url + "/api/documents/nope.txt", headers=PAGE) as response:
            missing = response.status
        async with http.delete(base_url + "/api/documents/a%20b.txt", headers=PAGE) as response:
            deleted = await response.json()
    assert missing == 404
    assert deleted["doc_id"] == "a b.txt"
    bodies = [json.loads(m.body) for m in await parts.queue.receive(5, 0, 60)]
    assert [b["op"] for b in bodies] == ["index", "delete"]


async def test_with_tokens_the_document_endpoints_are_for_admins(parts: LocalParts) -> None:
    from services.query.transports.identity import TokenAuthenticator
    from services.query.transports.server import AUTHENTICATOR
    from services.query.transports.tokens import parse_token_grants

    grants = parse_token_grants(
        {
            "admin-token-0123456789": {"principal": "root", "groups": ["rag-admins"]},
            "staff-token-0123456789": {"principal": "sam", "groups": ["staff"]},
        }
    )
    app = web.Application()
    app[AUTHENTICATOR] = TokenAuthenticator(grants, "rag-admins")
    add_local_routes(app, destination_for(parts))
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    url = server.make_url("/api/documents")
    try:
        async with aiohttp.ClientSession() as http:
            async with http.get(url) as response:
                assert response.status == 403
                assert "need an admin's token (no token)" in (await response.json())["error"]
            staff = {"Authorization": "Bearer staff-token-0123456789"}
            async with http.get(url, headers=staff) as response:
                assert response.status == 403
                assert "admins only" in (await response.json())["error"]
            admin = {"Authorization": "Bearer admin-token-0123456789", **PAGE}
            async with http.get(url, headers=admin) as response:
                assert response.status == 200
                assert (await response.json())["documents"] == []
    finally:
        await server.close()
