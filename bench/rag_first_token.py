"""Time to first token for REAL RAG questions (``python -m bench.query --part rag``).

The sample documents that answer the first golden questions are indexed with
the real MiniLM into a temporary embedded index; each question then goes
through the query service (``AnswerService``: embed, retrieve k=5 chunks, fit
the prompt with the product's prompt budget, the local llama.cpp model) and
its ``done.time_to_first_token_ms`` is recorded. Right after, in the same run
and on the same load, llama.cpp alone (``cache_prompt: false``, one token)
gets two prompts:

- the **untrimmed** prompt, whole chunks, as the product built it before the
  prompt budget (``source_tokens`` 0): the baseline the goal is measured
  against; its server runs llama.cpp's defaults (no forced flash attention)
  on the product's model file and threads;
- the same untrimmed prompt **as first shipped**: the packaged Q4_1 file,
  one thread for prompt and decoding (where the issue's 7.8-10.9 s came from);
- exactly the prompt the service built (what the service adds over the model).

Printed: p50/min/max of each, the speed-up over the baseline, the service's
overhead ratio, prompt sizes, and what the service adds before the model
(embed + retrieve + fit). Levers (flags): ``--source-tokens`` (0: whole
chunks), ``--flash-attn on|off``, ``--weights q8_0|f16|packaged``, ``--model-path``,
``--threads`` (decode), ``--batch-threads`` (prompt processing),
``--context-tokens``.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import statistics
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.prefill import complete
from cli.eval.corpus import index_folder
from cli.eval.questions import load_questions
from cli.files import SAMPLES_DIR
from services.query.answer.context import fit_prompt
from services.query.answer.parts import build_query_deps
from services.query.answer.retrieval import Retriever
from services.query.answer.service import AnswerService
from services.query.transports.inprocess import InProcessConnection
from shared.access import Principal
from shared.adapters.local_models.llamacpp import (
    LlamaCppChatModel,
    ServerConfig,
    load_server,
    packaged_model_path,
)
from shared.factory import build_chat_model, build_embedder, build_status_store, build_vector_index
from shared.ports import ServerEvent
from shared.protocol import AskAction, DoneEvent
from shared.settings import ModelSettings, QuerySettings, Settings

GOLDEN = SAMPLES_DIR.parent / "golden.jsonl"


@dataclass(frozen=True)
class Sample:
    question: str
    service_ttft_ms: float
    alone_ttft_ms: float
    alone_prompt_ms: float | None  # llama.cpp's own prompt-processing time
    prompt_tokens: int
    before_model_ms: float
    untrimmed_ttft_ms: float  # llama.cpp alone, whole chunks, its default settings
    untrimmed_tokens: int
    shipped_ttft_ms: float  # the same, packaged Q4_1 file, one thread


class Recorder:
    def __init__(self) -> None:
        self.events: list[ServerEvent] = []

    async def send(self, event: ServerEvent) -> None:
        self.events.append(event)


class PromptSpy:
    """Wraps the chat model to keep the prompt the service built and when it was called."""

    def __init__(self, inner: LlamaCppChatModel) -> None:
        self.inner = inner
        self.prompt = ""
        self.called = 0.0

    @property
    def family(self) -> str:
        return self.inner.family

    def count_tokens(self, text: str) -> int:
        return self.inner.count_tokens(text)

    def stream(self, prompt: str, params: Any) -> Any:
        self.prompt, self.called = prompt, time.perf_counter()
        return self.inner.stream(prompt, params)


def copy_documents(doc_ids: Sequence[str], into: Path) -> None:
    for doc_id in doc_ids:
        target = into / doc_id
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(SAMPLES_DIR / doc_id, target)


async def alone(server: Any, prompt: str) -> tuple[float, float | None, int]:
    """llama.cpp's server alone on ``prompt``: ms to the first token, its own
    prompt_ms when it reports timings, and the prompt's token count."""
    # The same one-shot completion the prefill bench times, one token long.
    result = await asyncio.to_thread(complete, server, prompt, 1, False)
    prompt_ms = result.get("prompt_ms")
    return (
        float(result["first_ms"]),
        float(prompt_ms) if prompt_ms is not None else None,
        int(result.get("prompt_n", 0)),
    )


async def untrimmed_prompt(settings: Settings, retriever: Retriever, model: Any, q: str) -> str:
    """The prompt of a first question with whole chunks (no prompt budget)."""
    query = settings.query
    hits = await retriever.retrieve(
        q, query.default_k, {}, query.search_mode, Principal.single_user().access
    )
    fitted = fit_prompt(
        family=model.family,
        system=query.presets["default"],
        history=[],
        question=q,
        hits=hits,
        context_tokens=settings.model.context_tokens,
        max_new_tokens=settings.model.max_new_tokens,
        count=model.count_tokens,
    )
    return fitted.prompt


def shipped_server(model: LlamaCppChatModel) -> Any:
    """llama.cpp as the first version ran it: the packaged Q4_1 file, one thread."""
    return load_server(
        ServerConfig(packaged_model_path(), model.config.context_tokens, 1, 1)
    ).server


