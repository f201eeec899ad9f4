"""Prompt-processing levers of the local model, side by side in one process.

    .venv/bin/python -m bench.prefill                 # 5 rounds
    .venv/bin/python -m bench.prefill --rounds 3 --decode 32

A RAG-sized prompt (5 sample chunks + question in ChatML, ~1000 tokens; the
sources rotate every round) is sent to llama.cpp alone (``cache_prompt:
false``) under each configuration, round-robin, so that the machine's load
drifts hit every configuration alike:

- the packaged Q4_1 GGUF, prompt threads 1 (the baseline) and all cores;
- its F16 and Q8_0 copies (``shared/adapters/local_models/gguf_copy.py``), prompt threads
  1 and all cores;
- optionally the same with the constant system-prompt prefix cached
  (``--prefix``: a request that shares only the system prompt runs first);
- or, with ``--levers``, F16 with all cores against
  llama.cpp's micro-batch size (``n_ubatch`` 128/256/1024 vs 512), flash
  attention forced on/off (default "auto"), and the cached system prefix.

Prints llama.cpp's own ``prompt_ms`` and the wall time to the first token per
configuration (p50 over the rounds), the ratio to the baseline, and (with
``--decode N``) the decode rate, which the weights' format also changes.
"""

from __future__ import annotations

import argparse
import statistics
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cli.files import SAMPLES_DIR
from services.query.answer.prompts import PromptSource, chatml_prompt, user_message
from shared.adapters.local_models.gguf_copy import ensure_copy
from shared.adapters.local_models.llamacpp import ServerConfig, load_server, packaged_model_path
from shared.settings import DEFAULT_PRESETS

DOCS = ["aiohttp.txt", "h11.txt", "idna.md", "jmespath.txt", "anyio.txt"]
QUESTION = "How do I add a websocket echo endpoint to an aiohttp web server?"


def rag_prompt(rotation: int = 0, chars_per_source: int = 600) -> str:
    """~1000 tokens, like k=5 retrieved chunks; each round rotates the sources, as
    each question retrieves others: only the system prompt stays a common prefix."""
    sources = []
    docs = DOCS[rotation % len(DOCS) :] + DOCS[: rotation % len(DOCS)]
    for n, name in enumerate(docs, 1):
        text = (SAMPLES_DIR / "python-packages" / name).read_text(encoding="utf-8")
        sources.append(PromptSource(n=n, text=text[:chars_per_source], title=name))
    return chatml_prompt(DEFAULT_PRESETS["default"], [], user_message(QUESTION, sources))


@dataclass
class Result:
    prompt_ms: list[float] = field(default_factory=list)
    first_token_ms: list[float] = field(default_factory=list)  # wall time
    decode_rate: list[float] = field(default_factory=list)
    prompt_tokens: int = 0


def complete(server: Any, prompt: str, max_tokens: int, cache: bool) -> dict[str, Any]:
    """One blocking completion; wall time to the first token and llama.cpp's timings."""
    first: list[float] = []
    timings: dict[str, Any] = {}
    lock = threading.Lock()

    def on_chunk(data: Any) -> bool:
        with lock:
            if isinstance(data, dict):
                choices = data.get("choices") or [{}]
                if choices[0].get("text") and not first:
                    first.append(time.perf_counter())
                timings.update(data.get("timings") or {})
        return False

    request = {
        "prompt": prompt,
        "stream": True,
        "max_tokens": max_tokens,
        "temperature": 0.0,
        "cache_prompt": cache,
    }
    started = time.perf_counter()
    server.handle_completions(request, on_chunk)
    return {"first_ms": ((first[0] if first else time.perf_counter()) - started) * 1000, **timings}


@dataclass(frozen=True)
class Config:
    path: Path
    batch_threads: int
    prefix: bool = False  # a request sharing only the system prompt runs first
    ubatch: int | None = None
    flash_attn: bool | None = None


