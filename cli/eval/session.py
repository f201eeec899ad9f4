"""The evaluation runs behind ``rag eval``: one question set against the
configured index, or ``--compare`` over fresh embedded stores at two chunk
sizes. Imported lazily by the command so that other CLI commands don't pay for
the query and indexer modules at start-up.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from cli.eval.answers import AnswerSummary, run_answers
from cli.eval.questions import EvalQuestion
from cli.eval.report import CompareRow
from cli.eval.runner import EvalSummary, run_retrieval, summarise
from cli.eval.set_runner import evaluate_index, indexed_corpus
from cli.local_parts import LocalParts
from services.query.answer.parts import build_query_deps
from services.query.answer.retrieval import Retriever
from services.query.answer.service import AnswerService
from shared.ports import Embedder
from shared.settings import ChunkingSettings, Settings

Mode = Literal["knn", "hybrid"]


@dataclass(frozen=True)
class EvalOptions:
    questions: list[EvalQuestion]
    mode: Mode
    k: int
    answers: bool


def alternative_chunk_tokens(configured: int) -> int:
    """The chunk size ``--compare`` sets against the configured one."""
    return 100 if configured > 150 else 200


def chunk_size(configured: ChunkingSettings) -> int:
    """The configured chunk size in the strategy's unit (words or tokens)."""
    return configured.chunk_words if configured.strategy == "words" else configured.chunk_tokens


def chunking_for(size: int, configured: ChunkingSettings) -> ChunkingSettings:
    """The configured chunking at another size, in the strategy's unit; the
    configured overlap kept where the new size allows it (< size / 2)."""
    if configured.strategy == "words":
        change = {
            "chunk_words": size,
            "overlap_words": min(configured.overlap_words, size // 2 - 1),
        }
    else:
        change = {
            "chunk_tokens": size,
            "overlap_tokens": min(configured.overlap_tokens, size // 2 - 1),
        }
    return ChunkingSettings.model_validate({**configured.model_dump(), **change})


def context_of(settings: Settings, embedder_id: str) -> dict[str, Any]:
    """The settings that produced the numbers (printed with them)."""
    query = settings.query
    return {
        "index_backend": settings.index.backend,
        "embedder": embedder_id,
        "chunk_strategy": settings.chunking.strategy,
        "chunk_words": settings.chunking.chunk_words,
        "overlap_words": settings.chunking.overlap_words,
        "chunk_tokens": settings.chunking.chunk_tokens,
        "overlap_tokens": settings.chunking.overlap_tokens,
        "context_tokens": settings.chunking.context_tokens,
        "context_header": settings.chunking.context_header,
        "candidates": query.candidates,
        "rrf_k": query.rrf_k,
        "keyword_weight": query.keyword_weight,
        "max_chunks_per_doc": query.max_chunks_per_doc,
        "near_duplicate_threshold": query.near_duplicate_threshold,
    }


@dataclass(frozen=True)
class EvalRun:
    summary: EvalSummary
    answers: AnswerSummary | None
    embedder_id: str


async def evaluate(settings: Settings, options: EvalOptions) -> EvalRun:
    parts = LocalParts(settings)
    try:
        retriever = Retriever(parts.embedder, parts.index, settings.query)
        results = await run_retrieval(options.questions, retriever, options.mode, options.k)
        summary = summarise(results, options.mode, options.k)
        answers: AnswerSummary | None = None
        if options.answers:
            deps = build_query_deps(
                settings, embedder=parts.embedder, index=parts.index, model=parts.model
            )
            service = AnswerService(settings, deps)
            answers = await run_answers(options.questions, service, options.mode, options.k)
        return EvalRun(summary, answers, parts.embedder.model_id)
    finally:
        await parts.close()


async def _one_size(
    settings: Settings, size: int, corpus: Path, embedder: Embedder, options: EvalOptions
) -> list[CompareRow]:
    sized = settings.model_copy(
        update={
            "chunking": chunking_for(size, settings.chunking),
            "query": settings.query.model_copy(update={"default_k": options.k}),
        }
    )
    chunking = sized.chunking
    overlap = chunking.overlap_words if chunking.strategy == "words" else chunking.overlap_tokens
    async with indexed_corpus(f"{size}", corpus, sized, embedder) as (index, report):
        summaries = await evaluate_index(index, options.questions, sized.query, embedder)
        return [CompareRow(size, overlap, report.chunks, s) for s in summaries.values()]


async def compare(settings: Settings, options: EvalOptions, corpus: Path) -> list[CompareRow]:
    parts = LocalParts(settings)
    try:
        sizes = [
            chunk_size(settings.chunking),
            alternative_chunk_tokens(chunk_size(settings.chunking)),
        ]
        rows: list[CompareRow] = []
        for size in sizes:
            rows.extend(await _one_size(settings, size, corpus, parts.embedder, options))
        return rows
    finally:
        await parts.close()
