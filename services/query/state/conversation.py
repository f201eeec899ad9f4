"""Conversation history: the last turns per conversation id.

``ConversationStore`` (``ports.py``) is the seam; the in-memory store serves
the local server (and a warm Lambda container: see docs/query.md for the
limitation).
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from collections.abc import Callable, Sequence

from services.query.answer.prompts import Turn
from shared.access import Principal


class InMemoryConversationStore:
    """Bounded: the least recently used conversations are forgotten first."""

    def __init__(self, max_conversations: int = 10_000) -> None:
        self._max = max_conversations
        self._turns: OrderedDict[str, list[Turn]] = OrderedDict()

    async def history(self, conversation_id: str) -> list[Turn]:
        turns = self._turns.get(conversation_id)
        if turns is None:
            return []
        self._turns.move_to_end(conversation_id)
        return list(turns)

    async def append(self, conversation_id: str, turn: Turn, keep_turns: int) -> None:
        turns = self._turns.pop(conversation_id, [])
        turns.append(turn)
        self._turns[conversation_id] = turns[-keep_turns:] if keep_turns > 0 else []
        while len(self._turns) > self._max:
            self._turns.popitem(last=False)


def trim_history(
    turns: Sequence[Turn], max_turns: int, max_tokens: int, count: Callable[[str], int]
) -> list[Turn]:
    """The most recent turns that fit both limits (a turn is kept whole or not at all)."""
    kept: list[Turn] = []
    used = 0
    for turn in reversed(turns[-max_turns:] if max_turns > 0 else []):
        cost = count(turn.question) + count(turn.answer)
        if used + cost > max_tokens:
            break
        kept.append(turn)
        used += cost
    kept.reverse()
    return kept


def conversation_key(principal: Principal, conversation_id: str) -> str:
    """Where a conversation is stored: under its principal, so that a guessed or
    leaked conversation id never replays another caller's turns."""
    owner = hashlib.sha256(principal.id.encode()).hexdigest()[:16]
    return f"{owner}/{conversation_id}"
