"""The query service's parts, and the one way to build them.

Every caller (local server, Lambda, ``rag`` CLI, evaluation, tests, benches)
builds its parts here, as the indexer's callers go through ``build_pipeline``.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass

from services.query.state.conversation import InMemoryConversationStore
from services.query.state.ports import ConversationStore
from shared.factory import build_chat_model, build_embedder, build_vector_index
from shared.ports import ChatModel, Embedder, VectorIndex
from shared.settings import Settings


@dataclass(frozen=True)
class QueryDeps:
    embedder: Embedder
    index: VectorIndex
    model: ChatModel
    conversations: ConversationStore

    async def close(self) -> None:
        """Close every part that holds something open (clients, files, threads):
        the one way to close the query service's parts, whoever built them.

        Each object is closed once even when it fills two fields (the Lambda's
        DynamoDB state is also its registry, closed again there: adapters'
        closes are idempotent); one failing close does not keep the others
        open, and the first failure is raised after all were tried."""
        failures: list[BaseException] = []
        seen: set[int] = set()
        for part in (self.model, self.index, self.embedder, self.conversations):
            closer = getattr(part, "close", None)
            if closer is None or id(part) in seen:
                continue
            seen.add(id(part))
            try:
                result = closer()
                if inspect.isawaitable(result):
                    await result
            except Exception as exc:
                failures.append(exc)
        if failures:
            raise failures[0]


def build_query_deps(
    settings: Settings,
    *,
    embedder: Embedder | None = None,
    index: VectorIndex | None = None,
    model: ChatModel | None = None,
    conversations: ConversationStore | None = None,
) -> QueryDeps:
    """The query service's parts: the ones given, the rest built from settings.

    Every caller (local server, Lambda, ``rag`` CLI, evaluation, tests) goes
    through here, as the indexer's go through ``build_pipeline``. Conversations
    default to memory (one process); the Lambda passes its DynamoDB store.
    """
    return QueryDeps(
        embedder=embedder if embedder is not None else build_embedder(settings),
        index=index if index is not None else build_vector_index(settings),
        model=model if model is not None else build_chat_model(settings),
        conversations=conversations if conversations is not None else InMemoryConversationStore(),
    )
