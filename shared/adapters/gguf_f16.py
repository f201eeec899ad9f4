"""An F16 copy of the packaged Q4_1 GGUF, made once at install time.

Why: on a CPU, llama.cpp processes a prompt (prefill) faster from F16 weights
than from 4-bit blocks it must unpack for every matrix product; for a 135M
model the copy is ~270 MB, small enough to keep. Measured by
``python -m bench.prefill`` (docs/benchmarks.md). Decoding speed is about the
same either way.

``python -m shared.adapters.gguf_f16`` (``scripts/bootstrap`` runs it) writes
the copy into the user's cache folder, outside the work tree:
``$RAG_MODEL_CACHE`` or ``~/.cache/rag-models/``. The local adapter uses the
copy when it is there and falls back to the packaged file otherwise, so a
missing copy costs speed, never correctness. Nothing is downloaded: the
tensors are dequantized from the installed package's file with the ``gguf``
library (numpy).
"""

from __future__ import annotations

import hashlib
import os
import sys
from pathlib import Path

CACHE_ENV = "RAG_MODEL_CACHE"
# Only quantized weight matrices are rewritten; norms and F32 tensors are kept.
_KEEP = {"F32", "F16", "BF16"}


def cache_dir() -> Path:
    configured = os.environ.get(CACHE_ENV)
    return Path(configured) if configured else Path.home() / ".cache" / "rag-models"


def f16_path_for(source: Path) -> Path:
    """Where the F16 copy of ``source`` lives; the name carries a digest of the
    source's first MB and its size, so a new package version makes a new copy
    while every checkout of the same version shares one."""
    with source.open("rb") as handle:
        digest = hashlib.sha256(handle.read(1 << 20)).hexdigest()[:12]
    stem = source.name.removesuffix(".gguf").replace(".Q4_1", "")
    return cache_dir() / f"{stem}.F16-{digest}-{source.stat().st_size}.gguf"


def convert_to_f16(source: Path, target: Path) -> Path:
    """Write ``target``: every quantized tensor of ``source`` dequantized to F16,
    all metadata copied. Written to a temporary name, then renamed, so a
    half-written file is never used."""
    import gguf
    import numpy as np

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
    writer.add_key_value(
        gguf.Keys.General.FILE_TYPE, int(gguf.LlamaFileType.MOSTLY_F16), gguf.GGUFValueType.UINT32
    )
    tensors = []
    for tensor in reader.tensors:
        if tensor.tensor_type.name in _KEEP:
            data = np.asarray(tensor.data)
            kind = tensor.tensor_type
        else:
            data = gguf.quants.dequantize(tensor.data, tensor.tensor_type).astype(np.float16)
            kind = gguf.GGMLQuantizationType.F16
        tensors.append((tensor.name, data, kind))
    for name, data, kind in tensors:
        writer.add_tensor(name, data, raw_dtype=kind)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    partial.replace(target)
    return target


def ensure_f16_copy(source: Path) -> Path:
    target = f16_path_for(source)
    return target if target.is_file() else convert_to_f16(source, target)


def existing_f16_copy(source: Path) -> Path | None:
    target = f16_path_for(source)
    return target if target.is_file() else None


def main() -> None:
    from shared.adapters.llamacpp import packaged_model_path

    source = Path(sys.argv[1]) if len(sys.argv) > 1 else packaged_model_path()
    print(ensure_f16_copy(source))


if __name__ == "__main__":
    main()
