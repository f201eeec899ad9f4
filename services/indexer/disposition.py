"""What a queue message came to in the pipeline (its :class:`Outcome`, logged
the same way everywhere) and what becomes of it then: one pure rule that both
transports follow (the Lambda reports ``batchItemFailures`` and
shortens their visibility; the poller deletes, releases or extends).

- indexed, unchanged, relabelled, deleted, stale → ``ACK``: done, delete it;
- poison → ``DEAD_LETTER``: to the DLQ with its reason, then delete; with no
  DLQ, or if the send fails, visible again at once (the queue's redrive moves it);
- busy → ``BACK_OFF`` for ``busy_delay_s`` (short, tripling, capped at the lease);
- retry → ``BACK_OFF`` for ``retry_delay_s`` (5 s doubling, capped at the
  visibility timeout).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from shared.errors import RagError
from shared.settings import Settings

log = logging.getLogger("services.indexer")

RETRY_BASE_S = 5.0


class Verdict(StrEnum):
    INDEXED = "indexed"
    UNCHANGED = "unchanged"  # this generation was already stored whole
    RELABELLED = "relabelled"  # same content, new access list: chunks re-labelled in place
    DELETED = "deleted"
    STALE = "stale"  # older than the version applied: acknowledged, nothing changed
    POISON = "poison"  # never retry: to the DLQ with the reason
    RETRY = "retry"  # transient: let the queue redeliver
    BUSY = "busy"  # another worker holds the document: back in the queue, shortly


@dataclass
class Outcome:
    verdict: Verdict
    message_id: str
    doc_id: str | None = None
    generation: str | None = None
    chunk_count: int = 0
    removed: int = 0
    doc_version: int | None = None
    stored_version: int | None = None  # the newer version that made this one stale
    error: RagError | None = None
    timings_ms: dict[str, float] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.verdict in {
            Verdict.INDEXED,
            Verdict.UNCHANGED,
            Verdict.RELABELLED,
            Verdict.DELETED,
            Verdict.STALE,
        }

    def log_fields(self) -> dict[str, Any]:
        fields: dict[str, Any] = {
            "outcome": self.verdict.value,
            "message_id": self.message_id,
            "doc_id": self.doc_id,
            "generation": self.generation,
            "chunks": self.chunk_count,
            "removed": self.removed,
            "doc_version": self.doc_version,
            "timings_ms": {k: round(v, 1) for k, v in self.timings_ms.items()},
        }
        if self.stored_version is not None:
            fields["stored_version"] = self.stored_version
        if self.error is not None:
            fields["error_code"] = self.error.code
            fields["reason"] = str(self.error)
        return fields

    def log(self) -> None:
        """One log line per message, at the level its verdict deserves."""
        fields = {"fields": self.log_fields()}
        if self.verdict is Verdict.STALE:
            log.warning("stale message acknowledged", extra=fields)
        elif self.verdict is Verdict.BUSY:
            log.info("document busy: message returned", extra=fields)
        elif self.ok:
            log.info("message processed", extra=fields)
        elif self.verdict is Verdict.POISON:
            log.error("poison message rejected", extra=fields)
        else:
            log.warning("message will be retried", extra=fields)


class Action(StrEnum):
    ACK = "ack"
    DEAD_LETTER = "dead_letter"
    BACK_OFF = "back_off"


@dataclass(frozen=True)
class Disposition:
    action: Action
    # Seconds until the message is visible again (BACK_OFF; DEAD_LETTER when
    # the dead letter could not be sent).
    delay_s: int = 0


def retry_delay_s(receive_count: int, base_s: float, cap_s: int) -> int:
    """Back-off before a transiently failed message is seen again."""
    return int(min(cap_s, base_s * 2 ** max(0, receive_count - 1)))


def busy_delay_s(receive_count: int, base_s: float, lease_s: float) -> int:
    """Back-off for a message whose document another worker holds.

    Short at first (the holder usually finishes within seconds), tripling so
    that within four receives the delays outlast a whole lease (a holder that
    died): the message must not use up the queue's receive limit and be
    redriven while the document is merely busy.
    """
    return max(1, int(min(lease_s, base_s * 3 ** max(0, receive_count - 1))))


def disposition(
    outcome: Outcome,
    receive_count: int,
    settings: Settings,
    retry_base_s: float = RETRY_BASE_S,
) -> Disposition:
    if outcome.ok:
        return Disposition(Action.ACK)
    if outcome.verdict is Verdict.POISON:
        return Disposition(Action.DEAD_LETTER, 0)
    indexer = settings.indexer
    if outcome.verdict is Verdict.BUSY:
        delay = busy_delay_s(receive_count, indexer.busy_retry_s, indexer.lease_s)
        return Disposition(Action.BACK_OFF, delay)
    cap = settings.queue.visibility_timeout_s
    return Disposition(Action.BACK_OFF, retry_delay_s(receive_count, retry_base_s, cap))
