"""``rag reconcile``: repair drift between the status records and the index.

The destination does it: on the embedded queue the indexer's own reconciler
(``services.indexer.reconcile``) runs in this process on the data folder, and
re-queued documents are indexed before the command returns. With ``--stack``
the deployed indexer function runs it (the same event its schedule sends),
inside the stack's network and with the function's own permissions, and its
report is printed here.
"""

from __future__ import annotations

from typing import Any

from cli.destination import destination_for
from cli.local_parts import LocalParts
from shared.settings import Settings


async def reconcile(
    settings: Settings, indexer_function: str | None, *, dry_run: bool
) -> dict[str, Any]:
    parts = LocalParts(settings)
    try:
        return await destination_for(parts, indexer_function).reconcile(dry_run=dry_run)
    finally:
        await parts.close()