def baseline_server(model: LlamaCppChatModel) -> Any:
    """A server of its own (no KV cache shared with the service's) with the
    product's model file and threads and llama.cpp's default levers, as before
    this work. Flash attention "off" and "auto" measure the same on CPU
    (bench.prefill --levers), so the one the service does not use is taken:
    a different configuration is a different server."""
    config = model.config
    flash = False if config.flash_attn is not False else None
    return load_server(
        ServerConfig(
            config.model_path,
            config.context_tokens,
            config.threads,
            config.batch_threads,
            flash_attn=flash,
        )
    ).server


async def run(
    questions: int,
    model_settings: ModelSettings,
    max_new_tokens: int,
) -> list[Sample]:
    golden = load_questions(GOLDEN)[:questions]
    with tempfile.TemporaryDirectory(prefix="rag-bench-") as tmp:
        corpus = Path(tmp) / "corpus"
        copy_documents(sorted({d for q in golden for d in q.doc_ids}), corpus)
        settings = Settings(
            data_dir=Path(tmp) / "data",
            model=model_settings.model_copy(
                update={"max_new_tokens": max_new_tokens, "temperature": 0.0}
            ),
            query=QuerySettings(coalesce_ms=0.0, default_k=5),
        )
        embedder = build_embedder(settings)
        index, status = build_vector_index(settings), build_status_store(settings)
        model = build_chat_model(settings)
        assert isinstance(model, LlamaCppChatModel), "the RAG bench runs the local model"
        spy = PromptSpy(model)
        try:
            await index_folder(
                corpus, settings=settings, index=index, status=status, embedder=embedder
            )
            loaded = await model.load()
            baseline = await asyncio.to_thread(baseline_server, model)
            shipped = await asyncio.to_thread(shipped_server, model)
            retriever = Retriever(embedder, index, settings.query)
            service = AnswerService(
                settings, build_query_deps(settings, embedder=embedder, index=index, model=spy)
            )
            await answer(service, "warm-up: what is aiohttp?")  # first-call costs
            samples = []
            for question in golden:
                whole = await untrimmed_prompt(settings, retriever, model, question.question)
                untrimmed_ms, _, untrimmed_tokens = await alone(baseline, whole)
                shipped_ms, _, _ = await alone(shipped, whole)
                started = time.perf_counter()
                done = await answer(service, question.question)
                before_model = (spy.called - started) * 1000
                ttft_alone, prompt_ms, _ = await alone(loaded.server, spy.prompt)
                samples.append(
                    Sample(
                        question.question,
                        done.time_to_first_token_ms or float("nan"),
                        ttft_alone,
                        prompt_ms,
                        done.prompt_tokens,
                        before_model,
                        untrimmed_ms,
                        untrimmed_tokens,
                        shipped_ms,
                    )
                )
            return samples
        finally:
            await index.close()
            await status.close()  # type: ignore[attr-defined]


async def answer(service: AnswerService, question: str) -> DoneEvent:
    sink = Recorder()
    # Through the front door, as every caller (so the timings include it).
    await InProcessConnection(service).ask(AskAction(action="ask", question=question), sink)
    done = sink.events[-1]
    assert isinstance(done, DoneEvent), sink.events
    return done


def report(samples: Sequence[Sample], label: str) -> str:
    service = [s.service_ttft_ms for s in samples]
    base = [s.alone_ttft_ms for s in samples]
    prompt_ms = [s.alone_prompt_ms for s in samples if s.alone_prompt_ms is not None]
    untrimmed = [s.untrimmed_ttft_ms for s in samples]
    shipped = [s.shipped_ttft_ms for s in samples]
    ratio = statistics.median(service) / statistics.median(base)
    speedup = statistics.median(untrimmed) / statistics.median(service)
    lines = [
        f"Part 3: time to first token, real RAG questions (k=5), {label}",
        f"  questions {len(samples)}; prompt tokens p50: service "
        f"{statistics.median(s.prompt_tokens for s in samples):.0f}, untrimmed "
        f"{statistics.median(s.untrimmed_tokens for s in samples):.0f}",
        "  first token (ms)                         p50      min      max",
        f"  service (ask->token)                   {statistics.median(service):7.0f}  "
        f"{min(service):7.0f}  {max(service):7.0f}   (goal <= 2000 p50)",
        f"  llama.cpp alone, untrimmed (baseline)  {statistics.median(untrimmed):7.0f}  "
        f"{min(untrimmed):7.0f}  {max(untrimmed):7.0f}",
        f"  llama.cpp alone, untrimmed, as shipped {statistics.median(shipped):7.0f}  "
        f"{min(shipped):7.0f}  {max(shipped):7.0f}   (Q4_1 file, 1 thread)",
        f"  llama.cpp alone, the service's prompt  {statistics.median(base):7.0f}  "
        f"{min(base):7.0f}  {max(base):7.0f}",
        f"  baseline / service (speed-up)          {speedup:7.2f}",
        f"  as shipped / service (speed-up)        "
        f"{statistics.median(shipped) / statistics.median(service):7.2f}",
        f"  service / alone on its prompt          {ratio:7.2f}",
        f"  before the model (embed + retrieve + fit) p50 "
        f"{statistics.median(s.before_model_ms for s in samples):.0f} ms",
    ]
    if prompt_ms:
        lines.append(f"  llama.cpp's own prompt_ms p50 {statistics.median(prompt_ms):.0f}")
    return "\n".join(lines)


def as_json(samples: Sequence[Sample]) -> str:
    return json.dumps([s.__dict__ for s in samples], indent=1)
