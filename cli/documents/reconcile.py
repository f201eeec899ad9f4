"""``rag reconcile``: repair drift between the status records and the index.

Locally the indexer's own reconciler (``services.indexer.reconcile``) runs in
this process on the data folder, and re-queued documents are indexed before
the command returns. With ``--stack`` the deployed indexer function runs it
(the same event its schedule sends), inside the stack's network and with the
function's own permissions, and its report is printed here.
"""

from __future__ import annotations

import json
from typing import Any

from cli.documents.submit import Sent, wait_until_done
from cli.local_parts import LocalParts
from services.indexer.reconcile import Reconciler, ReconcileReport
from services.indexer.records import settle_seconds
from shared.adapters.aws.client import LazyAwsClient
from shared.errors import ConfigurationError, RagError
from shared.settings import Settings

FUNCTION_KEYS = ("indexer_function", "indexerFunction")


async def reconcile_local(settings: Settings, *, dry_run: bool) -> dict[str, Any]:
    parts = LocalParts(settings)
    sent: list[Sent] = []

    async def requeue(body: str) -> None:
        message_id = await parts.queue.send(body)
        sent.append(Sent(json.loads(body)["doc_id"], message_id))

    try:
        reconciler = Reconciler(
            index=parts.index,
            status=parts.status,
            requeue=requeue,
            settle_s=settle_seconds(settings),
            lease_s=settings.indexer.lease_s,
            requeue_limit=settings.indexer.reconcile_requeue_limit,
        )
        report: ReconcileReport = await reconciler.run(dry_run=dry_run)
        if sent and parts.embedded_queue:
            await wait_until_done(parts, sent, lambda _: None)
        return report.as_dict()
    finally:
        await parts.close()


async def reconcile_stack(settings: Settings, function: str, *, dry_run: bool) -> dict[str, Any]:
    """Invoke the deployed indexer with the reconcile event; its report back."""
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
