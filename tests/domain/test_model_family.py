"""The Bedrock default is a current Meta Llama model and the prompt follows it (issue #26 item 7).

Bedrock's Llama 2 chat models are past end of life (Bedrock "Model lifecycle");
Llama 3 models read the Llama 3 template (Bedrock "Meta Llama models").
"""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from services.query.answer.prompts import build_prompt
from shared.adapters.aws.bedrock_chat import BedrockChatModel
from shared.model_ids import bedrock_family
from shared.settings import ModelSettings, Settings, load_settings

LLAMA3_START = "<|begin_of_text|><|start_header_id|>system<|end_header_id|>"


def test_default_bedrock_model_is_a_llama3_model_with_its_template(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # GIVEN only the Bedrock backend chosen
    monkeypatch.setenv("RAG_MODEL__BACKEND", "bedrock")
    settings = load_settings()
    # THEN the model is not an end-of-life Llama 2 id and the prompt is Llama 3's
    assert "llama2" not in settings.model.bedrock_model_id
    assert bedrock_family(settings.model.bedrock_model_id) == "llama3"
    model = BedrockChatModel(settings)
    assert model.family == "llama3"
    prompt = build_prompt(model.family, "Be brief.", [], "What do llamas eat?")
    assert prompt.startswith(LLAMA3_START)
    assert "[INST]" not in prompt


def test_llama2_stays_reachable_with_its_own_template(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RAG_MODEL__BACKEND", "bedrock")
    monkeypatch.setenv("RAG_MODEL__BEDROCK_MODEL_ID", "meta.llama2-13b-chat-v1")
    settings = load_settings()
    assert settings.model.family == "llama2"
    prompt = build_prompt(settings.model.family, "Be brief.", [], "q")
    assert prompt.startswith("<s>[INST] <<SYS>>")


@pytest.mark.parametrize(
    ("model_id", "family"),
    [
        ("us.meta.llama3-1-8b-instruct-v1:0", "llama3"),
        ("meta.llama3-8b-instruct-v1:0", "llama3"),
        ("eu.meta.llama3-2-3b-instruct-v1:0", "llama3"),
        ("meta.llama3-3-70b-instruct-v1:0", "llama3"),
        ("meta.llama2-70b-chat-v1", "llama2"),
    ],
)
def test_family_follows_the_bedrock_id(model_id: str, family: str) -> None:
    settings = ModelSettings(backend="bedrock", bedrock_model_id=model_id)
    assert settings.family == family


def test_a_family_contradicting_the_model_is_refused() -> None:
    with pytest.raises(ValidationError, match="does not match Bedrock model"):
        ModelSettings(
            backend="bedrock", bedrock_model_id="meta.llama2-13b-chat-v1", family="llama3"
        )


def test_llama4_is_refused_as_bedrock_does_not_stream_it() -> None:
    with pytest.raises(ValidationError, match="InvokeModelWithResponseStream"):
        ModelSettings(backend="bedrock", bedrock_model_id="us.meta.llama4-scout-17b-instruct-v1:0")


def test_unknown_bedrock_id_needs_a_named_family() -> None:
    with pytest.raises(ValidationError, match="name it"):
        ModelSettings(backend="bedrock", bedrock_model_id="arn:aws:bedrock:x:1:imported-model/m")
    named = ModelSettings(
        backend="bedrock", bedrock_model_id="arn:aws:bedrock:x:1:imported-model/m", family="llama3"
    )
    assert named.family == "llama3"


def test_other_backends_keep_their_family() -> None:
    assert Settings().model.family == "llama2"
    assert ModelSettings(backend="sagemaker", family="chatml").family == "chatml"
