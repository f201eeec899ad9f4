"""QueryDeps.close(): the one way every builder closes the query service's parts."""

from __future__ import annotations

from typing import Any, cast

import pytest

from services.query.answer.parts import QueryDeps, build_query_deps
from services.query.state.conversation import InMemoryConversationStore
from shared.ports import ChatModel, Embedder, VectorIndex
from shared.settings import Settings
from tests.fakes.chat_model import FakeChatModel
from tests.fakes.embedder import FakeEmbedder
from tests.fakes.vector_index import FakeVectorIndex


class Closable:
    """A part that records its closes; ``fails`` makes its close raise."""

    def __init__(self, log: list[str], name: str, fails: bool = False) -> None:
        self.log, self.name, self.fails = log, name, fails

    async def close(self) -> None:
        self.log.append(self.name)
        if self.fails:
            raise RuntimeError(f"{self.name} failed to close")


class SyncClosable(Closable):
    def close(self) -> None:  # type: ignore[override]  # some parts close synchronously
        self.log.append(self.name)


def deps(embedder: object, index: object, model: object, conversations: object) -> QueryDeps:
    return QueryDeps(
        embedder=cast(Embedder, embedder),
        index=cast(VectorIndex, index),
        model=cast(ChatModel, model),
        conversations=cast(Any, conversations),
    )


async def test_close_closes_every_part_that_can_be_closed() -> None:
    log: list[str] = []
    parts = deps(
        SyncClosable(log, "embedder"),
        Closable(log, "index"),
        Closable(log, "model"),
        InMemoryConversationStore(),  # holds nothing open: no close
    )
    await parts.close()
    assert sorted(log) == ["embedder", "index", "model"]


async def test_a_part_in_two_fields_is_closed_once() -> None:
    log: list[str] = []
    shared = Closable(log, "state")
    await deps(object(), Closable(log, "index"), object(), shared).close()
    await deps(object(), shared, object(), shared).close()
    assert log == ["index", "state", "state"]


async def test_one_failing_close_leaves_no_other_part_open() -> None:
    log: list[str] = []
    parts = deps(
        Closable(log, "embedder"),
        Closable(log, "index", fails=True),
        Closable(log, "model", fails=True),
        object(),
    )
    with pytest.raises(RuntimeError, match="model failed to close"):  # the first tried
        await parts.close()
    assert sorted(log) == ["embedder", "index", "model"]


async def test_built_parts_close_through_the_one_method(settings: Settings) -> None:
    index = FakeVectorIndex()
    built = build_query_deps(settings, embedder=FakeEmbedder(), index=index, model=FakeChatModel())
    await built.close()
    assert index.closed
