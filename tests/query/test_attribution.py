"""Sentence-level attribution: splitting, lexical evidence, the decision, and
the sources event it produces (fake embedder for exact cases, the real
MiniLM for one realistic answer)."""

from __future__ import annotations

import json

import pytest

from services.query.answer.attribution import (
    Attributor,
    Evidence,
    attribute_with_vectors,
    decide,
    lexical_support,
    split_source,
    texts_to_embed,
    word_weights,
)
from services.query.answer.parts import QueryDeps
from services.query.answer.service import AnswerService
from services.query.answer.text import Sentence, split_sentences, terms
from services.query.transports.session import ConnectionSession
from shared.access import Principal
from shared.protocol import DoneEvent, SentenceSupport, SourcesEvent
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


def test_a_source_is_compared_line_by_line_and_as_a_whole() -> None:
    assert split_source("One thing. Another thing.") == [
        "One thing.",
        "Another thing.",
        "One thing. Another thing.",
    ]
    assert split_source("Only one.") == ["Only one."]


# ---- lexical evidence -----------------------------------------------------------


def test_terms_drop_function_words_and_mark_identifiers_and_numbers() -> None:
    found = terms("Call `ws.prepare(request)` with timeout_s=30 in the WebSocketResponse [2].")
    assert {"ws.prepare", "prepare", "request", "timeout_s", "websocketresponse"} <= found.words
    assert {"ws.prepare", "timeout_s", "websocketresponse"} <= found.special
    assert "the" not in found.words and "2" not in found.words  # markers are not evidence


def test_lexical_support_weighs_rare_and_specific_words() -> None:
    sources = [terms("Set PYTEST_TIMEOUT to 300 seconds."), terms("Seconds are units of time.")]
    weights = word_weights(sources)
    sentence = terms("The PYTEST_TIMEOUT variable takes seconds.")
    first, second = (lexical_support(sentence, s, weights) for s in sources)
    assert first > 0.5 > second > 0.0
    assert lexical_support(terms("nothing here"), sources[0], weights) == 0.0


# ---- the decision ---------------------------------------------------------------


def sentence(markers: tuple[int, ...] = ()) -> Sentence:
    return Sentence(0, 10, "some text.", markers)


@pytest.mark.parametrize(
    ("evidence", "markers", "claim_terms", "support", "sources", "dropped"),
    [
        ([Evidence(1, 0.9, 0.0)], (), 5, SentenceSupport.SUPPORTED, [1], []),
        ([Evidence(1, 0.6, 0.5)], (1,), 5, SentenceSupport.SUPPORTED, [1], []),
        ([Evidence(1, 0.3, 0.9)], (), 5, SentenceSupport.SUPPORTED, [1], []),
        (
            [Evidence(1, 0.5, 0.4)],
            (1,),
            5,
            SentenceSupport.SUPPORTED,
            [1],
            [],
        ),  # the marker's bonus
        ([Evidence(1, 0.5, 0.4)], (), 5, SentenceSupport.UNSUPPORTED, [], []),
        (
            [Evidence(1, 0.2, 0.1), Evidence(2, 0.9, 0.3)],
            (1,),
            5,
            SentenceSupport.SUPPORTED,
            [2],
            [1],
        ),
        ([Evidence(1, 0.2, 0.1)], (), 2, SentenceSupport.NO_CLAIM, [], []),
        ([Evidence(1, 0.2, 0.1)], (1,), 2, SentenceSupport.UNSUPPORTED, [], [1]),
        (
            [Evidence(1, 0.6, 0.6), Evidence(2, 0.95, 0.7)],
            (),
            5,
            SentenceSupport.SUPPORTED,
            [2, 1],
            [],
        ),
    ],
)
def test_decide(
    evidence: list[Evidence],
    markers: tuple[int, ...],
    claim_terms: int,
    support: SentenceSupport,
    sources: list[int],
    dropped: list[int],
) -> None:
    verdict = decide(sentence(markers), claim_terms, evidence)
    assert (verdict.support, verdict.sources, verdict.unsupported_markers) == (
        support,
        sources,
        dropped,
    )


