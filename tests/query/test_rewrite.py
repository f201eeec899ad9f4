"""The chat model rewriting a question into search words (opt-in): the reply's
parsing, the bounds (error, timeout), and the words reaching the keyword search."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from services.query.answer.retrieval import Retriever
from services.query.answer.rewrite import (
    MAX_WORDS,
    model_rewriter,
    rewrite_prompt,
    rewrite_terms,
)
from shared.errors import ModelError
from shared.ports import GenerationParams, ModelEvent, ModelToken
from shared.settings import QuerySettings
from tests.fakes.chat_model import FakeChatModel, Script
from tests.fakes.embedder import FakeEmbedder
from tests.query.test_expansion import ALL, GAP, RecordingIndex, write


def test_the_reply_s_first_line_gives_new_words_at_the_weight() -> None:
    reply = "\n string_agg, GROUP BY, array_to_string()\nThese functions join rows."
    terms = rewrite_terms(reply, "join names per group", 0.5)
    assert terms == [("string_agg", 0.5), ("by", 0.5), ("array_to_string", 0.5)]


def test_a_rambling_reply_adds_at_most_max_words() -> None:
    reply = " ".join(f"word{i}" for i in range(40))
    assert len(rewrite_terms(reply, "q", 0.5)) == MAX_WORDS
    assert rewrite_terms("   \n  ", "q", 0.5) == []


def test_the_prompt_uses_the_model_s_template() -> None:
    prompt = rewrite_prompt("chatml", "show 0 instead of blank cells")
    assert prompt.startswith("<|im_start|>system") and "show 0 instead of blank cells" in prompt


async def test_the_rewriter_asks_greedily_and_briefly() -> None:
    model = FakeChatModel(Script(tokens=["coalesce", " nullif"]))
    rewrite = model_rewriter(model, timeout_s=5.0, weight=0.4)
    assert await rewrite("show 0 instead of blank cells") == [("coalesce", 0.4), ("nullif", 0.4)]
    params = model.streams[0].params
    assert params.temperature == 0.0 and params.max_new_tokens <= 32


async def test_a_failing_model_leaves_the_question_alone() -> None:
    model = FakeChatModel(Script(tokens=["x"], error=ModelError("boom")))
    assert await model_rewriter(model, timeout_s=5.0, weight=0.4)("q") == []


async def test_a_slow_model_is_given_up_on_and_closed() -> None:
    model = FakeChatModel(Script(tokens=["a"] * 20, delay_s=0.2))
    loop = asyncio.get_running_loop()
    started = loop.time()
    assert await model_rewriter(model, timeout_s=0.1, weight=0.4)("q") == []
    assert loop.time() - started < 2.0  # bounded: not the 4 s of the whole reply
    await asyncio.sleep(0.1)  # the given-up generation winds down in the background
    assert model.streams[0].cancelled


@pytest.fixture
async def store(tmp_path: Path) -> RecordingIndex:
    index = RecordingIndex(tmp_path / "index.db")
    await write(index, FakeEmbedder(), GAP)
    return index


async def test_the_rewrite_words_join_the_keyword_search(store: RecordingIndex) -> None:
    model = FakeChatModel(Script(tokens=["string_agg"]))
    rewriter = model_rewriter(model, timeout_s=5.0, weight=0.5)
    retriever = Retriever(FakeEmbedder(), store, QuerySettings(), rewriter)
    try:
        question = "collapse names from many rows into one comma separated string per group"
        await retriever.retrieve(question, 5, {}, "hybrid", ALL)
        assert store.expansions == [(("string_agg", 0.5),)]
        assert store.rankings[0].index("string_agg#0") == 1
        # k-NN mode searches no keywords and asks no model.
        await retriever.retrieve(question, 5, {}, "knn", ALL)
        assert len(model.streams) == 1
    finally:
        await store.close()


class SlowToStop:
    """A model busy with its prompt: cancelling it takes a second."""

    family = "chatml"

    def count_tokens(self, text: str) -> int:
        return len(text.split())

    async def stream(self, prompt: str, params: GenerationParams) -> AsyncIterator[ModelEvent]:
        try:
            await asyncio.sleep(5)
        except asyncio.CancelledError:
            await asyncio.shield(asyncio.sleep(1.0))
            raise
        yield ModelToken("late")


async def test_the_search_does_not_wait_for_the_model_to_stop() -> None:
    rewrite = model_rewriter(SlowToStop(), timeout_s=0.1, weight=0.4)  # type: ignore[arg-type]
    loop = asyncio.get_running_loop()
    started = loop.time()
    assert await rewrite("q") == []
    assert loop.time() - started < 0.8  # the timeout, not timeout + the model's 1 s wind-down
    await asyncio.sleep(1.2)  # let it wind down before the loop closes
