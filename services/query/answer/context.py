"""Fit history and sources into the model's context window. Pure.

Budget = context_tokens - max_new_tokens. The system prompt and the question
always go in; history (already trimmed to its own budget) is dropped oldest
first if even it does not fit; then sources are added in rank order while
they fit. A source that does not fit is skipped, a shorter one after it may.

With ``source_tokens`` (the prompt budget for small local models), each
source is first trimmed to that many tokens by query-focused extraction
(services/query/answer/focus.py); ``FittedPrompt.shown`` holds what the model saw,
``sources`` the whole chunks (citations and attribution use those).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from services.query.answer.focus import focus_sources
from services.query.answer.prompts import (
    PromptSource,
    Turn,
    build_prompt,
    format_source,
    user_message,
)
from shared.documents import SearchHit

# Separators and the source header are counted approximately; keep a margin.
_PER_SOURCE_SLACK = 4


@dataclass(frozen=True)
class FittedPrompt:
    prompt: str
    sources: list[SearchHit]  # sources[i] is [i + 1] in the prompt
    history: list[Turn]
    shown: list[str]  # shown[i]: the text of sources[i] as the prompt gives it


def prompt_source(n: int, hit: SearchHit, text: str | None = None) -> PromptSource:
    return PromptSource(n=n, text=hit.chunk.text if text is None else text, title=hit.chunk.title)


def fit_prompt(
    *,
    family: str,
    system: str,
    history: Sequence[Turn],
    question: str,
    hits: Sequence[SearchHit],
    context_tokens: int,
    max_new_tokens: int,
    count: Callable[[str], int],
    source_tokens: int | None = None,
    focus_on: str | None = None,
) -> FittedPrompt:
    """``focus_on``: the text sources are trimmed towards (default: ``question``;
    a follow-up passes its search text, as retrieval does)."""
    budget = context_tokens - max_new_tokens
    turns = list(history)
    base = count(build_prompt(family, system, turns, user_message(question, [])))
    while turns and base > budget:
        turns.pop(0)
        base = count(build_prompt(family, system, turns, user_message(question, [])))
    texts = [hit.chunk.text for hit in hits]
    if source_tokens:
        texts = focus_sources(focus_on or question, texts, source_tokens, count)
    chosen: list[SearchHit] = []
    shown: list[str] = []
    used = base
    for hit, text in zip(hits, texts, strict=True):
        cost = count(format_source(prompt_source(len(chosen) + 1, hit, text))) + _PER_SOURCE_SLACK
        if used + cost <= budget:
            chosen.append(hit)
            shown.append(text)
            used += cost
    pairs = enumerate(zip(chosen, shown, strict=True), 1)
    sources = [prompt_source(n, hit, text) for n, (hit, text) in pairs]
    prompt = build_prompt(family, system, turns, user_message(question, sources))
    return FittedPrompt(prompt=prompt, sources=chosen, history=turns, shown=shown)