def configurations(args: argparse.Namespace, q4: Path, f16: Path, q8: Path) -> dict[str, Config]:
    cores = args.cores
    configs = {
        "Q4_1, prompt threads 1 (baseline)": Config(q4, 1),
        f"Q4_1, prompt threads {cores}": Config(q4, cores),
        "F16,  prompt threads 1": Config(f16, 1),
        f"F16,  prompt threads {cores}": Config(f16, cores),
        "Q8_0, prompt threads 1": Config(q8, 1),
        f"Q8_0, prompt threads {cores} (product default)": Config(q8, cores),
    }
    if args.prefix:
        configs[f"F16,  prompt threads {cores}, system prefix cached"] = Config(f16, cores, True)
    if args.levers:  # llama.cpp's batch sizes and attention kernel, on the product's default
        configs = {
            f"F16, threads {cores}, defaults (ubatch 512, flash auto)": Config(f16, cores),
            f"F16, threads {cores}, ubatch 256": Config(f16, cores, ubatch=256),
            f"F16, threads {cores}, ubatch 1024": Config(f16, cores, ubatch=1024),
            f"F16, threads {cores}, flash attention on": Config(f16, cores, flash_attn=True),
            f"F16, threads {cores}, flash on, ubatch 256": Config(
                f16, cores, ubatch=256, flash_attn=True
            ),
            f"Q4_1, threads {cores}, defaults": Config(q4, cores),
            f"Q4_1, threads {cores}, flash attention on": Config(q4, cores, flash_attn=True),
            f"F16, threads {cores}, system prefix cached": Config(f16, cores, prefix=True),
        }
    return configs


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.prefill", description=__doc__)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--decode", type=int, default=0, help="also decode N tokens")
    parser.add_argument("--cores", type=int, default=2, help="prompt threads for 'all cores'")
    parser.add_argument("--prefix", action="store_true", help="also: cached system prefix")
    parser.add_argument(
        "--levers", action="store_true", help="instead: ubatch sizes, flash attention, prefix"
    )
    parser.add_argument(
        "--chars", type=int, default=600, help="characters per source (600: ~1000-token prompt)"
    )
    args = parser.parse_args()

    q4 = packaged_model_path()
    f16, q8 = ensure_copy(q4, "f16"), ensure_copy(q4, "q8_0")
    configs = configurations(args, q4, f16, q8)
    servers = {
        name: load_server(
            ServerConfig(c.path, 4096, 1, c.batch_threads, ubatch=c.ubatch, flash_attn=c.flash_attn)
        ).server
        for name, c in configs.items()
    }
    results = {name: Result() for name in configs}
    other = chatml_prompt(DEFAULT_PRESETS["default"], [], "Unrelated question: what is 2+2?")
    # A cached-prefix configuration shares its server with the uncached one of the
    # same settings (load_server keeps one per configuration): it runs first in
    # each round, so that only the system prompt, not this round's prompt, is cached.
    order = sorted(configs.items(), key=lambda item: not item[1].prefix)
    for round_ in range(args.rounds):
        prompt = rag_prompt(round_, args.chars)
        for name, config in order:
            server = servers[name]
            if config.prefix:  # leave only the constant system prompt in the slot's cache
                complete(server, other, 1, cache=True)
            out = complete(server, prompt, max(1, args.decode), cache=config.prefix)
            result = results[name]
            result.prompt_ms.append(float(out.get("prompt_ms", float("nan"))))
            result.first_token_ms.append(out["first_ms"])
            result.prompt_tokens = int(out.get("prompt_n", 0))
            if args.decode > 1 and out.get("predicted_per_second"):
                result.decode_rate.append(float(out["predicted_per_second"]))
    print(report(results, args.rounds))


def report(results: dict[str, Result], rounds: int) -> str:
    base = statistics.median(next(iter(results.values())).first_token_ms)
    tokens = max(r.prompt_tokens for r in results.values())
    lines = [
        f"Prefill levers, one RAG prompt (~{tokens} tokens), llama.cpp alone, {rounds} rounds",
        f"{'configuration':<52} {'prompt_ms':>9} {'first token':>11} {'vs base':>8} {'tok/s':>6}",
    ]
    for name, r in results.items():
        first = statistics.median(r.first_token_ms)
        rate = f"{statistics.median(r.decode_rate):6.1f}" if r.decode_rate else "     -"
        lines.append(
            f"{name:<52} {statistics.median(r.prompt_ms):9.0f} {first:11.0f} "
            f"{base / first:7.2f}x {rate}"
        )
    lines.append("(prompt tokens counted by llama.cpp on the last run; 'vs base' = speed-up)")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
