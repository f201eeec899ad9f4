"""Back-off for transiently failed messages: seen again after a growing delay.

Without it a failed message stays invisible for the queue's whole visibility
timeout (6x the function timeout: 12 minutes by default) before its retry;
a dependency that recovers in seconds would still wait that long. With
``ChangeMessageVisibility`` the delay grows with the receive count (5 s, 10 s,
20 s, ...), capped at the visibility timeout, so a brief outage costs seconds
and a long one does not burn the receive count towards the DLQ in a minute.
Both transports use it: the Lambda handler (for the messages it reports as
``batchItemFailures``) and the poller; the delays are ``disposition``'s.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

from shared.errors import RagError
from shared.ports import Queue, QueueMessage

log = logging.getLogger("services.indexer")


async def back_off(queue: Queue, delays: Iterable[tuple[QueueMessage, int]]) -> None:
    """Make each message visible again after its delay. A failure here is only
    logged: the message then comes back after the full visibility timeout."""
    for message, delay in delays:
        try:
            await queue.extend(message, delay)
        except RagError as exc:
            log.warning(
                "could not shorten a failed message's visibility",
                extra={"fields": {"message_id": message.message_id, "error": str(exc)}},
            )
