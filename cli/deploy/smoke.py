"""``rag smoke --stack NAME``: one document through a deployed stack, end to end.

    send     a small Markdown document with a unique codeword, through the ingest queue
    indexed  wait until the stack's indexer recorded it (status table)
    ask      ask for the codeword over the WebSocket API with the stack's auth:
             tokens arrive, then sources that include the document, cited (or the
             codeword quoted in the answer), then done
    delete   queue its delete and wait until the indexer recorded it

Each step reports its time; the first failing step ends the run (the document
is still deleted). Exit code 0 when every step passed, 1 otherwise (for CI).
The search index may lag a write by seconds (AOSS), so the question is asked
again until the document is among the sources or the step times out.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import shutil
import subprocess
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

from cli.chat_socket import with_token
from cli.destination import Sent
from cli.destination.stack_queue import build_stack_queue, send_to_stack
from cli.destination.stack_wait import wait_for_stack
from cli.files import build_index_message
from cli.stack_outputs import QUEUE_KEYS, STATUS_TABLE_KEYS, WEBSOCKET_KEYS, pick
from shared.errors import ConfigurationError, RagError
from shared.factory import build_status_store
from shared.ingest import DeleteOperation
from shared.settings import Settings

SMOKE_PREFIX = "rag-smoke/"
RETRY_ASK_S = 5.0


@dataclass(frozen=True)
class SmokeTarget:
    websocket_url: str
    queue_url: str
    status_table: str

    @classmethod
    def from_outputs(cls, outputs: dict[str, Any]) -> SmokeTarget:
        found = {
            "websocket_url": pick(outputs, WEBSOCKET_KEYS),
            "ingest_queue_url": pick(outputs, QUEUE_KEYS),
            "status_table": pick(outputs, STATUS_TABLE_KEYS),
        }
        missing = [k for k, v in found.items() if not v]
        if missing:
            raise ConfigurationError(
                f"the stack has no {', '.join(missing)} output: has `pulumi up` finished?"
            )
        return cls(
            str(found["websocket_url"]), str(found["ingest_queue_url"]), str(found["status_table"])
        )


@dataclass(frozen=True)
class Step:
    name: str
    ok: bool
    seconds: float
    detail: str


@dataclass
class Answer:
    """What one ask brought back."""

    tokens: list[str] = field(default_factory=list)
    first_token_s: float | None = None
    cited_docs: list[str] = field(default_factory=list)
    source_docs: list[str] = field(default_factory=list)
    done: dict[str, Any] | None = None
    error: dict[str, Any] | None = None


@contextlib.asynccontextmanager
async def connect(url: str, token: str | None) -> AsyncIterator[aiohttp.ClientWebSocketResponse]:
    """One WebSocket for the run (no keep-alive needed: the smoke never idles)."""
    async with aiohttp.ClientSession() as session:
        try:
            ws = await session.ws_connect(with_token(url, token), heartbeat=30)
        except (aiohttp.ClientError, OSError) as exc:
            raise ConfigurationError(f"can't connect to {url}: {exc}") from exc
        try:
            yield ws
        finally:
            await ws.close()


def stack_token(stack: str, cwd: Path) -> str | None:
    """The stack's static token (``rag:staticToken``), decrypted by the Pulumi CLI;
    None when there is none (Cognito, no auth) or pulumi is not installed."""
    pulumi = shutil.which("pulumi")
    if pulumi is None:
        return None
    done = subprocess.run(
        [pulumi, "config", "get", "rag:staticToken", "--stack", stack],
        cwd=cwd,
        capture_output=True,
        text=True,
        check=False,
    )
    token = done.stdout.strip()
    return token if done.returncode == 0 and token else None


def smoke_document() -> tuple[str, str, str]:
    """(doc id, Markdown text, codeword): unique per run, so no run sees another's."""
    codeword = f"heliotrope-{uuid.uuid4().hex[:8]}"
    text = (
        "# Deployment smoke test\n\n"
        f"The smoke-test codeword of this deployment is {codeword}. "
        "It exists only to check that documents are indexed and cited.\n"
    )
    return f"{SMOKE_PREFIX}{uuid.uuid4().hex}.md", text, codeword


async def ask_once(ws: aiohttp.ClientWebSocketResponse, question: str, timeout_s: float) -> Answer:
    request_id = uuid.uuid4().hex
    await ws.send_json({"action": "ask", "question": question, "request_id": request_id})
    answer = Answer()
    start = time.perf_counter()
    async with asyncio.timeout(timeout_s):
        async for message in ws:
            if message.type != aiohttp.WSMsgType.TEXT:
                raise ConfigurationError("the WebSocket closed before the answer was done")
            event = json.loads(message.data)
            if event.get("request_id") not in (request_id, None):
                continue
            kind = event.get("event")
            if kind == "token":
                if answer.first_token_s is None:
                    answer.first_token_s = time.perf_counter() - start
                answer.tokens.append(str(event.get("text", "")))
            elif kind == "sources":
                citations = event.get("citations", [])
                answer.source_docs = [str(c.get("doc_id")) for c in citations]
                answer.cited_docs = [str(c.get("doc_id")) for c in citations if c.get("cited")]
            elif kind == "error":
                answer.error = event
            elif kind == "done":
                answer.done = event
                return answer
    return answer


