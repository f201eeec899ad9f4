"""Sentence-level attribution: splitting, what a reader checks (specifics in
the same relation, polarity, words), the verdicts and passages it reports,
the answer's verdict, and the sources/done events it produces (a fake
embedder for the pipeline, the real MiniLM for the borderline meaning)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from services.query.answer.attribution import (
    Attributor,
    Meaning,
    attribute,
    distinct_claims,
    grounding,
    is_relevant,
    read_source,
    supported_share,
)
from services.query.answer.parts import QueryDeps
from services.query.answer.service import AnswerService
from services.query.answer.text import split_sentences, terms
from services.query.transports.session import ConnectionSession
from shared.access import Principal
from shared.protocol import DoneEvent, Grounding, SentenceSupport, SourcesEvent, StopReason
from shared.settings import Settings
from tests.fakes.chat_model import FakeChatModel, Script
from tests.fakes.embedder import FakeEmbedder
from tests.fakes.sink import RecordingSink


def spans(answer: str) -> list[str]:
    return [answer[s.start : s.end] for s in split_sentences(answer)]


# ---- splitting ----------------------------------------------------------------


def test_sentences_keep_their_markers_and_exact_offsets() -> None:
    answer = "Llamas eat hay [1]. They need water.[2] Python 3.12 is out! Is it? Yes."
    assert spans(answer) == [
        "Llamas eat hay [1].",
        "They need water.[2]",
        "Python 3.12 is out!",
        "Is it?",
        "Yes.",
    ]
    assert [s.markers for s in split_sentences(answer)][:2] == [(1,), (2,)]


def test_a_marker_after_the_full_stop_belongs_to_the_sentence_before() -> None:
    assert spans("Use web.get() here. [1] Then run it.") == [
        "Use web.get() here. [1]",
        "Then run it.",
    ]


def test_abbreviations_file_names_and_decimals_do_not_end_a_sentence() -> None:
    answer = "Install it, e.g. with pip, then edit config.toml and set 0.5 seconds. Done now."
    assert spans(answer) == [
        "Install it, e.g. with pip, then edit config.toml and set 0.5 seconds.",
        "Done now.",
    ]


def test_lines_list_items_and_code_fences() -> None:
    answer = (
        "Steps:\n- Install aiohttp.\n2. Run the server [1]\n```python\nx = 1. \ny = 2\n```\nDone."
    )
    assert spans(answer) == [
        "Steps:",
        "Install aiohttp.",
        "Run the server [1]",
        "```python\nx = 1. \ny = 2\n```",
        "Done.",
    ]
    assert split_sentences(answer)[2].markers == (1,)


def test_unicode_offsets_are_code_points() -> None:
    answer = "Ünïcode 🙂 works. Next one."
    (first, second) = split_sentences(answer)
    assert answer[second.start : second.end] == "Next one."
    assert first.end == len("Ünïcode 🙂 works.")


def test_empty_and_punctuation_only_answers_have_no_sentences() -> None:
    assert split_sentences("") == []
    assert split_sentences("  ...\n\n--- ") == []


def test_terms_drop_function_words_and_mark_identifiers_and_numbers() -> None:
    found = terms("Call `ws.prepare(request)` with timeout_s=30 in the WebSocketResponse [2].")
    assert {"ws.prepare", "prepare", "request", "timeout_s", "websocketresponse"} <= found.words
    assert {"ws.prepare", "timeout_s", "websocketresponse"} <= found.special
    assert "the" not in found.words and "2" not in found.words  # markers are not evidence


# ---- what a reader checks ---------------------------------------------------------

LIMITS = (
    "Maximum Number Of Columns\n\n"
    "The default setting for SQLITE_MAX_COLUMN is 2000. You can change it at compile time "
    "to values as large as 32767.\n\n"
    "By default, SQLite does a checkpoint automatically when the WAL file reaches a threshold "
    "size of 1000 pages.\n\n"
    "New in version 3.8: Added CUDA support.\n\n"
    "New in version 3.16: Added OBJC and OBJCXX support.\n\n"
    "WAL does not work over a network filesystem. Recursive triggers are enabled by default. "
    "Call project() near the top, but after calling cmake_minimum_required(). "
    "The result is set to the sum t=(time1 + duration - time2)."
)
OTHER = "Llamas eat grass and hay and need fresh water every day."


def verdict(sentence: str, sources: tuple[str, ...] = (LIMITS, OTHER)) -> SentenceSupport:
    (only,) = attribute(sentence, [read_source(s) for s in sources])
    return only.support


@pytest.mark.parametrize(
    "sentence",
    [
        "The default setting for SQLITE_MAX_COLUMN is 2000.",  # copied
        "SQLITE_MAX_COLUMN defaults to 2000, and can be raised to 32767 at compile time.",
        "SQLite checkpoints automatically once the WAL file reaches 1000 pages.",
        "CUDA support was added in 3.8, OBJC and OBJCXX in 3.16.",  # one passage per clause
        "WAL does not work over a network filesystem [1].",  # the negation is the source's
        "The sum is time1 + duration - time2.",
    ],
)
def test_what_the_passage_says_is_supported(sentence: str) -> None:
    assert verdict(sentence) == SentenceSupport.SUPPORTED


@pytest.mark.parametrize(
    "sentence",
    [
        "The default setting for SQLITE_MAX_COLUMN is 2001.",  # a number swapped
        "The default setting for SQLITE_MAX_COLUMNS is 2000.",  # an identifier swapped
        "The default setting for SQLITE_MAX_COLUMN is 32767.",  # another value of the source
        "SQLite checkpoints automatically once the WAL file reaches 1000 kilobytes.",  # the unit
        "CUDA support was added in 3.16, OBJC and OBJCXX in 3.8.",  # two versions exchanged
        "WAL works well over a network filesystem.",  # the negation dropped
        "Recursive triggers are disabled by default.",  # an opposite
        "Call project() near the top, but before calling cmake_minimum_required().",
        "The sum is time1 + duration + time2.",  # a formula's operator
        "The default setting for SQLITE_MAX_COLUMN is 2000 on Windows.",  # a name added
        "SQLite stores the column limit in a hidden sqlite_limits table.",  # invented
        "Windows is not supported.",  # a checkable claim, not a pleasantry
    ],
)
def test_what_no_passage_says_is_unsupported(sentence: str) -> None:
    assert verdict(sentence) == SentenceSupport.UNSUPPORTED


@pytest.mark.parametrize(
    "sentence",
    [
        "Hope this helps!",
        "Good luck with your experiments!",
        "Let me know if that works.",
        "Here is how:",
    ],
)
def test_pleasantries_claim_nothing(sentence: str) -> None:
    assert verdict(sentence) == SentenceSupport.NO_CLAIM


def test_a_fact_of_a_document_not_among_the_sources_is_unsupported_marker_or_not() -> None:
    assert verdict("Llamas need fresh water every day [1].", (LIMITS,)) == (
        SentenceSupport.UNSUPPORTED
    )


def test_a_marker_is_a_claim_to_test_not_evidence() -> None:
    answer = "The default setting for SQLITE_MAX_COLUMN is 2000 [2]. Its maximum is 99999 [1]."
    first, second = attribute(answer, [read_source(LIMITS), read_source(OTHER)])
    assert (first.support, first.sources, first.markers, first.unsupported_markers) == (
        SentenceSupport.SUPPORTED,
        [1],
        [2],
        [2],
    )
    assert (second.support, second.unsupported_markers) == (SentenceSupport.UNSUPPORTED, [1])


def test_markers_naming_no_prompt_source_are_ignored() -> None:
    (only,) = attribute(
        "The default setting for SQLITE_MAX_COLUMN is 2000 [7].", [read_source(LIMITS)]
    )
    assert only.markers == [] and only.sources == [1]


def test_the_backing_passage_is_named_by_offsets_into_the_excerpt() -> None:
    source = read_source(LIMITS)
    (only,) = attribute(
        "SQLite checkpoints automatically once the WAL file reaches 1000 pages.", [source]
    )
    (passage,) = only.passages
    assert passage.source == 1
    assert source.excerpt[passage.start : passage.end] == (
        "By default, SQLite does a checkpoint automatically when the WAL file reaches a "
        "threshold size of 1000 pages."
    )
    assert source.excerpt == " ".join(LIMITS.split())  # what a citation's excerpt holds


def test_the_passage_most_like_the_sentence_decides_its_polarity() -> None:
    source = (
        "Calling it inside a function is generally discouraged. "
        "Calling it inside a function limits some effects to the function scope."
    )
    assert verdict("Calling it inside a function is generally encouraged.", (source,)) == (
        SentenceSupport.UNSUPPORTED
    )
    assert verdict("Calling it inside a function is generally discouraged.", (source,)) == (
        SentenceSupport.SUPPORTED
    )


def test_a_clause_just_short_of_the_bar_is_settled_by_its_meaning() -> None:
    source = read_source(
        "Note that the command line option takes precedence over the cache variable."
    )
    sentence = "If both are given, the command line option beats the cache variable."
    asked = Meaning()
    (first,) = attribute(sentence, [source], meaning=asked)
    assert first.support == SentenceSupport.UNSUPPORTED and asked.wanted  # it needs vectors
    close = {text: np.array([1.0, 0.0]) for text in asked.wanted}
    (second,) = attribute(sentence, [source], meaning=Meaning(close))
    assert second.support == SentenceSupport.SUPPORTED
    far = {text: np.array([1.0, 0.0] if i else [0.0, 1.0]) for i, text in enumerate(asked.wanted)}
    (third,) = attribute(sentence, [source], meaning=Meaning(far))
    assert third.support == SentenceSupport.UNSUPPORTED


def test_a_swapped_number_is_not_forgiven_for_its_meaning() -> None:
    meaning = Meaning()
    attribute(
        "The default setting for SQLITE_MAX_COLUMN is 2001.", [read_source(LIMITS)], meaning=meaning
    )
    assert meaning.wanted == set()  # failed before any vector could count


# ---- the answer's verdict -----------------------------------------------------------


def test_a_repeated_sentence_counts_once() -> None:
    answer = (
        "The default setting for SQLITE_MAX_COLUMN is 2000. The moon is cheese. "
        "The default setting for SQLITE_MAX_COLUMN is 2000. The default setting for "
        "SQLITE_MAX_COLUMN is 2000. Hope this helps!"
    )
    sentences = attribute(answer, [read_source(LIMITS)])
    assert len(distinct_claims(answer, sentences)) == 2
    assert supported_share(answer, sentences) == 0.5


@pytest.mark.parametrize(
    ("share", "relevant", "expected"),
    [
        (1.0, True, Grounding.SUPPORTED),
        (0.5, True, Grounding.PARTLY),
        (0.4, True, Grounding.UNSUPPORTED),
        (1.0, False, Grounding.NO_SOURCES),
        (None, True, None),
    ],
)
def test_grounding(share: float | None, relevant: bool, expected: Grounding | None) -> None:
    assert grounding(share, relevant) == expected


def test_relevance_needs_a_word_or_specific_of_the_question() -> None:
    assert is_relevant("What is the default SQLITE_MAX_COLUMN?", LIMITS)
    assert is_relevant("when does a checkpoint happen", LIMITS)
    assert not is_relevant("What is the capital of France?", LIMITS)
    assert is_relevant("why?", LIMITS)  # nothing to compare: not a reason to refuse


async def test_the_attributor_reads_each_source_once_and_embeds_only_borderline_clauses() -> None:
    embedder = FakeEmbedder()
    attributor = Attributor(embedder)
    await attributor.prepare([LIMITS])
    result = await attributor.attribute(
        "The default setting for SQLITE_MAX_COLUMN is 2000.", [LIMITS]
    )
    assert [s.support for s in result.sentences] == [SentenceSupport.SUPPORTED]
    assert embedder.calls == []  # clear cases need no vector
    assert result.ms >= 0.0


async def test_only_a_borderline_clause_and_its_passage_are_embedded_in_one_call() -> None:
    embedder = FakeEmbedder()
    source = "Note that the command line option takes precedence over the cache variable."
    answer = (
        "The command line option takes precedence over the cache variable. "
        "If both are given, the command line option beats the cache variable."
    )
    result = await Attributor(embedder).attribute(answer, [source])
    (batch,) = embedder.calls  # one call, for the second sentence and its passage only
    assert sorted(batch) == sorted(
        [
            "If both are given, the command line option beats the cache variable.",
            source,
        ]
    )
    assert result.sentences[0].support == SentenceSupport.SUPPORTED


# ---- in the answer pipeline -------------------------------------------------------


async def answer_events(service: AnswerService, question: str) -> RecordingSink:
    sink = RecordingSink()
    session = ConnectionSession(service, sink, 1, Principal.single_user())
    await session.handle_frame(json.dumps({"action": "ask", "question": question}))
    await session.wait_idle()
    return sink


async def test_sources_event_carries_sentences_and_cited_means_supported(
    service: AnswerService, model: FakeChatModel
) -> None:
    answer = (
        "Employees get twenty five vacation days per year [2]. "
        "Unused vacation days expire at the end of March [1]. "
        "Llamas can fly to the moon."
    )
    model.scripts = [Script(tokens=[w + " " for w in answer.split(" ")[:-1]] + ["moon."])]
    sink = await answer_events(service, "How many vacation days do employees get?")
    (sources,) = sink.of("sources")
    assert isinstance(sources, SourcesEvent) and sources.sentences is not None
    text = "".join(getattr(e, "text", "") for e in sink.of("token"))
    assert [text[s.start : s.end] for s in sources.sentences] == [
        "Employees get twenty five vacation days per year [2].",
        "Unused vacation days expire at the end of March [1].",
        "Llamas can fly to the moon.",
    ]
    by_number = {c.number: c for c in sources.citations}
    vacation = next(n for n, c in by_number.items() if c.excerpt.startswith("Employees get"))
    expiry = next(n for n, c in by_number.items() if c.excerpt.startswith("Unused vacation"))
    first, second, third = sources.sentences
    assert vacation in first.sources and second.sources == [expiry]
    assert third.support == SentenceSupport.UNSUPPORTED and third.sources == []
    assert {c.number for c in sources.citations if c.cited} == {*first.sources, expiry}
    assert all(c.n == c.number for c in sources.citations if c.cited)
    assert all(c.n is None for c in sources.citations if not c.cited)
    (done,) = sink.of("done")
    assert isinstance(done, DoneEvent) and done.attribution_ms is not None


async def test_an_embedder_failure_leaves_the_lexical_verdicts() -> None:
    embedder = FakeEmbedder()
    embedder.fail_with = RuntimeError("embedder down")
    source = "Note that the command line option takes precedence over the cache variable."
    answer = "If both are given, the command line option beats the cache variable."
    result = await Attributor(embedder).attribute(answer, [source])
    assert [s.support for s in result.sentences] == [SentenceSupport.UNSUPPORTED]


async def test_done_carries_the_share_of_backed_claims_and_the_verdict(
    service: AnswerService, model: FakeChatModel
) -> None:
    answer = (
        "Employees get twenty five vacation days per year. Llamas can fly to the moon. "
        "Llamas can fly to the moon. The moon is made of cheese. Hope this helps!"
    )
    model.scripts = [Script(tokens=[answer])]
    sink = await answer_events(service, "How many vacation days do employees get?")
    (done,) = sink.of("done")
    assert isinstance(done, DoneEvent)
    assert done.supported_share == pytest.approx(1 / 3)  # the repeated sentence counts once
    assert done.grounding == Grounding.UNSUPPORTED


async def test_cited_sources_excerpts_reach_their_backing_passages(
    settings: Settings, deps: QueryDeps, model: FakeChatModel
) -> None:
    settings.query.excerpt_chars = 20
    model.scripts = [Script(tokens=["Unused vacation days expire at the end of March [1]."])]
    sink = await answer_events(AnswerService(settings, deps), "When do vacation days expire?")
    (sources,) = sink.of("sources")
    assert isinstance(sources, SourcesEvent) and sources.sentences is not None
    (sentence,) = sources.sentences
    (passage,) = sentence.passages
    citation = next(c for c in sources.citations if c.number == passage.source)
    assert citation.excerpt[passage.start : passage.end] == (
        "Unused vacation days expire at the end of March of the following year."
    )
    assert all(len(c.excerpt) <= 21 for c in sources.citations if not c.cited)


async def test_no_relevant_source_is_said_and_can_be_refused(
    settings: Settings, deps: QueryDeps, model: FakeChatModel
) -> None:
    model.scripts = [Script(tokens=["Paris is the capital of France."])]
    sink = await answer_events(AnswerService(settings, deps), "What is the capital of France?")
    (done,) = sink.of("done")
    assert isinstance(done, DoneEvent) and done.grounding == Grounding.NO_SOURCES
    settings.query.refuse_without_sources = True
    model.scripts = [Script(tokens=["Paris is the capital of France."])]
    sink = await answer_events(AnswerService(settings, deps), "What is the capital of France?")
    assert sink.kinds() == ["accepted", "token", "sources", "done"]
    (done,) = sink.of("done")
    assert isinstance(done, DoneEvent)
    assert (done.stop_reason, done.grounding, done.completion_tokens) == (
        StopReason.REFUSED,
        Grounding.NO_SOURCES,
        0,
    )
    assert model.scripts  # the model was not called
    text = "".join(getattr(e, "text", "") for e in sink.of("token"))
    assert "do not cover this question" in text


async def test_attribution_can_be_switched_off(
    settings: Settings, deps: QueryDeps, model: FakeChatModel
) -> None:
    settings.query.attribution = False
    model.scripts = [Script(tokens=["Llamas", " can", " fly", " [1]", "."])]
    sink = await answer_events(AnswerService(settings, deps), "vacation days?")
    (sources,) = sink.of("sources")
    assert isinstance(sources, SourcesEvent) and sources.sentences is None
    assert [c.number for c in sources.citations if c.cited] == [1]  # the marker, unchecked


async def test_no_attribution_for_a_cancelled_answer(
    service: AnswerService, model: FakeChatModel
) -> None:
    model.scripts = [Script(tokens=list("abcdef"), hold_after=2)]
    sink = RecordingSink()
    session = ConnectionSession(service, sink, 1, Principal.single_user())
    await session.handle_frame(json.dumps({"action": "ask", "question": "x", "request_id": "c"}))
    await model.holding.wait()
    await session.handle_frame(json.dumps({"action": "cancel", "request_id": "c"}))
    await session.wait_idle()
    (sources,) = sink.of("sources")
    assert isinstance(sources, SourcesEvent) and sources.sentences is None


# ---- the real embedder ------------------------------------------------------------


async def test_real_minilm_settles_a_paraphrase_but_not_an_invented_fact() -> None:
    from shared.adapters.local_models.minilm import MiniLMEmbedder

    source = "Note that the command line option takes precedence over the cache variable."
    answer = (
        "If both are given, the command line option beats the cache variable. "
        "If both are given, the cache variable is written to the command line log."
    )
    result = await Attributor(MiniLMEmbedder(threads=1)).attribute(answer, [source])
    assert [s.support for s in result.sentences] == [
        SentenceSupport.SUPPORTED,
        SentenceSupport.UNSUPPORTED,
    ]
