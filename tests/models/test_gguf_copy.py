"""The Q8_0 (default) and F16 copies of the packaged GGUF: made from the
installed file (no download), loaded by llama.cpp, preferred by the local
adapter when present."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from shared.adapters.local_models import gguf_copy
from shared.adapters.local_models.llamacpp import (
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
        patch.setenv(gguf_copy.CACHE_ENV, str(folder))
        yield folder


@pytest.fixture(scope="module")
def q8(cache: Path) -> Path:
    return gguf_copy.ensure_copy(packaged_model_path(), "q8_0")


@pytest.fixture(scope="module")
def f16(cache: Path) -> Path:
    return gguf_copy.ensure_copy(packaged_model_path(), "f16")


@pytest.mark.parametrize(("weights", "kind"), [("q8_0", "Q8_0"), ("f16", "F16")])
def test_the_copy_is_converted_in_the_cache_with_the_same_metadata(
    weights: gguf_copy.Weights, kind: str, cache: Path
) -> None:
    import gguf

    copy_path = gguf_copy.ensure_copy(packaged_model_path(), weights)
    assert copy_path.parent == cache and copy_path.is_file()
    assert not list(cache.glob("*.partial"))
    source, copy = gguf.GGUFReader(packaged_model_path()), gguf.GGUFReader(copy_path)
    kinds = {t.tensor_type.name for t in copy.tensors}
    assert "Q4_1" not in kinds and kind in kinds
    assert [t.name for t in copy.tensors] == [t.name for t in source.tensors]
    template = "tokenizer.chat_template"
    assert copy.get_field(template).contents() == source.get_field(template).contents()  # type: ignore[union-attr]
    # A second call reuses the copy.
    assert gguf_copy.ensure_copy(packaged_model_path(), weights) == copy_path


def test_q8_0_holds_the_packaged_weights_closely(q8: Path) -> None:
    """Re-quantizing 16 levels a block onto 256 stays far inside the packaged
    file's own rounding: measured, every block within an eighth of its Q4_1 step."""
    import gguf
    import numpy as np

    source = {t.name: t for t in gguf.GGUFReader(packaged_model_path()).tensors}
    checked = 0
    for tensor in gguf.GGUFReader(q8).tensors:
        if tensor.tensor_type.name != "Q8_0":
            continue
        original = source[tensor.name]
        exact = gguf.quants.dequantize(original.data, original.tensor_type)
        copied = gguf.quants.dequantize(tensor.data, tensor.tensor_type)
        blocks = exact.reshape(-1, 32)
        spread = blocks.max(axis=1) - blocks.min(axis=1)
        error = np.abs(copied.reshape(-1, 32) - blocks).max(axis=1)
        # Q4_1's own step is spread/15; Q8_0 rounds to half a step of max|x|/127.
        assert np.all(error <= spread / 15 / 8 + 1e-6)
        checked += 1
    assert checked > 10


@pytest.mark.parametrize("weights", ["q8_0", "f16"])
async def test_llama_cpp_loads_and_runs_the_copy(weights: gguf_copy.Weights, cache: Path) -> None:
    path = gguf_copy.ensure_copy(packaged_model_path(), weights)
    model = LlamaCppChatModel(ServerConfig(path, 1024, 1, 2), "chatml")
    events = [e async for e in model.stream(PROMPT, GenerationParams(max_new_tokens=4))]
    assert any(isinstance(e, ModelToken) and e.text.strip() for e in events)
    assert isinstance(events[-1], ModelFinish)


def test_the_adapter_prefers_the_chosen_copy(q8: Path, f16: Path) -> None:
    assert from_settings(Settings()).model_path == q8
    chosen = from_settings(Settings(model=ModelSettings(local_weights="f16"))).model_path
    assert chosen == f16
    off = from_settings(Settings(model=ModelSettings(local_weights="packaged"))).model_path
    assert off == packaged_model_path()


def test_without_a_copy_the_packaged_file_is_used(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(gguf_copy.CACHE_ENV, str(tmp_path / "empty"))
    assert from_settings(Settings()).model_path == packaged_model_path()
