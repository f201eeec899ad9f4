"""``rag eval --attribution``: the labelled sets are well formed, the report
counts what it says, and the command prints it."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cli.eval.attribution_sets import (
    FABRICATED_KINDS,
    LABELS,
    evaluate_attribution,
    load_set,
    verdicts_for,
)
from cli.main import app
from shared.errors import RagError
from shared.loaders import load
from shared.protocol import AnswerSentence, SentenceSupport

SETS = Path(__file__).resolve().parents[2] / "evalsets" / "attribution"
MARKER = re.compile(r"\s*\[\d+\]")


# Loading and counting only: the checker never runs on the held-out
# developers-reference set here (it is run once, by the lead; README.md).
@pytest.mark.parametrize("name", ["cmake", "sqlite", "debian-history", "developers-reference"])
def test_the_sets_are_labelled_and_copied_sentences_are_copied(name: str) -> None:
    answers = load_set(SETS / f"{name}.jsonl")
    kinds = {(s.label, s.kind) for a in answers for s in a.sentences}
    assert {k for label, k in kinds if label == "fabricated"} == set(FABRICATED_KINDS)
    assert {label for label, _ in kinds} == set(LABELS)
    for answer in answers:
        assert answer.sources and all(answer.titles)
        flat = [" ".join(text.split()) for text in answer.sources]
        for sentence in answer.sentences:
            plain = MARKER.sub("", sentence.text).rstrip(".")
            if sentence.kind == "copied":
                assert any(plain in text for text in flat), sentence.text
            if sentence.kind == "other_doc":  # true elsewhere, absent from these sources
                assert not any(plain in text for text in flat), sentence.text


def test_the_sets_hold_300_sentences_over_two_corpora() -> None:
    answers = [a for name in ("cmake", "sqlite") for a in load_set(SETS / f"{name}.jsonl")]
    assert sum(len(a.sentences) for a in answers) >= 300
    corpora = {
        p.stem: {json.loads(line)["corpus"] for line in p.read_text().splitlines()}
        for p in SETS.glob("*.jsonl")
    }
    assert all(len(c) == 1 for c in corpora.values())  # one corpus per set
    assert len(set().union(*corpora.values())) == len(corpora) >= 3  # no corpus shared


@pytest.mark.parametrize("name", ["debian-history", "developers-reference"])
def test_the_blind_sets_are_written_to_their_brief(name: str) -> None:
    path = SETS / f"{name}.jsonl"
    sentences = [s for a in load_set(path) for s in a.sentences]
    assert len(sentences) >= 180
    kinds = [s.kind for s in sentences if s.label == "fabricated"]
    least = {"swap": 20, "negation": 20, "invented": 15, "other_doc": 10, "filler": 10}
    assert all(kinds.count(kind) >= n for kind, n in least.items()), kinds
    root = Path(__file__).resolve().parents[2]
    pages: dict[str, str] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        raw = json.loads(line)
        for source in raw["sources"]:  # each source is a passage of its corpus page
            page = root / raw["corpus"] / source["doc_id"]
            if page.name not in pages:
                pages[page.name] = load(page.read_bytes(), None, filename=page.name).text
            assert source["text"] in pages[page.name], (raw["id"], source["chunk"])


def test_a_bad_set_gets_a_clear_error(tmp_path: Path) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"id": "x", "question": "q", "sources": [], "sentences": [{"text": "a"}]}\n')
    with pytest.raises(RagError, match=r"bad\.jsonl:1: not a labelled answer"):
        load_set(bad)
    bad.write_text(
        '{"id": "x", "question": "q", "sources": [], '
        '"sentences": [{"text": "a", "label": "true", "kind": "k"}]}\n'
    )
    with pytest.raises(RagError, match="unknown label 'true'"):
        load_set(bad)
    with pytest.raises(RagError, match="is not a file"):
        load_set(tmp_path / "missing.jsonl")


def labelled(text: str, kind: str) -> dict[str, str]:
    label = {"copied": "supported", "pleasantry": "no_claim"}.get(kind, "fabricated")
    return {"text": text, "label": label, "kind": kind}


def small_set(tmp_path: Path) -> Path:
    source = "The default setting for SQLITE_MAX_COLUMN is 2000. WAL is faster."
    answer = {
        "id": "t-1",
        "corpus": "t",
        "question": "columns?",
        "sources": [{"doc_id": "limits.html", "title": "Limits", "chunk": 0, "text": source}],
        "sentences": [
            labelled("The default setting for SQLITE_MAX_COLUMN is 2000 [1].", "copied"),
            labelled("The default setting for SQLITE_MAX_COLUMN is 3000 [1].", "swap"),
            labelled("WAL is not faster.", "negation"),
            labelled("Hope this helps!", "pleasantry"),
        ],
    }
    path = tmp_path / "small.jsonl"
    path.write_text(json.dumps(answer) + "\n")
    return path


async def test_the_report_counts_by_kind_and_marker(tmp_path: Path) -> None:
    report = await evaluate_attribution(load_set(small_set(tmp_path)), None)
    data = report.as_json()
    assert data["caught_by_kind"]["swap"] == {"caught": 1, "of": 1}
    assert data["caught_by_kind"]["negation"] == {"caught": 1, "of": 1}
    assert data["caught_with_marker"] == {"caught": 1, "of": 1}
    assert (data["fabricated_caught"], data["supported_wrongly_flagged"]) == (1.0, 0.0)
    assert data["pleasantries_no_claim"] == 1.0 and data["misses"] == []
    assert data["ms_per_sentence"] is not None


def test_a_labelled_sentence_gets_the_verdicts_of_the_answer_sentences_over_it(
    tmp_path: Path,
) -> None:
    (answer,) = load_set(small_set(tmp_path))
    first = answer.sentences[0]
    half = (first.start + first.end) // 2

    def said(start: int, end: int, support: SentenceSupport) -> AnswerSentence:
        return AnswerSentence(
            start=start, end=end, support=support, sources=[], markers=[], unsupported_markers=[]
        )

    verdicts = verdicts_for(
        answer,
        [
            said(first.start, half, SentenceSupport.SUPPORTED),
            said(half, first.end, SentenceSupport.UNSUPPORTED),
        ],
    )
    assert verdicts[0].caught and not verdicts[0].accepted  # one part unsupported
    assert verdicts[1].supports == ()  # nothing said over it: not caught, not accepted
    assert not verdicts[1].caught and not verdicts[1].accepted


def test_the_command_prints_the_report(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        app,
        ["eval", "--attribution", str(small_set(tmp_path)), "--json"],
        env={"RAG_QUERY__ATTRIBUTION_MEANING": "false", "RAG_DATA_DIR": str(tmp_path)},
    )
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["fabricated_caught"] == 1.0 and data["embedder"] is None
    missing = CliRunner().invoke(app, ["eval", "--attribution", str(tmp_path / "no.jsonl")])
    assert missing.exit_code == 1 and "is not a file" in missing.output
