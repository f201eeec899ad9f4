"""The question file format."""

from __future__ import annotations

import json

import pytest

from cli.eval.questions import QuestionFileError, load_questions, parse_questions
from tests.eval.conftest import CORPUS, GOLDEN


def test_comments_and_blank_lines_are_skipped() -> None:
    lines = ["# a comment", "", json.dumps({"question": "q?", "doc_ids": ["a"]})]
    [question] = parse_questions(lines)
    assert question.doc_ids == ["a"]
    assert question.passage is None


def test_empty_doc_ids_and_unknown_fields_are_rejected() -> None:
    with pytest.raises(QuestionFileError) as caught:
        parse_questions(
            [
                json.dumps({"question": "q?", "doc_ids": []}),
                json.dumps({"question": "q?", "doc_ids": ["a"], "extra": 1}),
            ]
        )
    assert "<questions>:1: doc_ids" in str(caught.value)
    assert "<questions>:2: extra" in str(caught.value)


def test_a_file_without_questions_is_an_error() -> None:
    with pytest.raises(QuestionFileError):
        parse_questions(["# nothing here"])


def test_golden_set_names_only_documents_of_the_sample_corpus() -> None:
    questions = load_questions(GOLDEN)
    assert len(questions) >= 50
    corpus = {p.relative_to(CORPUS).as_posix() for p in CORPUS.rglob("*") if p.is_file()}
    assert {doc for q in questions for doc in q.doc_ids} <= corpus
    assert len({q.question for q in questions}) == len(questions)


def test_compare_sets_a_valid_second_chunk_size() -> None:
    from cli.eval.session import alternative_chunk_tokens, chunk_size, chunking_for
    from shared.settings import ChunkingSettings

    tokens = ChunkingSettings(strategy="tokens")
    assert alternative_chunk_tokens(tokens.chunk_tokens) == 100
    assert alternative_chunk_tokens(100) == 200
    # The overlap shrinks only when the smaller size demands it (< size / 2).
    assert chunking_for(100, tokens).overlap_tokens == tokens.overlap_tokens
    assert chunking_for(40, tokens).overlap_tokens == 19
    # Word windows (the default) compare sizes in words; other settings are kept.
    words = ChunkingSettings(context_tokens=64)
    assert chunk_size(words) == words.chunk_words == 200
    smaller = chunking_for(alternative_chunk_tokens(chunk_size(words)), words)
    assert (smaller.strategy, smaller.chunk_words, smaller.overlap_words) == ("words", 100, 40)
    assert smaller.context_tokens == 64 and smaller.chunk_tokens == words.chunk_tokens
    assert chunking_for(60, words).overlap_words == 29


def test_passage_takes_one_to_three_alternative_key_strings() -> None:
    line = {"question": "q?", "doc_ids": ["a"], "passage": ["shlex.split(", "split(s"]}
    [question] = parse_questions([json.dumps(line)])
    assert question.passages == ("shlex.split(", "split(s")
    [single] = parse_questions([json.dumps({**line, "passage": "one"})])
    assert single.passages == ("one",)
    for bad in ([], ["a", "b", "c", "d"], ["ok", " "]):
        with pytest.raises(QuestionFileError) as caught:
            parse_questions([json.dumps({**line, "passage": bad})])
        assert "passage" in str(caught.value)
