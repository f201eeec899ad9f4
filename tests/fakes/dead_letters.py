"""A DeadLetters fake that records what it was given; can play a DLQ that is down.

dead = RecordingDeadLetters(fail=True)   # every send raises QueueUnavailable
"""

from __future__ import annotations

from shared.errors import QueueUnavailable
from shared.ports import PoisonReason, QueueMessage


class RecordingDeadLetters:
    def __init__(self, fail: bool = False) -> None:
        self.sent: list[tuple[QueueMessage, PoisonReason]] = []
        self.fail = fail

    async def send(self, message: QueueMessage, why: PoisonReason) -> None:
        if self.fail:
            raise QueueUnavailable("DLQ down")
        self.sent.append((message, why))
