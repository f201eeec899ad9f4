"""The chat page's controls in a real headless Chromium against a real ``rag serve``:
the search-mode picker starts at the server's mode and sends the one picked,
the chat model is named (the tiny packaged one with the way to better
answers), sources show their rank instead of the raw fused score, ``code``
in double backticks renders as code, and the document panel has a filter and
wraps long names at their parts, not mid-word. Screenshot in test-artifacts/.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.local.conftest import LocalServer
from tests.local.test_chat_page import ARTIFACTS, SERVER_LIMIT_MS
from tests.local.test_chat_page_answers import browser_page

pytestmark = [pytest.mark.browser, pytest.mark.slow]
__all__ = ["browser_page"]  # the fixture, shared

FEED = """([requestId, answer, citations]) => {
  addTurn({ requestId, question: "q", text: "" });
  onEvent({ event: "token", request_id: requestId, seq: 0, text: answer });
  onEvent({ event: "sources", request_id: requestId, citations, sentences: null });
  onEvent({ event: "done", request_id: requestId, stop_reason: "end", prompt_tokens: 9,
            completion_tokens: 9, time_to_first_token_ms: 7, total_ms: 25 });
}"""


def citation(number: int, found_by: list[str], score: float) -> dict[str, Any]:
    return {
        "n": number,
        "cited": True,
        "doc_id": f"doc-{number}.txt",
        "title": None,
        "uri": None,
        "page": None,
        "excerpt": "text",
        "score": score,
        "number": number,
        "found_by": found_by,
    }


# The words of a cell's text that the layout split over two lines, and its line count.
WORDS_BROKEN = """(docId) => {
  // One task, so the panel's refresh cannot swap the row mid-measure.
  const cell = document.querySelector(`tr[data-doc-id="${docId}"] td.doc`);
  const broken = [];
  const lines = new Set();
  const walker = document.createTreeWalker(cell, NodeFilter.SHOW_TEXT);
  for (let node = walker.nextNode(); node; node = walker.nextNode()) {
    for (const m of node.textContent.matchAll(/\\S+/g)) {
      const range = document.createRange();
      range.setStart(node, m.index);
      range.setEnd(node, m.index + m[0].length);
      const tops = new Set([...range.getClientRects()].map((r) => Math.round(r.top)));
      if (tops.size > 1) broken.push(m[0]);
      tops.forEach((t) => lines.add(t));
    }
  }
  return { broken, lines: lines.size };
}"""
LONG_NAME = "troubleshooting-networking-configuration-for-administrators.txt"


async def sent_asks(frames: list[str]) -> list[dict[str, Any]]:
    return [f for f in map(json.loads, frames) if f.get("action") == "ask"]


async def test_mode_picker_model_notice_ranks_code_spans_and_document_filter(
    browser_page: Any, tmp_path: Path, server_factory: Callable[..., LocalServer]
) -> None:
    from playwright.async_api import expect

    server = server_factory(RAG_QUERY__SEARCH_MODE="knn")  # not the built-in default
    server.start()
    page = await browser_page.new_page()
    frames: list[str] = []

    def record(payload: str | bytes) -> None:
        frames.append(payload if isinstance(payload, str) else payload.decode())

    page.on("websocket", lambda ws: ws.on("framesent", record))
    await page.goto(server.base_url + "/")
    await expect(page.locator("#connection")).to_have_attribute(
        "data-state", "open", timeout=SERVER_LIMIT_MS
    )

    # The tiny packaged model is named, with the one step to better answers.
    await expect(page.locator("#model")).to_have_text("model: SmolLM2-135M-Instruct")
    await expect(page.locator("#model-hint")).to_be_visible()
    await expect(page.locator("#model-hint")).to_contain_text("scripts/run --model-url")
    await page.click("#model-hint-close")  # read: it stays away in this tab
    await page.reload()
    await expect(page.locator("#model")).to_have_text("model: SmolLM2-135M-Instruct")
    await expect(page.locator("#model-hint")).to_be_hidden()

    # The mode picker starts at the server's mode and sends whichever is picked.
    mode = page.locator("#mode")
    await expect(mode).to_have_value("knn")
    assert await mode.locator("option:checked").text_content() == "k-NN (server default)"
    assert await mode.locator("option").evaluate_all("os => os.map(o => o.value)") == [
        "hybrid",
        "knn",
    ]
    for picked in ("knn", "hybrid", "knn"):
        await mode.select_option(picked)
        await page.fill("#question", f"Asked in {picked} mode?")
        await page.press("#question", "Enter")
        # No documents yet: the server ends the answer at once (no_documents).
        await expect(page.locator("#ask")).to_be_enabled(timeout=SERVER_LIMIT_MS)
    assert [a["mode"] for a in await sent_asks(frames)] == ["knn", "hybrid", "knn"]

    # Sources: a rank and how each was found, not "score 0.033"; the raw score
    # is in the tooltip.
    citations = [
        citation(1, ["keyword", "vector"], 0.0328),
        citation(2, ["vector"], 0.0161),
        citation(3, ["keyword"], 0.0159),
    ]
    answer = "Run ``make html`` to build [1], then open `_build/index.html` in a browser [2]."
    await page.evaluate(FEED, ["s1", answer, citations])
    turn = page.locator(".turn").last
    ranks = await turn.locator(".sources .rank").all_text_contents()
    assert ranks == [
        "best match of 3 · found by words + meaning",
        "match 2 of 3 · found by meaning",
        "match 3 of 3 · found by words",
    ]
    assert "score" not in (await turn.locator(".sources").text_content() or "")
    tooltip = await turn.locator(".sources .rank").first.get_attribute("title") or ""
    assert "Raw score 0.0328" in tooltip and "best first" in tooltip

    # ``code`` (reStructuredText) is a code span: no stray backtick, nothing swallowed.
    rendered = turn.locator(".answer")
    assert await rendered.locator("code").all_text_contents() == ["make html", "_build/index.html"]
    assert await rendered.text_content() == (
        "Run make html to build [1], then open _build/index.html in a browser [2]."
    )
    await page.evaluate(FEED, ["s2", "A lone `` run stays text, `x` is code.", []])
    second = page.locator(".turn").last.locator(".answer")
    assert await second.text_content() == "A lone `` run stays text, x is code."
    assert await second.locator("code").all_text_contents() == ["x"]

    # The document panel: 36 rows, a filter box, long names wrapped at their parts.
    names = [LONG_NAME, *(f"note-{i:02}.txt" for i in range(35))]
    for name in names:
        (tmp_path / name).write_text(f"Document {name}.\n")
    await page.set_input_files("#file-input", [str(tmp_path / name) for name in names])
    await page.click("#upload")
    rows = page.locator("#doc-rows tr[data-doc-id]")
    await expect(rows).to_have_count(36, timeout=SERVER_LIMIT_MS)
    await expect(page.locator("#doc-count")).to_have_text("36 documents")
    await page.fill("#doc-filter", "note-1")
    await expect(page.locator("#doc-rows tr[data-doc-id]:visible")).to_have_count(10)
    await expect(page.locator("#doc-count")).to_have_text("10 of 36")
    await page.fill("#doc-filter", "ADMINISTRATORS")  # any case
    visible = page.locator("#doc-rows tr[data-doc-id]:visible")
    await expect(visible).to_have_count(1)
    await page.wait_for_timeout(2500)  # the panel refreshes (every 1 s while indexing)
    await expect(visible).to_have_count(1)
    assert await visible.get_attribute("data-doc-id") == LONG_NAME
    layout = await page.evaluate(WORDS_BROKEN, LONG_NAME)
    assert layout["lines"] > 1, layout  # the name is longer than the column...
    assert layout["broken"] == [], layout  # ...and wraps between its parts
    await page.fill("#doc-filter", "")
    await expect(page.locator("#doc-rows tr[data-doc-id]:visible")).to_have_count(36)

    ARTIFACTS.mkdir(exist_ok=True)
    await page.locator(".turn").nth(3).scroll_into_view_if_needed()
    await page.screenshot(path=str(ARTIFACTS / "chat-page-controls.png"))
