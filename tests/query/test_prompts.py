"""Prompt builders produce each family's exact chat format."""

from __future__ import annotations

import pytest

from services.query.answer.prompts import (
    NO_SOURCES,
    PromptSource,
    Turn,
    build_prompt,
    chatml_prompt,
    llama2_prompt,
    llama3_prompt,
    user_message,
)
from shared.errors import ConfigurationError


def test_llama2_single_turn_is_the_reference_format() -> None:
    prompt = llama2_prompt("Be brief.", [], "What is a llama?")
    assert prompt == "<s>[INST] <<SYS>>\nBe brief.\n<</SYS>>\n\nWhat is a llama? [/INST]"


def test_llama2_multi_turn_closes_each_answer_and_opens_a_new_inst() -> None:
    history = [Turn("Q1?", "A1."), Turn("Q2?", "A2.")]
    prompt = llama2_prompt("Sys.", history, "Q3?")
    assert prompt == (
        "<s>[INST] <<SYS>>\nSys.\n<</SYS>>\n\nQ1? [/INST] A1. </s>"
        "<s>[INST] Q2? [/INST] A2. </s>"
        "<s>[INST] Q3? [/INST]"
    )


def test_chatml_ends_with_an_open_assistant_turn() -> None:
    prompt = chatml_prompt("Sys.", [Turn("Q1?", "A1.")], "Q2?")
    assert prompt == (
        "<|im_start|>system\nSys.<|im_end|>\n"
        "<|im_start|>user\nQ1?<|im_end|>\n"
        "<|im_start|>assistant\nA1.<|im_end|>\n"
        "<|im_start|>user\nQ2?<|im_end|>\n"
        "<|im_start|>assistant\n"
    )


def test_llama3_uses_header_ids() -> None:
    prompt = llama3_prompt("Sys.", [], "Q?")
    assert prompt == (
        "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nSys.<|eot_id|>"
        "<|start_header_id|>user<|end_header_id|>\n\nQ?<|eot_id|>"
        "<|start_header_id|>assistant<|end_header_id|>\n\n"
    )


def test_user_message_numbers_sources_with_titles() -> None:
    sources = [PromptSource(1, "Llamas eat hay.", "Llama care"), PromptSource(2, " Text. ")]
    assert user_message("Food?", sources) == (
        "Sources:\n\n[1] Llama care\nLlamas eat hay.\n\n[2]\nText.\n\nQuestion: Food?"
    )


def test_user_message_says_when_nothing_was_found() -> None:
    assert user_message("Q?", []) == f"Sources:\n\n{NO_SOURCES}\n\nQuestion: Q?"


def test_build_prompt_dispatches_on_family_and_rejects_unknown_ones() -> None:
    assert build_prompt("llama2", "S", [], "Q") == llama2_prompt("S", [], "Q")
    assert build_prompt("chatml", "S", [], "Q") == chatml_prompt("S", [], "Q")
    with pytest.raises(ConfigurationError, match="unknown model family"):
        build_prompt("mistral", "S", [], "Q")