def judge(answer: Answer, doc_id: str, codeword: str) -> tuple[bool, str]:
    """(found, detail): a streamed answer that used the document: it is among the
    sources, and either cited (the product's attribution) or quoted (the codeword)."""
    if answer.error is not None:
        return False, f"{answer.error.get('code')}: {answer.error.get('message')}"
    if answer.done is None:
        return False, "no done event"
    if not answer.tokens:
        return False, "no token streamed"
    if doc_id not in answer.source_docs:
        return False, f"the document is not among the sources ({answer.source_docs})"
    first = f"{answer.first_token_s:.1f} s" if answer.first_token_s is not None else "n/a"
    cited = doc_id in answer.cited_docs
    quoted = codeword in "".join(answer.tokens)
    if not (cited or quoted):
        return False, "the document was retrieved, but the answer neither cites nor quotes it"
    how = " and ".join(w for w, yes in (("cited", cited), ("quoted", quoted)) if yes)
    return True, f"{len(answer.tokens)} tokens (first after {first}); the document was {how}"


class Smoke:
    def __init__(
        self, settings: Settings, target: SmokeTarget, token: str | None, timeout_s: float
    ):
        self._settings = settings.model_copy(
            update={
                "queue": settings.queue.model_copy(
                    update={"backend": "sqs", "queue_url": target.queue_url}
                ),
                "status": settings.status.model_copy(
                    update={"backend": "dynamodb", "table": target.status_table}
                ),
            }
        )
        self._target = target
        self._token = token
        self._timeout_s = timeout_s
        self.poll_s = 2.0
        self.steps: list[Step] = []

    def _record(self, name: str, start: float, ok: bool, detail: str) -> bool:
        self.steps.append(Step(name, ok, time.perf_counter() - start, detail))
        return ok

    async def run(self) -> list[Step]:
        doc_id, text, codeword = smoke_document()
        sent = await self._send(doc_id, text)
        if sent is None:
            return self.steps
        try:
            if await self._wait("indexed", sent, "indexed"):
                await self._ask(doc_id, codeword)
        finally:
            await self._delete(doc_id)
        return self.steps

    async def _send(self, doc_id: str, text: str) -> Sent | None:
        start = time.perf_counter()
        try:
            message = build_index_message(doc_id, text.encode(), "text/markdown", title="Smoke")
            message_id = await send_to_stack(self._settings, message)
        except RagError as exc:
            self._record("send", start, False, str(exc))
            return None
        self._record("send", start, True, f"{doc_id} to {self._target.queue_url}")
        return Sent(doc_id, message_id)

    async def _wait(self, name: str, sent: Sent, want: str) -> bool:
        start = time.perf_counter()
        status = build_status_store(self._settings)
        try:
            (result,) = await wait_for_stack(
                status, [sent], lambda _: None, self._timeout_s, self.poll_s
            )
        finally:
            close = getattr(status, "close", None)
            if close is not None:
                await close()
        ok = result.state == want
        detail = f"{result.state}" + (f", {result.chunks} chunk(s)" if ok and result.chunks else "")
        return self._record(name, start, ok, detail if ok else f"{result.state}: {result.reason}")

    async def _ask(self, doc_id: str, codeword: str) -> bool:
        start = time.perf_counter()
        question = "What is the smoke-test codeword of this deployment?"
        deadline = start + self._timeout_s
        detail = "no answer"
        try:
            async with connect(self._target.websocket_url, self._token) as ws:
                while True:
                    left = max(1.0, deadline - time.perf_counter())
                    answer = await ask_once(ws, question, left)
                    found, detail = judge(answer, doc_id, codeword)
                    retry = answer.error is None or answer.error.get("code") == "no_documents"
                    if found or not retry or time.perf_counter() + RETRY_ASK_S > deadline:
                        break
                    await asyncio.sleep(RETRY_ASK_S)  # the index may lag the write
        except (TimeoutError, RagError, aiohttp.ClientError) as exc:
            return self._record("ask", start, False, f"{type(exc).__name__}: {exc}")
        return self._record("ask", start, found, detail)

    async def _delete(self, doc_id: str) -> None:
        start = time.perf_counter()
        queue = build_stack_queue(self._target.queue_url, self._settings)
        try:
            message_id = await queue.send(DeleteOperation(doc_id=doc_id).model_dump_json())
        except RagError as exc:
            self._record("delete", start, False, f"could not queue the delete: {exc}")
            return
        finally:
            await queue.close()
        await self._wait("deleted", Sent(doc_id, message_id), "deleted")


async def run_smoke(
    settings: Settings, target: SmokeTarget, token: str | None, timeout_s: float
) -> list[Step]:
    return await Smoke(settings, target, token, timeout_s).run()


def exit_code(steps: list[Step]) -> int:
    return 0 if steps and all(s.ok for s in steps) else 1
