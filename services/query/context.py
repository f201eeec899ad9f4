"""Fit history and sources into the model's context window. Pure.

Budget = context_tokens - max_new_tokens. The system prompt and the question
always go in; history (already trimmed to its own budget) is dropped oldest
first if even it does not fit; then sources are added in rank order while
they fit. A source that does not fit is skipped, a shorter one after it may.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from services.query.prompts import PromptSource, Turn, build_prompt, format_source, user_message
from shared.documents import SearchHit

# Separators and the source header are counted approximately; keep a margin.
_PER_SOURCE_SLACK = 4


@dataclass(frozen=True)
class FittedPrompt:
    prompt: str
    sources: list[SearchHit]  # sources[i] is [i + 1] in the prompt
    history: list[Turn]


def prompt_source(n: int, hit: SearchHit) -> PromptSource:
    return PromptSource(n=n, text=hit.chunk.text, title=hit.chunk.title)


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
) -> FittedPrompt:
    budget = context_tokens - max_new_tokens
    turns = list(history)
    base = count(build_prompt(family, system, turns, user_message(question, [])))
    while turns and base > budget:
        turns.pop(0)
        base = count(build_prompt(family, system, turns, user_message(question, [])))
    chosen: list[SearchHit] = []
    used = base
    for hit in hits:
        cost = count(format_source(prompt_source(len(chosen) + 1, hit))) + _PER_SOURCE_SLACK
        if used + cost <= budget:
            chosen.append(hit)
            used += cost
    sources = [prompt_source(n, hit) for n, hit in enumerate(chosen, 1)]
    prompt = build_prompt(family, system, turns, user_message(question, sources))
    return FittedPrompt(prompt=prompt, sources=chosen, history=turns)
