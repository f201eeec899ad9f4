"""The configured chat model rewriting a question into search words (opt-in,
``RAG_QUERY__REWRITE_QUESTION``): for vocabulary gaps that the corpus's own
words cannot close ("show 0 instead of blank cells" for ``COALESCE``) a model
that knows the field may name the term. Its words join the keyword search
as an expansion (weight ``rewrite_weight`` each, the question's words 1), so
a wrong guess costs a little rank, never the question's own matches.

Bounded: at most MAX_TOKENS new tokens and ``rewrite_timeout_s``
seconds; a model error or timeout searches with the question alone (logged),
since the answer must not fail because an optional step did.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Awaitable, Callable

from services.query.answer.prompts import build_prompt
from shared.ports import ChatModel, GenerationParams, ModelToken

log = logging.getLogger(__name__)

Rewriter = Callable[[str], Awaitable[list[tuple[str, float]]]]

SYSTEM = (
    "You turn a user's question about software documentation into search keywords. "
    "Reply with one line: the technical terms, command, function or option names "
    "that the documentation page answering it would use. No sentences."
)
_WORD = re.compile(r"[A-Za-z_][\w.\-]*[\w]|[A-Za-z_]")
MAX_WORDS = 12
MAX_TOKENS = 32
# Rewrites given up on, kept referenced until their generation has stopped.
_winding_down: set[asyncio.Future[str]] = set()


def rewrite_prompt(family: str, question: str) -> str:
    return build_prompt(family, SYSTEM, [], f"Question: {question}\nKeywords:")


def rewrite_terms(reply: str, question: str, weight: float) -> list[tuple[str, float]]:
    """The reply's first line as expansion words not in the question, each at
    ``weight``; at most MAX_WORDS (a rambling model adds no more)."""
    lines = [line for line in reply.strip().splitlines() if line.strip()]
    if not lines or weight <= 0:
        return []
    asked = {w.lower() for w in re.findall(r"\w+", question)}
    words: dict[str, float] = {}
    for word in _WORD.findall(lines[0]):
        key = word.lower().strip(".-")
        if len(key) >= 2 and key not in asked:
            words.setdefault(key, weight)
    return list(words.items())[:MAX_WORDS]


async def ask_model(model: ChatModel, prompt: str, params: GenerationParams) -> str:
    parts: list[str] = []
    stream = model.stream(prompt, params)
    try:
        async for event in stream:
            if isinstance(event, ModelToken):
                parts.append(event.text)
    finally:
        await stream.aclose()  # type: ignore[attr-defined]  # an async generator's
    return "".join(parts)


def model_rewriter(model: ChatModel, *, timeout_s: float, weight: float) -> Rewriter:
    """A Rewriter asking ``model`` greedily; [] on its error or timeout."""
    params = GenerationParams(max_new_tokens=MAX_TOKENS, temperature=0.0)

    async def rewrite(question: str) -> list[tuple[str, float]]:
        prompt = rewrite_prompt(model.family, question)
        task = asyncio.ensure_future(ask_model(model, prompt, params))
        # Not wait_for: it would also wait for the model to stop, which a local
        # model busy with the prompt may take seconds to do. The search goes on;
        # the cancelled generation winds down on its own.
        done, _ = await asyncio.wait({task}, timeout=timeout_s)
        if not done:
            task.cancel()
            _winding_down.add(task)
            task.add_done_callback(_winding_down.discard)
            log.warning("question rewrite skipped: no reply within %.1f s", timeout_s)
            return []
        try:
            reply = task.result()
        except Exception as exc:  # an optional step: search without it
            log.warning("question rewrite skipped: %s: %s", type(exc).__name__, exc)
            return []
        return rewrite_terms(reply, question, weight)

    return rewrite
