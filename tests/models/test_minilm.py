"""The numpy all-MiniLM-L6-v2 against vectors computed by sentence-transformers."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from shared.adapters.minilm import DIMENSION, MODEL_ID, MiniLMEmbedder, from_settings, load_model
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
