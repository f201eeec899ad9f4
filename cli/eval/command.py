"""``rag eval QUESTIONS.jsonl``: measure retrieval quality on your own questions.

Runs every question through the query service's retrieval against the
configured index (the embedded store in ``--data-dir``, or a deployed
OpenSearch with ``--stack`` or ``RAG_INDEX__BACKEND=opensearch``), and prints
recall@1/5/10, MRR, nDCG@10, the passage hit rate, per-question misses and
timing. ``--compare`` instead indexes ``--corpus`` into temporary embedded
stores at two chunk sizes and prints k-NN vs. hybrid for both, side by side.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

import typer

from cli.options import settings_for
from cli.paths import SAMPLES_DIR
from shared.errors import RagError

if TYPE_CHECKING:  # `rag --help` must not pay for pydantic-settings
    from shared.settings import Settings


def _print_compare(settings: Settings, options: Any, corpus: Path, as_json: bool) -> None:
    from cli.eval.report import compare_json, compare_text
    from cli.eval.session import compare

    if not corpus.is_dir():
        raise RagError(f"--corpus {corpus} is not a folder")
    import asyncio

    rows = asyncio.run(compare(settings, options, corpus))
    context = {"corpus": str(corpus), "embedder": settings.embedder.backend}
    typer.echo(json.dumps(compare_json(rows, context)) if as_json else compare_text(rows))


def _print_baseline(settings: Settings, options: Any, corpus: Path, as_json: bool) -> None:
    import asyncio

    from cli.eval.naive import baseline_json, baseline_text, product_beside_naive
    from cli.local_parts import LocalParts

    if not corpus.is_dir():
        raise RagError(f"--corpus {corpus} is not a folder")

    async def run() -> Any:
        parts = LocalParts(settings)
        try:
            return await product_beside_naive(
                corpus, options.questions, settings, parts.embedder, options.k
            ), parts.embedder.model_id
        finally:
            await parts.close()

    rows, embedder_id = asyncio.run(run())
    context = {"corpus": str(corpus), "embedder": embedder_id, "k": options.k}
    typer.echo(json.dumps(baseline_json(rows, context)) if as_json else baseline_text(rows))


def _print_eval(settings: Settings, options: Any, as_json: bool) -> float:
    import asyncio

    from cli.eval.report import human_report, summary_json
    from cli.eval.session import context_of, evaluate
    from services.query.answer.audit import audit_stream

    with audit_stream(sys.stderr):  # stdout holds the report (one JSON with --json)
        run = asyncio.run(evaluate(settings, options))
    summary = run.summary
    context = context_of(settings, run.embedder_id)
    if all(not r.retrieved for r in summary.results):
        raise RagError(
            "no question retrieved anything: is the index empty? "
            "Ingest first (rag ingest FOLDER), or check --data-dir / --stack / RAG_INDEX__*."
        )
    if as_json:
        payload = summary_json(summary, context, run.answers)
        typer.echo(json.dumps(payload))
    else:
        typer.echo(human_report(summary, run.answers, context))
    return summary.metrics["recall@5"]


def _print_attribution(settings: Settings, path: Path, as_json: bool) -> None:
    import asyncio

    from cli.eval.attribution_sets import evaluate_attribution, load_set
    from shared.factory import build_embedder

    answers = load_set(path)
    embedder = build_embedder(settings) if settings.query.attribution_meaning else None
    report = asyncio.run(evaluate_attribution(answers, embedder))
    context = {"set": str(path), "embedder": settings.embedder.backend if embedder else None}
    if as_json:
        typer.echo(json.dumps({**context, **report.as_json()}))
    else:
        typer.echo(
            "\n".join([f"attribution set {path} ({len(answers)} answers)", *report.text_lines()])
        )


def eval_command(
    questions: Annotated[
        Path | None, typer.Argument(help="JSON Lines: question, doc_ids, passage?")
    ] = None,
    data_dir: Annotated[
        Path | None,
        typer.Option(
            "--data-dir", help="Local data folder (default: RAG_DATA_DIR, else the per-user one)"
        ),
    ] = None,
    stack: Annotated[
        str | None, typer.Option("--stack", help="Evaluate a deployed Pulumi stack's index")
    ] = None,
    mode: Annotated[
        Literal["knn", "hybrid"] | None,
        typer.Option("--mode", help="knn or hybrid (default: RAG_QUERY__SEARCH_MODE)"),
    ] = None,
    k: Annotated[
        int | None,
        typer.Option("-k", "--k", min=1, max=50, help="Chunks the model gets (default: query k)"),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object")] = False,
    answers: Annotated[
        bool, typer.Option("--answers", help="Also generate answers and check their citations")
    ] = False,
    do_compare: Annotated[
        bool,
        typer.Option("--compare", help="k-NN vs hybrid at two chunk sizes, on --corpus"),
    ] = False,
    baseline: Annotated[
        Literal["naive"] | None,
        typer.Option(
            "--baseline",
            help="naive: the product beside a naive pipeline (200-word chunks, k-NN), same "
            "embedder and questions, both indexed from --corpus",
        ),
    ] = None,
    corpus: Annotated[
        Path,
        typer.Option("--corpus", help="Folder --compare / --baseline index (default: the samples)"),
    ] = SAMPLES_DIR,
    attribution: Annotated[
        Path | None,
        typer.Option(
            "--attribution",
            help="Measure sentence attribution on a labelled set (evalsets/attribution/*.jsonl)",
        ),
    ] = None,
    fail_under: Annotated[
        float | None, typer.Option("--fail-under", help="Exit 1 if recall@5 is below this")
    ] = None,
) -> None:
    """Measure retrieval quality (recall@k, MRR, nDCG@10) on a question set."""
    from cli.eval.questions import load_questions
    from cli.eval.session import EvalOptions

    try:
        settings = settings_for(data_dir, stack)
        if attribution is not None:
            _print_attribution(settings, attribution, as_json)
            return
        if questions is None:
            raise RagError("give a question set (QUESTIONS.jsonl) or --attribution SET.jsonl")
        options = EvalOptions(
            questions=load_questions(questions),
            mode=mode or settings.query.search_mode,
            k=k or settings.query.default_k,
            answers=answers,
        )
        if do_compare:
            _print_compare(settings, options, corpus, as_json)
            return
        if baseline == "naive":
            _print_baseline(settings, options, corpus, as_json)
            return
        recall5 = _print_eval(settings, options, as_json)
    except RagError as exc:
        typer.echo(f"rag: {exc}", err=True)
        raise typer.Exit(1) from None
    if fail_under is not None and recall5 < fail_under:
        raise typer.Exit(code=1)
