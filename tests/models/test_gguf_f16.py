"""The F16 copy of the packaged GGUF: made from the installed file (no
download), loaded by llama.cpp, preferred by the local adapter when present."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from shared.adapters import gguf_f16
from shared.adapters.llamacpp import (
    LlamaCppChatModel,
    ServerConfig,
    from_settings,
    packaged_model_path,
)
from shared.ports import GenerationParams, ModelFinish, ModelToken
from shared.settings import ModelSettings, Settings

PROMPT = "<|im_start|>user\nName a colour.<|im_end|>\n<|im_start|>assistant\n"


@pytest.fixture(scope="module")
def cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    folder = tmp_path_factory.mktemp("model-cache")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(gguf_f16.CACHE_ENV, str(folder))
        yield folder


@pytest.fixture(scope="module")
def f16(cache: Path) -> Path:
    return gguf_f16.ensure_f16_copy(packaged_model_path())


def test_the_copy_is_f16_in_the_cache_with_the_same_metadata(f16: Path, cache: Path) -> None:
    import gguf

    assert f16.parent == cache and f16.is_file()
    assert not list(cache.glob("*.partial"))
    source, copy = gguf.GGUFReader(packaged_model_path()), gguf.GGUFReader(f16)
    kinds = {t.tensor_type.name for t in copy.tensors}
    assert "Q4_1" not in kinds and "F16" in kinds
    assert [t.name for t in copy.tensors] == [t.name for t in source.tensors]
    template = "tokenizer.chat_template"
    assert copy.get_field(template).contents() == source.get_field(template).contents()  # type: ignore[union-attr]
    # A second call reuses the copy.
    assert gguf_f16.ensure_f16_copy(packaged_model_path()) == f16


async def test_llama_cpp_loads_and_runs_the_copy(f16: Path) -> None:
    model = LlamaCppChatModel(ServerConfig(f16, 1024, 1, 2), "chatml")
    events = [e async for e in model.stream(PROMPT, GenerationParams(max_new_tokens=4))]
    assert any(isinstance(e, ModelToken) and e.text.strip() for e in events)
    assert isinstance(events[-1], ModelFinish)


def test_the_adapter_prefers_the_copy_unless_told_not_to(f16: Path) -> None:
    chosen = from_settings(Settings()).model_path
    assert chosen == f16
    off = from_settings(Settings(model=ModelSettings(local_f16=False))).model_path
    assert off == packaged_model_path()


def test_without_a_copy_the_packaged_file_is_used(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(gguf_f16.CACHE_ENV, str(tmp_path / "empty"))
    assert from_settings(Settings()).model_path == packaged_model_path()
