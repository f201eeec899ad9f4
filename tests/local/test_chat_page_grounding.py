"""The chat page in a real Chromium: a supported sentence's hover text quotes
the passage that backs it (sentences[].passages into the citation excerpt), and
an answer the sources do not support says so plainly, also after a reload."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from tests.local.conftest import LocalServer
from tests.local.test_chat_page import CHROMIUM, CHROMIUM_ARGS, SERVER_LIMIT_MS

pytestmark = [pytest.mark.browser, pytest.mark.slow]

EXCERPT = "SQLite was started in 2000. 🙂 The default for SQLITE_MAX_COLUMN is 2000. More."
ANSWER = "SQLITE_MAX_COLUMN defaults to 2000 [1]. It was written on Mars. Llamas can fly."
CITATION = {
    "n": 1,
    "cited": True,
    "doc_id": "limits.html",
    "title": "Limits",
    "uri": None,
    "page": None,
    "excerpt": EXCERPT,
    "score": 0.8,
    "number": 1,
}
FEED = """([answer, citation, sentences]) => {
  addTurn({ requestId: "g1", question: "columns?", text: "" });
  onEvent({ event: "token", request_id: "g1", seq: 0, text: answer });
  onEvent({ event: "sources", request_id: "g1", citations: [citation], sentences });
  onEvent({ event: "done", request_id: "g1", stop_reason: "end", prompt_tokens: 9,
            completion_tokens: 9, total_ms: 900, supported_share: 1 / 3,
            grounding: "unsupported" });
}"""


def sentence(text: str, support: str, passages: list[dict[str, int]]) -> dict[str, Any]:
    start = ANSWER.index(text)
    sources = [p["source"] for p in passages]
    return {
        "start": start,
        "end": start + len(text),
        "support": support,
        "sources": sources,
        "markers": [1] if "[1]" in text else [],
        "unsupported_markers": [],
        "passages": passages,
    }


@pytest.fixture
async def browser() -> AsyncIterator[Any]:
    if not Path(CHROMIUM).exists():
        pytest.skip("Debian chromium is not installed: run scripts/install-browser")
    from playwright.async_api import async_playwright

    async with async_playwright() as pw:
        launched = await pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield await launched.new_context(viewport={"width": 1280, "height": 900})
        await launched.close()


async def test_the_backing_passage_on_hover_and_the_plain_verdict(
    browser: Any, server_factory: Callable[..., LocalServer]
) -> None:
    from playwright.async_api import expect

    server = server_factory()
    server.start()
    page = await browser.new_page()
    await page.goto(server.base_url + "/")
    await expect(page.locator("#connection")).to_have_attribute(
        "data-state", "open", timeout=SERVER_LIMIT_MS
    )
    passage = "The default for SQLITE_MAX_COLUMN is 2000."
    start = len(list(EXCERPT[: EXCERPT.index(passage)]))  # code points, past the emoji
    sentences = [
        sentence(
            "SQLITE_MAX_COLUMN defaults to 2000 [1].",
            "supported",
            [{"source": 1, "start": start, "end": start + len(passage)}],
        ),
        sentence("It was written on Mars.", "unsupported", []),
        sentence("Llamas can fly.", "unsupported", []),
    ]
    await page.evaluate(FEED, [ANSWER, CITATION, sentences])
    first = page.locator('.turn .answer .sentence[data-sentence="0"]').first
    assert await first.get_attribute("title") == f"Supported by [1] Limits\n[1] “{passage}”"
    note = page.locator(".turn .grounding")
    await expect(note).to_have_text(
        "The sources do not support this answer (only 33% of its claims are backed)."
    )
    await page.reload()
    await expect(page.locator(".turn .grounding")).to_have_count(1)
