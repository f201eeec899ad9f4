"""The per-set quality gate: every evaluation set, with the default settings
and the real embedder, must stay above floors set just under its measured
numbers, in k-NN and in hybrid mode.

The numbers are measured by ``bench/retrieval_sets.py`` (docs/evaluation.md,
"Defaults across corpora"); one question is 1/60 = 0.017 on the new sets.
The held-out set (npm) is gated too, at the numbers it was measured at once,
after the defaults were chosen on the others.
A change to the chunker, loaders, context header, embedder or ranking that
costs retrieval quality on any corpus fails here.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import pytest

from cli.eval.evalsets import all_sets
from cli.eval.questions import load_questions
from cli.eval.runner import run_retrieval, summarise
from services.query.answer.retrieval import Retriever, SearchMode
from shared.adapters.sqlite import store as sqlite_store
from tests.eval.conftest import MemoEmbedder, SampleStore

# set -> mode -> metric -> (floor, measured)
FLOORS: dict[str, dict[str, dict[str, tuple[float, float]]]] = {
    "samples": {
        "knn": {
            "mrr": (0.93, 0.959),
            "recall@5": (0.96, 0.986),
            "passage@3": (0.8, 0.829),
            "passage@5": (0.87, 0.9),
        },
        "hybrid": {
            "mrr": (0.94, 0.974),
            "recall@5": (0.96, 0.986),
            "passage@3": (0.87, 0.9),
            "passage@5": (0.91, 0.943),
        },
    },
    "cmake": {
        "knn": {
            "mrr": (0.77, 0.795),
            "recall@5": (0.89, 0.917),
            "passage@3": (0.62, 0.65),
            "passage@5": (0.75, 0.783),
        },
        "hybrid": {
            "mrr": (0.81, 0.841),
            "recall@5": (0.9, 0.933),
            "passage@3": (0.74, 0.767),
            "passage@5": (0.82, 0.85),
        },
    },
    "gnuplot": {
        "knn": {
            "mrr": (0.7, 0.726),
            "recall@5": (0.82, 0.85),
            "passage@3": (0.7, 0.733),
            "passage@5": (0.75, 0.783),
        },
        "hybrid": {
            "mrr": (0.76, 0.786),
            "recall@5": (0.84, 0.867),
            "passage@3": (0.74, 0.767),
            "passage@5": (0.8, 0.833),
        },
    },
    "npm": {
        "knn": {
            "mrr": (0.65, 0.678),
            "recall@5": (0.84, 0.867),
            "passage@3": (0.55, 0.583),
            "passage@5": (0.75, 0.783),
        },
        "hybrid": {
            "mrr": (0.66, 0.689),
            "recall@5": (0.84, 0.867),
            "passage@3": (0.6, 0.633),
            "passage@5": (0.72, 0.75),
        },
    },
}
SETS = {s.name: s for s in all_sets()}


@pytest.mark.parametrize(
    ("name", "mode"), [(name, mode) for name in FLOORS for mode in FLOORS[name]]
)
async def test_each_set_meets_its_floors(
    name: str,
    mode: SearchMode,
    set_stores: Callable[[str], Awaitable[SampleStore]],
    memo_embedder: MemoEmbedder,
) -> None:
    store = await set_stores(name)
    settings = store.settings
    questions = load_questions(SETS[name].questions_path)
    index = sqlite_store.from_settings(settings)
    try:
        retriever = Retriever(memo_embedder, index, settings.query)
        results = await run_retrieval(questions, retriever, mode, settings.query.default_k)
    finally:
        await index.close()
    metrics = summarise(results, mode, settings.query.default_k).metrics
    low = {
        metric: round(metrics[metric], 3)
        for metric, (floor, _) in FLOORS[name][mode].items()
        if metrics[metric] < floor
    }
    assert not low, f"{name} ({mode}) fell below its floors: {low}"
