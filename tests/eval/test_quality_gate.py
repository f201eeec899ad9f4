"""The retrieval quality gate: the golden set over the sample corpus, with the
default settings and the real embedder, must not fall below measured floors.

Measured on 2026-12-07 with the default settings (hybrid with RRF k 20,
200-word chunks under the title line with 256 tokens of context, at most 5
chunks per document, k=5; 73 questions, 70 with a passage; 29 documents, 119
chunks): recall@5 1.000, MRR 0.940, passage rate 0.986 (docs/evaluation.md,
"Question side"; with RRF k 60 before: 0.973, 0.937, 0.957). One question is
1/73 = 0.014. (With the structure-aware 222-token chunks before: 0.986,
0.956, 0.971.)
tests/eval/test_evalsets_gate.py gates every
set, this one included, in both modes. The floors sit a little
below the measured values so that a change that costs retrieval quality (a
chunker, loader, embedder or ranking regression) fails here, while the
run-to-run noise of float arithmetic does not.
"""

from __future__ import annotations

from cli.eval.questions import load_questions
from cli.eval.runner import run_retrieval, summarise
from services.query.answer.retrieval import Retriever
from shared.adapters.sqlite import store as sqlite_store
from tests.eval.conftest import GOLDEN, MemoEmbedder, SampleStore

# metric: (floor, measured)
FLOORS = {
    "recall@5": (0.97, 1.0),
    "mrr": (0.91, 0.94),
}
PASSAGE_FLOOR = (0.956, 0.986)


async def test_golden_set_meets_the_floors(
    sample_store: SampleStore, memo_embedder: MemoEmbedder
) -> None:
    settings = sample_store.settings
    questions = load_questions(GOLDEN)
    index = sqlite_store.from_settings(settings)
    try:
        retriever = Retriever(memo_embedder, index, settings.query)
        results = await run_retrieval(
            questions, retriever, settings.query.search_mode, settings.query.default_k
        )
    finally:
        await index.close()
    summary = summarise(results, settings.query.search_mode, settings.query.default_k)

    measured = {name: round(summary.metrics[name], 3) for name in FLOORS}
    for name, (floor, _) in FLOORS.items():
        assert summary.metrics[name] >= floor, f"{name} fell to {measured[name]} (< {floor})"
    assert summary.passage_rate is not None
    assert summary.passage_rate >= PASSAGE_FLOOR[0], f"passage rate {summary.passage_rate:.3f}"
