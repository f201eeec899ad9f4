"""Chat prompt builders, one per model family. Pure functions, no I/O.

The current question carries the numbered sources; earlier turns are replayed
as plain question/answer pairs (their sources are not repeated, which keeps
follow-ups cheap in context tokens).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TypeVar

from shared.errors import ConfigurationError

T = TypeVar("T")


@dataclass(frozen=True)
class Turn:
    """One earlier exchange of a conversation.

    ``doc_ids``: every document the answer may draw on (its sources and those of
    the turns replayed to it), so a follow-up can drop a turn its caller may
    no longer read.
    """

    question: str
    answer: str
    doc_ids: tuple[str, ...] = ()


@dataclass(frozen=True)
class PromptSource:
    """A retrieved chunk as the model sees it: ``[n] title`` then the text."""

    n: int
    text: str
    title: str | None = None


NO_SOURCES = "No sources were found for this question."


def format_source(source: PromptSource) -> str:
    head = f"[{source.n}] {source.title}" if source.title else f"[{source.n}]"
    return f"{head}\n{source.text.strip()}"


def user_message(question: str, sources: Sequence[PromptSource]) -> str:
    """The current turn: the sources block, then the question."""
    block = "\n\n".join(format_source(s) for s in sources) if sources else NO_SOURCES
    return f"Sources:\n\n{block}\n\nQuestion: {question.strip()}"


def llama2_prompt(system: str, history: Sequence[Turn], user: str) -> str:
    """``<s>[INST] <<SYS>>\\n{system}\\n<</SYS>>\\n\\n{user} [/INST]``, multi-turn as
    ``{answer} </s><s>[INST] {next} [/INST]`` (Meta's reference chat format)."""
    questions = [turn.question for turn in history] + [user]
    answers: list[str | None] = [turn.answer for turn in history] + [None]
    parts = []
    for index, (question, answer) in enumerate(zip(questions, answers, strict=True)):
        text = f"<<SYS>>\n{system}\n<</SYS>>\n\n{question}" if index == 0 else question
        part = f"<s>[INST] {text.strip()} [/INST]"
        if answer is not None:
            part += f" {answer.strip()} </s>"
        parts.append(part)
    return "".join(parts)


def chatml_prompt(system: str, history: Sequence[Turn], user: str) -> str:
    """ChatML (SmolLM2, Qwen…): ``<|im_start|>role\\n…<|im_end|>\\n``, open assistant turn."""
    return "".join(_role_turns(_chatml, system, history, user)) + "<|im_start|>assistant\n"


def _chatml(role: str, text: str) -> str:
    return f"<|im_start|>{role}\n{text.strip()}<|im_end|>\n"


def llama3_prompt(system: str, history: Sequence[Turn], user: str) -> str:
    """Llama 3 instruct: header ids and ``<|eot_id|>``, open assistant header."""
    turns = "".join(_role_turns(_llama3, system, history, user))
    return "<|begin_of_text|>" + turns + "<|start_header_id|>assistant<|end_header_id|>\n\n"


def _llama3(role: str, text: str) -> str:
    return f"<|start_header_id|>{role}<|end_header_id|>\n\n{text.strip()}<|eot_id|>"


def _role_turns(
    turn: Callable[[str, str], T], system: str, history: Sequence[Turn], user: str
) -> list[T]:
    """The system turn, each past question and answer, then the new question,
    each written by ``turn(role, text)`` (the templates that mark roles)."""
    turns = [turn("system", system)]
    for past in history:
        turns += [turn("user", past.question), turn("assistant", past.answer)]
    turns.append(turn("user", user))
    return turns


def messages_prompt(system: str, history: Sequence[Turn], user: str) -> str:
    """For servers that apply the chat template themselves (OpenAI-compatible
    ``/chat/completions``): the turns as a JSON list of ``{"role", "content"}``,
    which the adapter sends as ``messages``."""
    messages = _role_turns(_message, system, history, user)
    return json.dumps(messages, ensure_ascii=False)


def _message(role: str, text: str) -> dict[str, str]:
    return {"role": role, "content": text.strip()}


PromptBuilder = Callable[[str, Sequence[Turn], str], str]

BUILDERS: dict[str, PromptBuilder] = {
    "llama2": llama2_prompt,
    "chatml": chatml_prompt,
    "llama3": llama3_prompt,
    "messages": messages_prompt,
}


def build_prompt(family: str, system: str, history: Sequence[Turn], user: str) -> str:
    try:
        builder = BUILDERS[family]
    except KeyError:
        known = ", ".join(sorted(BUILDERS))
        raise ConfigurationError(f"unknown model family {family!r}; known: {known}") from None
    return builder(system, history, user)
