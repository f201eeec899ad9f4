"""A faster-to-run copy of the packaged Q4_1 GGUF, made once at install time.

Why: on a CPU, llama.cpp spends most of a RAG answer's first-token time on
the prompt (prefill), and the 4-bit blocks of the packaged file are slower
to multiply than 8-bit or 16-bit ones. Measured by ``python -m
bench.prefill`` on the quiet 2-core machine (docs/benchmarks.md, ~1135-token
prompt, 2 prompt threads):

    weights          prompt    vs Q4_1   decode tokens/s   size
    Q4_1 (packaged)  6470 ms   1.00x     25.4              98 MB
    F16              5947 ms   1.09x     16.5              270 MB
    Q8_0             4437 ms   1.46x     23.2              145 MB

so the default copy is Q8_0 (``DEFAULT_WEIGHTS``). Both are made from the
packaged Q4_1 tensors: F16 holds them exactly; Q8_0 re-quantizes them on the
same 32-value blocks with 256 levels instead of 16, an error within an
eighth of the packaged file's own rounding (tests/models/test_gguf_copy.py
checks every tensor).

``python -m shared.adapters.local_models.make_copy [q8_0|f16]`` (``scripts/bootstrap`` runs
it for the default) writes the copy into the user's cache folder, outside the
work tree: ``$RAG_MODEL_CACHE`` or ``~/.cache/rag-models/``. The local adapter
uses the copy when it is there and falls back to the packaged file
otherwise, so a missing copy costs speed, never correctness. Nothing is
downloaded: the tensors are converted from the installed package's file with
the ``gguf`` library (numpy).
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    import numpy as np
    from gguf import GGMLQuantizationType, ReaderTensor

CACHE_ENV = "RAG_MODEL_CACHE"
Weights = Literal["q8_0", "f16"]
DEFAULT_WEIGHTS: Weights = "q8_0"
# Only quantized weight matrices are rewritten; norms and F32 tensors are kept.
_KEEP = {"F32", "F16", "BF16"}
_Q8_BLOCK = 32


def cache_dir() -> Path:
    configured = os.environ.get(CACHE_ENV)
    return Path(configured) if configured else Path.home() / ".cache" / "rag-models"


def copy_path_for(source: Path, weights: Weights) -> Path:
    """Where the ``weights`` copy of ``source`` lives; the name carries a
    digest of the source's first MiB and its size, so a new model version
    gets a new copy and every checkout shares the same one."""
    with source.open("rb") as handle:
        digest = hashlib.sha256(handle.read(1 << 20)).hexdigest()[:12]
    stem = source.name.removesuffix(".gguf").replace(".Q4_1", "")
    return cache_dir() / f"{stem}.{weights.upper()}-{digest}-{source.stat().st_size}.gguf"


def convert(source: Path, target: Path, weights: Weights) -> Path:
    """Write ``target``: every quantized tensor of ``source`` converted to
    ``weights``, all metadata copied. Written to a temporary name, then
    renamed, so a half-written file is never used."""
    import gguf

    reader = gguf.GGUFReader(source)
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_suffix(".partial")
    arch = reader.get_field(gguf.Keys.General.ARCHITECTURE)
    if arch is None:
        raise ValueError(f"{source} has no general.architecture")
    writer = gguf.GGUFWriter(partial, arch=str(arch.contents()), endianess=reader.endianess)
    for field in reader.fields.values():
        if field.name in (gguf.Keys.General.ARCHITECTURE, gguf.Keys.General.FILE_TYPE):
            continue
        if field.name.startswith("GGUF."):
            continue
        value_type = field.types[0]
        sub_type = field.types[-1] if value_type == gguf.GGUFValueType.ARRAY else None
        writer.add_key_value(field.name, field.contents(), value_type, sub_type=sub_type)
    file_type = (
        gguf.LlamaFileType.MOSTLY_Q8_0 if weights == "q8_0" else gguf.LlamaFileType.MOSTLY_F16
    )
    writer.add_key_value(gguf.Keys.General.FILE_TYPE, int(file_type), gguf.GGUFValueType.UINT32)
    try:
        for tensor in reader.tensors:
            data, kind = _converted(tensor, weights)
            writer.add_tensor(tensor.name, data, raw_dtype=kind)
        writer.write_header_to_file()
        writer.write_kv_data_to_file()
        writer.write_tensors_to_file()
    except BaseException:
        writer.close()
        partial.unlink(missing_ok=True)
        raise
    writer.close()
    partial.replace(target)
    return target


def _converted(tensor: ReaderTensor, weights: Weights) -> tuple[np.ndarray, GGMLQuantizationType]:
    """(data, raw_dtype) of one tensor in the copy."""
    import gguf
    import numpy as np

    if tensor.tensor_type.name in _KEEP:
        return np.asarray(tensor.data), tensor.tensor_type
    values = gguf.quants.dequantize(tensor.data, tensor.tensor_type)
    # F16 holds the values exactly: asked for, or rows that Q8_0's blocks cannot tile.
    if weights == "f16" or values.shape[-1] % _Q8_BLOCK:
        return values.astype(np.float16), gguf.GGMLQuantizationType.F16
    q8 = gguf.GGMLQuantizationType.Q8_0
    return gguf.quants.quantize(values.astype(np.float32), q8), q8


def ensure_copy(source: Path, weights: Weights = DEFAULT_WEIGHTS) -> Path:
    target = copy_path_for(source, weights)
    return target if target.is_file() else convert(source, target, weights)


def existing_copy(source: Path, weights: Weights = DEFAULT_WEIGHTS) -> Path | None:
    target = copy_path_for(source, weights)
    return target if target.is_file() else None
