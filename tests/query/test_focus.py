"""Query-focused extraction (the prompt budget for small local models): pure."""

from __future__ import annotations

from services.query.answer.context import fit_prompt
from services.query.answer.focus import GAP, clip, focus_sources, prose_view
from shared.documents import Chunk, SearchHit
from shared.settings import LOCAL_SOURCE_TOKENS, ModelSettings


def words(text: str) -> int:
    return len(text.split())


AIOHTTP = (
    "Async HTTP client and server framework for asyncio. "
    "It supports both client and server side of the HTTP protocol. "
    "To add a websocket endpoint, create a web.WebSocketResponse() in the handler. "
    "Then call await ws.prepare(request) and iterate over the messages. "
    "Middlewares and signals are pluggable. "
    "The project is licensed under Apache 2."
)
H11 = (
    "h11 is a pure-Python HTTP/1.1 protocol library. "
    "It contains no IO code whatsoever. "
    "You bring your own network layer, such as sockets or trio."
)


def test_keeps_the_sentences_sharing_rare_question_terms_in_original_order() -> None:
    question = "How do I add a websocket endpoint with WebSocketResponse?"
    aiohttp, _ = focus_sources(question, [AIOHTTP, H11], budget=16, count=words)
    # The websocket sentence, then (lent half its score) the one after it; the
    # framework blurb and the licence share no question term and are left out.
    assert aiohttp == (
        "… To add a websocket endpoint, create a web.WebSocketResponse() in the handler. "
        "Then call await ws.prepare(request) and iterate over the messages. …"
    )


def test_the_sources_share_the_budget_so_the_answering_one_may_take_more() -> None:
    question = "How do I add a websocket endpoint with WebSocketResponse?"
    aiohttp, h11 = focus_sources(question, [AIOHTTP, H11], budget=16, count=words)
    assert words(aiohttp) + words(h11) <= 32
    assert words(aiohttp) > 16
    # No h11 sentence holds a question term: it keeps its opening words only.
    assert h11.startswith("h11 is a")
    assert words(h11) <= 16 // 3 + 1


def test_gaps_between_kept_runs_are_marked() -> None:
    text = "Alpha uses zlib. Beta is unrelated here. Gamma also uses zlib. Delta ends."
    (shown,) = focus_sources("Which ones use zlib?", [text], budget=9, count=words)
    assert shown == "Alpha uses zlib." + GAP + "Gamma also uses zlib. …"


def test_sources_within_the_budget_are_unchanged() -> None:
    texts = ["Short one about zlib.", "Another short one."]
    assert focus_sources("zlib?", texts, budget=50, count=words) == texts


def test_words_meet_by_their_stem() -> None:
    text = "Fields may be annotated with types. Something else entirely is said here."
    (shown,) = focus_sources("Must I annotate every field?", [text], budget=7, count=words)
    assert shown.startswith("Fields may be annotated")


def test_a_sentence_longer_than_the_whole_budget_is_clipped_at_a_word() -> None:
    text = "zlib " + "compresses data very well indeed " * 10
    (shown,) = focus_sources("zlib?", [text], budget=6, count=words)
    assert shown.endswith(" …")
    assert words(shown) <= 6
    assert clip("one two three four", 3, words) == "one two …"
    assert clip("one two", 1, words) == ""


def test_prose_view_joins_wrapped_lines_but_keeps_block_structure() -> None:
    text = "A wrapped\nsentence here.\n\n- item one\n- item two\n    code line\nend"
    view = prose_view(text)
    assert len(view) == len(text)
    assert view.startswith("A wrapped sentence here.\n\n- item one\n- item two\n    code line")
    assert view.endswith("code line\nend")  # the line after indented code starts a block


def test_code_fences_stay_whole() -> None:
    text = "Install it:\n\n```bash\npip install selectolax[cython]\n```\n\nUnrelated words follow."
    (shown,) = focus_sources("install selectolax with cython?", [text], budget=9, count=words)
    assert "```bash\npip install selectolax[cython]\n```" in shown


def hit(chunk_id: str, text: str) -> SearchHit:
    chunk = Chunk(
        chunk_id=chunk_id, doc_id=chunk_id, generation="g", ordinal=0, text=text, start=0, end=1
    )
    return SearchHit(chunk=chunk, score=1.0)


def test_fit_prompt_shows_trimmed_sources_but_keeps_the_whole_chunks() -> None:
    hits = [hit("aiohttp", AIOHTTP), hit("h11", H11)]
    fitted = fit_prompt(
        family="chatml",
        system="sys",
        history=[],
        question="websocket endpoint with WebSocketResponse?",
        hits=hits,
        context_tokens=4096,
        max_new_tokens=100,
        count=words,
        source_tokens=16,
    )
    assert fitted.sources == hits  # citations and attribution use the whole chunks
    assert fitted.shown[0].startswith("… To add a websocket endpoint")
    assert fitted.shown[0] in fitted.prompt
    assert "licensed under Apache" not in fitted.prompt


def test_fit_prompt_without_a_budget_shows_whole_chunks() -> None:
    hits = [hit("aiohttp", AIOHTTP)]
    fitted = fit_prompt(
        family="chatml",
        system="sys",
        history=[],
        question="websocket?",
        hits=hits,
        context_tokens=4096,
        max_new_tokens=100,
        count=words,
    )
    assert fitted.shown == [AIOHTTP]
    assert AIOHTTP in fitted.prompt


def test_the_budget_defaults_on_for_the_local_backend_only() -> None:
    assert ModelSettings().prompt_source_tokens == LOCAL_SOURCE_TOKENS
    assert ModelSettings(source_tokens=0).prompt_source_tokens is None
    assert ModelSettings(source_tokens=120).prompt_source_tokens == 120
    for backend in ("sagemaker", "bedrock", "openai"):
        assert ModelSettings(backend=backend).prompt_source_tokens is None
    assert ModelSettings(backend="openai", source_tokens=80).prompt_source_tokens == 80
