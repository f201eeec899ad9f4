"""The stack destination: a deployed stack's SQS queue (``--stack`` or the
``RAG_QUEUE__*`` settings). Its indexer consumes the queue and writes the status
table this machine reads, when one is set (``RAG_STATUS__TABLE``); its indexer
function, when named (``--stack``), reconciles inside the stack."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from typing import Any

from cli.destination import Backlog, DocumentResult, ProgressBoard, Sent, send_delete
from cli.local_parts import LocalParts
from shared.errors import ConfigurationError, RagError
from shared.ingest import IndexOperation
from shared.settings import Settings

FUNCTION_KEYS = ("indexer_function", "indexerFunction")


class StackDestination:
    def __init__(self, parts: LocalParts, indexer_function: str | None = None) -> None:
        self.parts = parts
        self.indexer_function = indexer_function

    @property
    def waits(self) -> bool:
        return bool(self.parts.settings.status.table)  # the deployed indexer's records

    def indexer_note(self) -> str | None:
        return None  # the stack's indexer, always

    async def send(self, message: IndexOperation) -> str:
        from cli.destination.stack_queue import send_to_stack

        return await send_to_stack(self.parts.settings, message)

    async def settled(self, doc_id: str) -> bool:
        return True  # the same bytes as last sent: the stack has them

    async def failed_before(self, doc_ids: Sequence[str]) -> int:
        return 0  # not known here

    def sent_lines(self, sent: int, deletes: int) -> list[str]:
        lines = [f"sent {sent} document(s) to {self.parts.settings.queue.queue_url}"]
        if deletes:
            lines.append(f"sent {deletes} delete(s) (files gone from the folder)")
        return lines

    async def wait(self, sent: Sequence[Sent], progress: ProgressBoard) -> list[DocumentResult]:
        from cli.destination.stack_wait import wait_for_stack

        task = progress.add_task("indexing", total=len(sent), detail="")
        return await wait_for_stack(self.parts.status, sent, lambda n: progress.advance(task, n))

    async def delete(self, doc_id: str) -> None:
        await send_delete(self, doc_id)  # the stack's indexer deletes it

    async def reclaim_orphans(self) -> int:
        return 0  # SQS makes a message visible again itself

    async def backlog(self, letters: int = 0) -> Backlog | None:
        return None  # the stack's queue: its CloudWatch metrics, not this machine

    async def reconcile(self, *, dry_run: bool) -> dict[str, Any]:
        if self.indexer_function:
            return await reconcile_stack(
                self.parts.settings, self.indexer_function, dry_run=dry_run
            )
        from cli.destination.reconciling import reconcile_here

        report, _ = await reconcile_here(self.parts, dry_run=dry_run)  # the stack indexes them
        return report

    async def index_until(self, stop: asyncio.Event, consumer_id: str) -> None:
        return None  # the stack's indexer consumes its queue


async def reconcile_stack(settings: Settings, function: str, *, dry_run: bool) -> dict[str, Any]:
    """Invoke the deployed indexer with the reconcile event (the same event its
    schedule sends: inside the stack's network, with the function's own
    permissions); its report back."""
    from shared.adapters.aws.client import LazyAwsClient

    client = LazyAwsClient.from_settings("lambda", settings, read_timeout_s=900)
    event = {"rag_task": "reconcile", "dry_run": dry_run}
    try:
        response = await (await client()).invoke(
            FunctionName=function, InvocationType="RequestResponse", Payload=json.dumps(event)
        )
        payload = json.loads(await response["Payload"].read() or b"{}")
    except RagError:
        raise
    except Exception as exc:
        raise ConfigurationError(
            f"could not invoke the indexer function {function!r}: {exc} (it needs "
            "lambda:InvokeFunction on it, and AWS credentials for the stack's account)"
        ) from exc
    finally:
        await client.close()
    if "FunctionError" in response or not isinstance(payload, dict) or "checked" not in payload:
        raise ConfigurationError(f"the indexer function failed to reconcile: {payload}")
    return payload
