"""What becomes of a queue message once the pipeline has an outcome: one pure
rule that both transports follow (the Lambda reports ``batchItemFailures`` and
shortens their visibility; the poller deletes, releases or extends).

- indexed, unchanged, relabelled, deleted, stale → ``ACK``: done, delete it;
- poison → ``DEAD_LETTER``: to the DLQ with its reason, then delete; with no
  DLQ, or if the send fails, visible again at once (the queue's redrive moves it);
- busy → ``BACK_OFF`` for ``busy_delay_s`` (short, tripling, capped at the lease);
- retry → ``BACK_OFF`` for ``retry_delay_s`` (5 s doubling, capped at the
  visibility timeout).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from services.indexer.pipeline import Outcome, Verdict
from shared.settings import Settings

RETRY_BASE_S = 5.0


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
