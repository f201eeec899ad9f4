"""End to end: ``rag serve`` + ``rag ingest`` + a real WebSocket client + restart."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path

import aiohttp
import apsw
import pytest

from cli.destination.embedded import CONSUMER_FRESH_S
from shared.adapters.sqlite.common import QUEUE_DB
from shared.protocol import DoneEvent, SourcesEvent, TokenEvent, parse_server_event
from tests.local.conftest import LocalServer, rag
from tests.waiting import wait_until

pytestmark = pytest.mark.slow

DOCS = {
    "policies/travel.md": (
        "# Travel policy\n\nEmployees of Quillfeather Ltd book trains through the Wayfarer "
        "portal. Flights need approval from the finance lead, Ottilie Brandt.\n"
    ),
    "policies/leave.txt": (
        "Quillfeather Ltd grants twenty-eight days of annual leave. Unused leave expires "
        "at the end of March.\n"
    ),
    "kitchen.html": (
        "<html><head><title>Kitchen rules</title></head><body><h1>Kitchen</h1>"
        "<p>The espresso machine is descaled every Friday by the office manager.</p>"
        "</body></html>"
    ),
}


def write_docs(root: Path) -> Path:
    folder = root / "docs"
    for name, text in DOCS.items():
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return folder


async def ask_over_websocket(url: str, question: str) -> list[object]:
    events: list[object] = []
    async with aiohttp.ClientSession() as session, session.ws_connect(url) as ws:
        await ws.send_json({"action": "ask", "question": question, "request_id": "e2e-1"})
        async for message in ws:
            event = parse_server_event(message.data)
            events.append(event)
            if isinstance(event, DoneEvent):
                break
    return events


async def documents(server: LocalServer) -> dict[str, str]:
    url = f"{server.base_url}/api/documents"
    async with aiohttp.ClientSession() as session, session.get(url) as response:
        body = await response.json()
    return {d["doc_id"]: d["state"] for d in body["documents"]}


async def wait_for_server_indexer(server: LocalServer) -> None:
    """Until the server's indexer heartbeats in the embedded queue (what
    ``rag ingest`` checks before indexing in-process)."""
    assert server.process is not None
    consumer = f"serve-{server.process.pid}"  # cli/serve/server.py names its consumer so

    async def live() -> bool:
        conn = apsw.Connection(str(server.data_dir / QUEUE_DB), flags=apsw.SQLITE_OPEN_READONLY)
        try:
            found = conn.execute(
                "SELECT 1 FROM consumers WHERE consumer_id = ? AND seen_at >= ?",
                (consumer, time.time() - CONSUMER_FRESH_S),
            ).fetchall()
        finally:
            conn.close()
        return bool(found)

    await wait_until(live, f"the restarted server's indexer ({consumer})", timeout_s=120)


async def test_serve_ingest_ask_restart(
    tmp_path: Path, server_factory: Callable[..., LocalServer]
) -> None:
    server = server_factory()
    server.start()
    folder = write_docs(tmp_path)

    ingested = rag("ingest", "--data-dir", str(server.data_dir), str(folder))

    assert ingested.returncode == 0, ingested.stdout + ingested.stderr
    assert "3 document(s) indexed" in ingested.stdout
    assert await documents(server) == {name: "indexed" for name in DOCS}

    events = await ask_over_websocket(server.ws_url, "Who approves flights at Quillfeather?")

    kinds = [getattr(e, "event", None) for e in events]
    assert kinds[0] == "accepted"
    assert "token" in kinds
    assert kinds[-2:] == ["sources", "done"]
    tokens = [e for e in events if isinstance(e, TokenEvent)]
    assert [t.seq for t in tokens] == list(range(len(tokens)))
    assert "".join(t.text for t in tokens).strip()
    sources = next(e for e in events if isinstance(e, SourcesEvent))
    # cited sources come first, and which ones the tiny local model's sentences
    # back varies; the retrieval order is prompt number 1, 2, ...
    first_retrieved = min(sources.citations, key=lambda c: (c.number is None, c.number or 0))
    assert first_retrieved.doc_id == "policies/travel.md"

    # no --url: the server announced itself in its data folder, and ask uses it
    via_cli = rag(
        "ask", "--data-dir", str(server.data_dir), "How many days of annual leave are there?"
    )
    assert via_cli.returncode == 0, via_cli.stdout + via_cli.stderr
    assert f"asking the rag serve on this data folder ({server.ws_url})" in via_cli.stderr
    assert "Sources" in via_cli.stdout and "policies/leave.txt" in via_cli.stdout
    # the audit trail is a file of its own, named at start; the console has none of it
    console = server.log_path.read_text()
    trail_path = server.data_dir / "audit.jsonl"
    assert f"audit trail: {trail_path.resolve()}" in console
    assert '"audit"' not in console
    trail = [json.loads(line) for line in trail_path.read_text().splitlines()]
    assert "e2e-1" in {entry["request_id"] for entry in trail} and len(trail) == 2

    server.restart()
    # rag serve starts its indexer a moment after /health answers; an ingest
    # sent before its heartbeat is indexed by the CLI itself, and the log line
    # this test looks for lands in the CLI's output instead of this console.
    await wait_for_server_indexer(server)

    assert await documents(server) == {name: "indexed" for name in DOCS}
    listed = rag("docs", "--data-dir", str(server.data_dir))
    assert all(name in listed.stdout for name in DOCS)
    again = rag("ingest", "--data-dir", str(server.data_dir), str(folder))
    assert "3 unchanged file(s) skipped" in again.stdout

    # only the access list changes: re-labelled in place, and the console says so
    # (docs/ingest.md; the fields of the JSON logs were dropped on the console)
    relabel = rag("ingest", "--data-dir", str(server.data_dir), "--groups", "hr", str(folder))
    assert relabel.returncode == 0, relabel.stdout + relabel.stderr
    console = server.log_path.read_text()
    assert "message processed" in console and "outcome=relabelled" in console


async def test_ingest_without_a_server_indexes_in_process(tmp_path: Path) -> None:
    folder = write_docs(tmp_path)
    (folder / "notes.docx").write_bytes(b"PK\x03\x04")
    (folder / "empty.txt").write_text("   \n")
    data = tmp_path / "data"

    result = rag("ingest", "--data-dir", str(data), str(folder))

    # The empty file fails with its reason; the rest are indexed; the command says so.
    assert result.returncode == 1
    assert "3 document(s) indexed" in result.stdout
    # errors and warnings on stderr, naming the document; results on stdout
    assert "empty.txt: failed" in result.stderr
    assert "notes.docx: unsupported file type" in " ".join(result.stderr.split())
    assert "sending" not in result.stdout and "empty.txt" not in result.stdout
    listed = rag("docs", "--data-dir", str(data))
    assert "kitchen.html" in listed.stdout and "failed" in listed.stdout

    deleted = rag("delete", "--data-dir", str(data), "kitchen.html")
    assert deleted.returncode == 0, deleted.stdout + deleted.stderr
    assert "kitchen.html" not in rag("docs", "--data-dir", str(data)).stdout


def test_ask_with_no_documents_says_how_to_fix_it(tmp_path: Path) -> None:
    result = rag("ask", "--data-dir", str(tmp_path / "empty"), "anything?")
    assert result.returncode == 1
    assert "rag ingest --sample" in result.stderr
