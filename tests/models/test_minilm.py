"""The numpy all-MiniLM-L6-v2 against vectors computed by sentence-transformers."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from shared.adapters.local_models.minilm import (
    _TOKEN_BUDGET,
    DIMENSION,
    MODEL_ID,
    MiniLMEmbedder,
    from_settings,
    load_model,
    plan_passes,
)
from shared.settings import Settings

REFERENCE = Path(__file__).parent.parent / "data" / "minilm-reference.json"
MIN_COSINE = 0.999


@pytest.fixture(scope="module")
def reference() -> tuple[list[str], np.ndarray]:
    items = json.loads(REFERENCE.read_text())["items"]
    vectors = np.array([item["embedding"] for item in items], dtype=np.float32)
    return [item["text"] for item in items], vectors


def _cosines(got: np.ndarray, want: np.ndarray) -> np.ndarray:
    cosines: np.ndarray = (got * want).sum(1) / (
        np.linalg.norm(got, axis=1) * np.linalg.norm(want, axis=1)
    )
    return cosines


async def test_batched_vectors_match_sentence_transformers_on_every_text(
    reference: tuple[list[str], np.ndarray],
) -> None:
    texts, want = reference
    got = await MiniLMEmbedder(batch_size=4).embed_documents(texts)
    assert got.shape == (len(texts), DIMENSION) and got.dtype == np.float32
    cosines = _cosines(got, want)
    assert cosines.min() >= MIN_COSINE, dict(zip(texts, cosines.tolist(), strict=True))


async def test_query_vectors_match_one_by_one_with_one_blas_thread(
    reference: tuple[list[str], np.ndarray],
) -> None:
    texts, want = reference
    embedder = MiniLMEmbedder(threads=1)
    got = np.stack([await embedder.embed_query(text) for text in texts])
    assert got.shape == (len(texts), DIMENSION)
    assert _cosines(got, want).min() >= MIN_COSINE


async def test_vectors_are_unit_length_and_order_follows_input() -> None:
    texts = ["word " * 300, "short", "a medium sized sentence about lighthouses", ""]
    embedder = MiniLMEmbedder(batch_size=2)
    batched = await embedder.embed_documents(texts)
    singles = np.stack([await embedder.embed_query(text) for text in texts])
    np.testing.assert_allclose(np.linalg.norm(batched, axis=1), 1.0, rtol=1e-5)
    np.testing.assert_allclose(batched, singles, atol=1e-5)


async def test_long_text_is_truncated_to_256_tokens() -> None:
    model = load_model()
    long_text = " ".join(f"w{i}" for i in range(600))
    assert len(model.token_ids([long_text])[0]) == 256
    tail_changed = long_text + " completely different ending words"
    embedder = MiniLMEmbedder()
    a, b = await embedder.embed_documents([long_text, tail_changed])
    np.testing.assert_allclose(a, b, atol=1e-6)


async def test_empty_batch_and_identity() -> None:
    embedder = from_settings(Settings())
    assert embedder.model_id == MODEL_ID == "sentence-transformers/all-MiniLM-L6-v2"
    assert embedder.dimension == 384
    assert (await embedder.embed_documents([])).shape == (0, 384)


def test_model_is_loaded_once_per_process() -> None:
    assert load_model() is load_model()


def _check_cover(passes: list[tuple[int, int]], lengths: list[int], max_rows: int) -> None:
    assert [p[0] for p in passes] == [0] + [p[1] for p in passes[:-1]]  # contiguous
    assert passes[-1][1] == len(lengths)
    for start, end in passes:
        assert 0 < end - start <= max_rows
        assert (end - start) * lengths[end - 1] <= max(_TOKEN_BUDGET, lengths[end - 1])


def test_passes_split_where_lengths_jump_and_keep_alike_lengths_together() -> None:
    # The shape of a document batch: full chunks plus a few short last chunks.
    lengths = sorted([40, 45, 60] + [250] * 29)
    passes = plan_passes(lengths, 32)
    _check_cover(passes, lengths, 32)
    assert passes == [(0, 3), (3, 32)]  # short ones are not padded to 250
    alike = [100] * 70
    passes = plan_passes(alike, 32)
    _check_cover(passes, alike, 32)
    assert len(passes) == 3  # as few passes as the row limit allows


def test_passes_respect_the_token_budget_and_edge_cases() -> None:
    long = [256] * 40
    passes = plan_passes(long, 64)
    _check_cover(passes, long, 64)
    assert max(end - start for start, end in passes) == _TOKEN_BUDGET // 256
    assert plan_passes([], 32) == []
    assert plan_passes([7], 32) == [(0, 1)]


async def test_vectors_do_not_depend_on_how_a_batch_is_cut() -> None:
    texts = ["short one", "a " * 200 + "long one", "mid " * 40, "tiny"]
    embedder = MiniLMEmbedder(batch_size=32)
    together = await embedder.embed_documents(texts)
    singles = np.stack([(await embedder.embed_documents([t]))[0] for t in texts])
    np.testing.assert_allclose(together, singles, atol=1e-5)
