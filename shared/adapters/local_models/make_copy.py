"""``python -m shared.adapters.local_models.make_copy [q8_0|f16] [SOURCE]``: make the
faster-to-run copy of the packaged GGUF (``gguf_copy.py``) and print its path.

A script of its own so that the two modules it joins stay acyclic: ``llamacpp``
imports ``gguf_copy`` (to find a copy); only this script imports both.
"""

from __future__ import annotations

import sys
from pathlib import Path

from shared.adapters.local_models.gguf_copy import DEFAULT_WEIGHTS, Weights, ensure_copy
from shared.adapters.local_models.llamacpp import packaged_model_path


def main() -> None:
    weights: Weights = "f16" if sys.argv[1:2] == ["f16"] else DEFAULT_WEIGHTS
    source = Path(sys.argv[2]) if len(sys.argv) > 2 else packaged_model_path()
    print(ensure_copy(source, weights))


if __name__ == "__main__":
    main()
