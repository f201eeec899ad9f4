"""Evaluate one evaluation set under given settings: index its corpus into a
fresh embedded store through the indexer's pipeline, then run its questions
through the query service's retriever in each mode. Used by the per-set CI
gates and by ``bench/retrieval_sets.py`` (the table in docs/evaluation.md).
"""

from __future__ import annotations

import sys
import tempfile
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cli.eval.corpus import IndexReport, index_folder
from cli.eval.evalsets import EvalSet
from cli.eval.questions import EvalQuestion, load_questions
from cli.eval.runner import EvalSummary, run_retrieval, summarise
from services.query.answer.retrieval import Retriever, SearchMode
from shared.factory import build_status_store, build_vector_index
from shared.ports import Embedder, StatusStore, VectorIndex
from shared.settings import QuerySettings, Settings


@dataclass(frozen=True)
class SetResult:
    name: str
    report: IndexReport
    summaries: dict[str, EvalSummary]

    def row(self, mode: str) -> dict[str, Any]:
        m = self.summaries[mode].metrics
        return {
            "set": self.name,
            "mode": mode,
            "chunks": self.report.chunks,
            "mrr": m["mrr"],
            "recall@5": m["recall@5"],
            "passage@3": m.get("passage@3"),
            "passage@5": m.get("passage@5"),
        }


def settings_for(base: Settings, data_dir: Path) -> Settings:
    return base.model_copy(
        update={
            "data_dir": data_dir,
            "index": base.index.model_copy(update={"backend": "embedded"}),
            "status": base.status.model_copy(update={"backend": "embedded"}),
        }
    )


@asynccontextmanager
async def temporary_stores(
    name: str, settings: Settings
) -> AsyncIterator[tuple[Settings, VectorIndex, StatusStore]]:
    """A fresh embedded index and status store in a temporary folder, with the
    settings that point at them; closed and removed afterwards."""
    with tempfile.TemporaryDirectory(prefix=f"rag-eval-{name}-") as tmp:
        local = settings_for(settings, Path(tmp))
        index, status = build_vector_index(local), build_status_store(local)
        try:
            yield local, index, status
        finally:
            await index.close()
            await status.close()  # type: ignore[attr-defined]  # the embedded store's


@asynccontextmanager
async def indexed_corpus(
    name: str, corpus: Path, settings: Settings, embedder: Embedder
) -> AsyncIterator[tuple[VectorIndex, IndexReport]]:
    """``corpus`` in a temporary embedded store built under ``settings``."""
    async with temporary_stores(name, settings) as (local, index, status):
        report = await index_folder(
            corpus, settings=local, index=index, status=status, embedder=embedder
        )
        if report.failed:
            print(f"warning: {name}: not indexed: {report.failed}", file=sys.stderr)
        yield index, report


async def evaluate_index(
    index: VectorIndex,
    questions: Sequence[EvalQuestion],
    query: QuerySettings,
    embedder: Embedder,
    modes: Sequence[SearchMode] = ("knn", "hybrid"),
) -> dict[str, EvalSummary]:
    retriever = Retriever(embedder, index, query)
    summaries: dict[str, EvalSummary] = {}
    for mode in modes:
        results = await run_retrieval(questions, retriever, mode, query.default_k)
        summaries[mode] = summarise(results, mode, query.default_k)
    return summaries


async def evaluate_corpus(
    name: str,
    corpus: Path,
    questions: Sequence[EvalQuestion],
    settings: Settings,
    embedder: Embedder,
    modes: Sequence[SearchMode] = ("knn", "hybrid"),
) -> SetResult:
    async with indexed_corpus(name, corpus, settings, embedder) as (index, report):
        summaries = await evaluate_index(index, questions, settings.query, embedder, modes)
        return SetResult(name, report, summaries)


async def evaluate_set(
    evalset: EvalSet,
    settings: Settings,
    embedder: Embedder,
    modes: Sequence[SearchMode] = ("knn", "hybrid"),
) -> SetResult:
    questions = load_questions(evalset.questions_path)
    return await evaluate_corpus(
        evalset.name, evalset.corpus_dir(), questions, settings, embedder, modes
    )