def test_markers_naming_no_prompt_source_are_ignored() -> None:
    verdict = decide(sentence((7,)), 5, [Evidence(1, 0.9, 0.9)])
    assert verdict.markers == [] and verdict.sources == [1]


def test_attribute_with_vectors_uses_the_best_source_sentence() -> None:
    embedder = FakeEmbedder()
    sources = ["Llamas eat grass and hay. They live in herds.", "Servers are cooled to 18 degrees."]
    answer = "Llamas eat grass and hay [2]. The moon is made of green cheese."
    vectors = {t: embedder.vector(t) for t in texts_to_embed(answer, sources)}
    first, second = attribute_with_vectors(answer, sources, vectors)
    assert (first.support, first.sources, first.unsupported_markers) == (
        SentenceSupport.SUPPORTED,
        [1],
        [2],
    )
    assert second.support == SentenceSupport.UNSUPPORTED and second.sources == []


async def test_the_attributor_embeds_each_text_once() -> None:
    embedder = FakeEmbedder()
    attributor = Attributor(embedder)
    sources = ["Llamas eat grass and hay. They live in herds."]
    await attributor.prepare(sources)
    first = sum(len(call) for call in embedder.calls)
    result = await attributor.attribute("Llamas eat grass and hay.", sources)
    assert [s.support for s in result.sentences] == [SentenceSupport.SUPPORTED]
    assert sum(len(call) for call in embedder.calls) == first  # the sentence is a source line
    await attributor.attribute("Llamas live in herds of many.", sources)
    assert embedder.calls[-1] == ["Llamas live in herds of many."]
    assert result.ms >= 0.0


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


async def test_an_embedder_failure_falls_back_to_the_markers(
    service: AnswerService, model: FakeChatModel, embedder: FakeEmbedder
) -> None:
    model.scripts = [Script(tokens=["Twenty", " five", " days", " [1]", "."], hold_after=1)]
    sink = RecordingSink()
    session = ConnectionSession(service, sink, 1, Principal.single_user())
    await session.handle_frame(json.dumps({"action": "ask", "question": "vacation days?"}))
    await model.holding.wait()  # retrieval is done; the attribution's embedding fails
    embedder.fail_with = RuntimeError("embedder down")
    model.release()
    await session.wait_idle()
    (sources,) = sink.of("sources")
    assert isinstance(sources, SourcesEvent) and sources.sentences is None
    assert [c.number for c in sources.citations if c.cited] == [1]  # the [1] marker
    assert sink.kinds()[-1] == "done"


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

AIOHTTP_EXAMPLE = """An example using a simple server:

    async def wshandle(request):
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        async for msg in ws:
            if msg.type == web.WSMsgType.text:
                await ws.send_str("Hello, {}".format(msg.data))
        return ws

    app = web.Application()
    app.add_routes([web.get('/echo', wshandle)])
    web.run_app(app)"""
H11 = (
    "h11 is an HTTP/1.1 protocol library. It contains no IO code whatsoever. "
    "It is about 800 lines of code."
)


async def test_real_minilm_backs_grounded_sentences_and_flags_invented_ones() -> None:
    from shared.adapters.local_models.minilm import MiniLMEmbedder

    answer = (
        "Create a web.WebSocketResponse() in the handler and await ws.prepare(request) [1]. "
        "Set socket.GMT_URSIZECONDLESKERANDCREASE to enable the echo mode [1]. "
        "h11 contains no IO code [2]."
    )
    result = await Attributor(MiniLMEmbedder(threads=1)).attribute(answer, [AIOHTTP_EXAMPLE, H11])
    verdicts = [(s.support, s.sources, s.unsupported_markers) for s in result.sentences]
    assert verdicts == [
        (SentenceSupport.SUPPORTED, [1], []),
        (SentenceSupport.UNSUPPORTED, [], [1]),
        (SentenceSupport.SUPPORTED, [2], []),
    ]
