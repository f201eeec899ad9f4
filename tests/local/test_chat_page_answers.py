"""The chat page's answer rendering in a real headless Chromium, served by a
real ``rag serve``: safe Markdown, sentence attribution (marks, click to see
the sources), the copy button, dark mode, the conversation surviving a
reload, auto-scroll only at the bottom, document titles and the "no
documents" hint. Protocol events are fed to the page's own ``onEvent`` (the
small local model's answers are too unpredictable for exact checks; the
end-to-end path over the WebSocket is test_chat_page.py). Screenshots go to
test-artifacts/.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from tests.local.conftest import LocalServer
from tests.local.test_chat_page import (
    ARTIFACTS,
    CHROMIUM,
    CHROMIUM_ARGS,
    INDEXING_LIMIT_MS,
    SERVER_LIMIT_MS,
)

pytestmark = [pytest.mark.browser, pytest.mark.slow]

ANSWER = (
    "Create a **web.WebSocketResponse()** in the handler [1]. "
    "Use socket.GMT_FOO to echo [2].\n\n"
    "Steps:\n- Install `aiohttp`.\n- See [the docs](https://docs.aiohttp.org) "
    "or [this](javascript:alert(1)).\n\n"
    "```python\nws = web.WebSocketResponse()\n```\n"
    "Note: <script>window.__pwned = true</script> and <b>not bold</b> 🙂 done."
)


def spans(answer: str) -> list[dict[str, Any]]:
    """Sentence spans in code points, as the server sends them."""

    def at(text: str) -> tuple[int, int]:
        start = answer.index(text)
        return start, start + len(text)

    def span(text: str, support: str, sources: list[int], markers: list[int]) -> dict[str, Any]:
        start, end = at(text)
        bad = [n for n in markers if n not in sources]
        return {
            "start": start,
            "end": end,
            "support": support,
            "sources": sources,
            "markers": markers,
            "unsupported_markers": bad,
        }

    return [
        span("Create a **web.WebSocketResponse()** in the handler [1].", "supported", [1, 2], [1]),
        span("Use socket.GMT_FOO to echo [2].", "unsupported", [], [2]),
        span("Steps:", "no_claim", [], []),
        span(
            "Note: <script>window.__pwned = true</script> and <b>not bold</b> 🙂 done.",
            "unsupported",
            [],
            [],
        ),
    ]


CITATIONS = [
    {
        "n": 1,
        "cited": True,
        "doc_id": "python-packages/aiohttp.txt",
        "title": "aiohttp",
        "uri": None,
        "page": None,
        "excerpt": "ws = web.WebSocketResponse()",
        "score": 0.8,
        "number": 1,
    },
    {
        "n": 2,
        "cited": True,
        "doc_id": "python-packages/h11.txt",
        "title": "<i>h11</i>",
        "uri": None,
        "page": None,
        "excerpt": "<script>x()</script>",
        "score": 0.5,
        "number": 2,
    },
    {
        "n": None,
        "cited": False,
        "doc_id": "python-packages/idna.md",
        "title": None,
        "uri": None,
        "page": None,
        "excerpt": "idna",
        "score": 0.2,
        "number": 3,
    },
]

FEED = """([requestId, question, tokens, citations, sentences]) => {
  addTurn({ requestId, question, text: "" });
  for (const [seq, text] of tokens.entries()) {
    onEvent({ event: "token", request_id: requestId, seq, text });
  }
  onEvent({ event: "sources", request_id: requestId, citations, sentences });
  onEvent({ event: "done", request_id: requestId, stop_reason: "end", prompt_tokens: 900,
            completion_tokens: tokens.length, time_to_first_token_ms: 700, total_ms: 2500 });
}"""


@pytest.fixture
async def browser_page() -> AsyncIterator[Any]:
    if not Path(CHROMIUM).exists():
        pytest.skip("Debian chromium is not installed: run scripts/install-browser")
    from playwright.async_api import async_playwright

    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        context = await browser.new_context(viewport={"width": 1280, "height": 900})
        yield context
        await browser.close()


async def feed(page: Any, request_id: str, question: str, answer: str, sentences: Any) -> None:
    tokens = [answer[i : i + 7] for i in range(0, len(answer), 7)]
    await page.evaluate(FEED, [request_id, question, tokens, CITATIONS, sentences])


async def test_answers_render_safely_with_attribution_and_survive_a_reload(
    browser_page: Any, tmp_path: Path, server_factory: Callable[..., LocalServer]
) -> None:
    from playwright.async_api import expect

    server = server_factory()
    server.start()
    await browser_page.grant_permissions(["clipboard-read", "clipboard-write"])
    page = await browser_page.new_page()
    await page.goto(server.base_url + "/")
    await expect(page.locator("#connection")).to_have_attribute(
        "data-state", "open", timeout=SERVER_LIMIT_MS
    )

    # No documents: the hint shows; it goes away once there is one, shown by title.
    await expect(page.locator("#no-docs-hint")).to_be_visible()
    (tmp_path / "guide.md").write_text("# Llama care guide\n\nLlamas eat hay.\n")
    await page.set_input_files("#file-input", str(tmp_path / "guide.md"))
    await page.click("#upload")
    row = page.locator('tr[data-doc-id="guide.md"]')
    await expect(row).to_have_count(1, timeout=SERVER_LIMIT_MS)
    await expect(page.locator("#no-docs-hint")).to_be_hidden()
    await expect(row.locator(".state")).to_have_text("indexed", timeout=INDEXING_LIMIT_MS)
    await expect(row.locator(".title")).to_have_text("Llama care guide")
    await expect(row.locator(".doc-id")).to_have_text("guide.md")

    await feed(page, "a1", "How do I echo over a websocket?", ANSWER, spans(ANSWER))
    answer = page.locator(".turn .answer").first
    # Markdown as DOM nodes; model HTML stays text; only http(s) links are links.
    assert await answer.locator("strong").first.text_content() == "web.WebSocketResponse()"
    assert await answer.locator("ul li").count() == 2
    assert await answer.locator("pre code").text_content() == "ws = web.WebSocketResponse()"
    assert await answer.locator("li code").first.text_content() == "aiohttp"
    links = await answer.locator("a:not(.cite)").evaluate_all("as => as.map(a => a.href)")
    assert links == ["https://docs.aiohttp.org/"]
    assert await page.locator("#transcript script, #transcript b, #transcript i").count() == 0
    assert await page.evaluate("window.__pwned") is None
    assert "<script>window.__pwned = true</script>" in (await answer.text_content() or "")
    assert "🙂 done." in (await answer.text_content() or "")

    # Unsupported sentences are marked; [2] whose source does not back its sentence too.
    unsupported = answer.locator(".sentence.unsupported")
    assert await unsupported.count() >= 2
    second = answer.locator('.sentence[data-sentence="1"]')
    assert "".join(await second.all_text_contents()) == "Use socket.GMT_FOO to echo [2]."
    assert await second.first.evaluate("s => s.classList.contains('unsupported')")
    assert await answer.locator("a.cite.unsupported").text_content() == "[2]"
    assert "Not supported by the sources" in (await unsupported.first.get_attribute("title") or "")
    # Click a supported sentence: its sources light up and the page says what backs it.
    # [2] backs the first sentence too though the model did not cite it: shown after it.
    assert await answer.locator("sup.support a.cite").all_text_contents() == ["[2]"]
    await answer.locator('.sentence[data-sentence="0"]').first.click()
    info = page.locator(".sentence-info").first
    await expect(info).to_have_text("Supported by [1] aiohttp, [2] <i>h11</i>")
    highlighted = page.locator(".sources li.highlight")
    assert await highlighted.evaluate_all("ls => ls.map(l => l.dataset.n)") == ["1", "2"]
    await unsupported.first.click()
    await expect(info).to_contain_text("Not supported by the sources")

    # Copy puts the raw answer (Markdown) on the clipboard.
    await page.locator("button.copy").first.click()
    await expect(page.locator("button.copy").first).to_have_text("Copied")
    assert await page.evaluate("navigator.clipboard.readText()") == ANSWER

    ARTIFACTS.mkdir(exist_ok=True)
    await page.screenshot(path=str(ARTIFACTS / "chat-answer-light.png"), full_page=True)
    await page.emulate_media(color_scheme="dark")
    background = await page.evaluate("getComputedStyle(document.body).backgroundColor")
    assert background == "rgb(21, 24, 29)"
    await page.screenshot(path=str(ARTIFACTS / "chat-answer-dark.png"), full_page=True)
    await page.emulate_media(color_scheme="light")
    assert await page.evaluate("getComputedStyle(document.body).backgroundColor") == (
        "rgb(246, 247, 249)"
    )

    # Reload: the conversation (and its attribution) is still there.
    conversation = await page.evaluate("state.conversationId")
    await page.reload()
    await expect(page.locator(".turn")).to_have_count(1)
    again = page.locator(".turn .answer").first
    assert await again.locator(".sentence.unsupported").count() == await unsupported.count()
    assert await page.locator(".turn .question").text_content() == "How do I echo over a websocket?"
    assert await page.evaluate("state.conversationId") == conversation
    assert await page.locator("#empty-hint").is_hidden()
    stored = json.loads(await page.evaluate("sessionStorage.getItem('rag-chat-v1')"))
    assert stored["turns"][0]["text"] == ANSWER


async def test_auto_scroll_follows_only_a_reader_at_the_bottom(
    browser_page: Any, server_factory: Callable[..., LocalServer]
) -> None:
    server = server_factory()
    server.start()
    page = await browser_page.new_page()
    await page.goto(server.base_url + "/")
    long = "\n\n".join(f"Paragraph {i} of a long answer." for i in range(60))
    await feed(page, "b1", "A long one", long, [])
    transcript = page.locator("#transcript")
    at_bottom = "t => t.scrollHeight - t.scrollTop - t.clientHeight < 40"
    assert await transcript.evaluate(at_bottom)  # followed the answer while at the bottom
    # The reader scrolls up to read: a new answer streaming in leaves them there.
    await transcript.evaluate("t => { t.scrollTop = 0; }")
    await page.wait_for_timeout(200)  # the scroll event
    await feed(page, "b2", "Another", long, [])
    assert await transcript.evaluate("t => t.scrollTop") == 0
    # Back at the bottom, the page follows again.
    await transcript.evaluate("t => { t.scrollTop = t.scrollHeight; }")
    await page.wait_for_timeout(200)
    await feed(page, "b3", "A third", long, [])
    assert await transcript.evaluate(at_bottom)
