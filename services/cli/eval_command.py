"""``rag eval QUESTIONS.jsonl``: measure retrieval quality on your own questions.

Runs every question through the query service's retrieval against the
configured index (the embedded store in ``--data-dir``, or a deployed
OpenSearch when ``RAG_INDEX__BACKEND=opensearch``), and prints recall@1/5/10,
MRR, nDCG@10, the passage hit rate, per-question misses and timing.
``--compare`` instead indexes ``--corpus`` into temporary embedded stores at
two chunk sizes and prints k-NN vs. hybrid for both, side by side.
"""

from __future__ import annotations

import asyncio
import json
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

import typer

from services.cli.eval_answers import AnswerSummary, run_answers
from services.cli.eval_index import index_folder
from services.cli.eval_questions import EvalQuestion, load_questions
from services.cli.eval_report import (
    CompareRow,
    compare_json,
    compare_text,
    human_report,
    summary_json,
)
from services.cli.eval_runner import EvalSummary, run_retrieval, summarise
from services.cli.runtime import Parts
from services.query.conversation import InMemoryConversationStore
from services.query.core import AnswerService, QueryDeps
from services.query.retrieval import Retriever
from shared.errors import RagError
from shared.factory import build_status_store, build_vector_index
from shared.ports import Embedder
from shared.settings import ChunkingSettings, Settings, load_settings

Mode = Literal["knn", "hybrid"]
DEFAULT_CORPUS = Path(__file__).resolve().parents[2] / "samples" / "corpus"


@dataclass(frozen=True)
class EvalOptions:
    questions: list[EvalQuestion]
    mode: Mode
    k: int
    answers: bool


def alternative_chunk_tokens(configured: int) -> int:
    """The chunk size ``--compare`` sets against the configured one."""
    return 100 if configured > 150 else 200


def chunking_for(size: int, configured: ChunkingSettings) -> ChunkingSettings:
    # Keep the configured overlap where the new size allows it (< size / 2).
    return ChunkingSettings(
        chunk_tokens=size, overlap_tokens=min(configured.overlap_tokens, size // 2 - 1)
    )


def context_of(settings: Settings, embedder_id: str) -> dict[str, Any]:
    return {
        "index_backend": settings.index.backend,
        "embedder": embedder_id,
        "chunk_tokens": settings.chunking.chunk_tokens,
        "overlap_tokens": settings.chunking.overlap_tokens,
    }


@dataclass(frozen=True)
class EvalRun:
    summary: EvalSummary
    answers: AnswerSummary | None
    embedder_id: str


async def evaluate(settings: Settings, options: EvalOptions) -> EvalRun:
    parts = Parts(settings)
    try:
        retriever = Retriever(parts.embedder, parts.index, settings.query)
        results = await run_retrieval(options.questions, retriever, options.mode, options.k)
        summary = summarise(results, options.mode, options.k)
        answers: AnswerSummary | None = None
        if options.answers:
            deps = QueryDeps(parts.embedder, parts.index, parts.model, InMemoryConversationStore())
            service = AnswerService(settings, deps)
            answers = await run_answers(options.questions, service, options.mode, options.k)
        return EvalRun(summary, answers, parts.embedder.model_id)
    finally:
        await parts.close()


async def _one_size(
    settings: Settings, size: int, corpus: Path, embedder: Embedder, options: EvalOptions
) -> list[CompareRow]:
    with tempfile.TemporaryDirectory(prefix="rag-eval-") as tmp:
        local = settings.model_copy(
            update={
                "data_dir": Path(tmp),
                "index": settings.index.model_copy(update={"backend": "embedded"}),
                "status": settings.status.model_copy(update={"backend": "embedded"}),
                "chunking": chunking_for(size, settings.chunking),
            }
        )
        index, status = build_vector_index(local), build_status_store(local)
        try:
            report = await index_folder(
                corpus, settings=local, index=index, status=status, embedder=embedder
            )
            if report.failed:
                print(f"warning: not indexed: {report.failed}", file=sys.stderr)
            retriever = Retriever(embedder, index, local.query)
            rows = []
            for mode in ("knn", "hybrid"):
                results = await run_retrieval(options.questions, retriever, mode, options.k)
                summary = summarise(results, mode, options.k)
                rows.append(CompareRow(size, local.chunking.overlap_tokens, report.chunks, summary))
            return rows
        finally:
            await index.close()
            await status.close()  # type: ignore[attr-defined]


async def compare(settings: Settings, options: EvalOptions, corpus: Path) -> list[CompareRow]:
    parts = Parts(settings)
    try:
        sizes = [
            settings.chunking.chunk_tokens,
            alternative_chunk_tokens(settings.chunking.chunk_tokens),
        ]
        rows: list[CompareRow] = []
        for size in sizes:
            rows.extend(await _one_size(settings, size, corpus, parts.embedder, options))
        return rows
    finally:
        await parts.close()


def _fail(message: str) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(code=2)


def eval_command(
    questions: Annotated[Path, typer.Argument(help="JSON Lines file of questions.")],
    data_dir: Annotated[
        Path | None, typer.Option("--data-dir", help="Embedded store folder.")
    ] = None,
    mode: Annotated[
        Mode | None, typer.Option("--mode", help="knn or hybrid (default: settings).")
    ] = None,
    k: Annotated[
        int | None, typer.Option("--k", min=1, max=50, help="Chunks given to the model.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
    answers: Annotated[
        bool, typer.Option("--answers", help="Also generate answers and check citations.")
    ] = False,
    do_compare: Annotated[
        bool, typer.Option("--compare", help="k-NN vs hybrid at two chunk sizes.")
    ] = False,
    corpus: Annotated[
        Path, typer.Option("--corpus", help="Folder indexed by --compare.")
    ] = DEFAULT_CORPUS,
    fail_under: Annotated[
        float | None, typer.Option("--fail-under", help="Exit 1 if recall@5 is lower.")
    ] = None,
) -> None:
    """Measure retrieval quality (recall@k, MRR, nDCG@10) on a question set."""
    overrides: dict[str, Any] = {} if data_dir is None else {"data_dir": data_dir}
    settings = load_settings(**overrides)
    try:
        options = EvalOptions(
            questions=load_questions(questions),
            mode=mode or settings.query.search_mode,
            k=k or settings.query.default_k,
            answers=answers,
        )
    except RagError as exc:
        raise _fail(str(exc)) from exc
    if do_compare:
        if not corpus.is_dir():
            raise _fail(f"--corpus {corpus} is not a folder")
        rows = asyncio.run(compare(settings, options, corpus))
        context = {"corpus": str(corpus), "embedder": settings.embedder.backend}
        typer.echo(json.dumps(compare_json(rows, context)) if as_json else compare_text(rows))
        return
    run = asyncio.run(evaluate(settings, options))
    summary = run.summary
    if all(not r.retrieved for r in summary.results):
        raise _fail(
            "no question retrieved anything: is the index empty? "
            "Ingest first (rag ingest FOLDER), or check --data-dir / RAG_INDEX__*."
        )
    if as_json:
        payload = summary_json(summary, context_of(settings, run.embedder_id), run.answers)
        typer.echo(json.dumps(payload))
    else:
        typer.echo(human_report(summary, run.answers))
    if fail_under is not None and summary.metrics["recall@5"] < fail_under:
        raise typer.Exit(code=1)


def register(app: typer.Typer) -> None:
    app.command("eval")(eval_command)
