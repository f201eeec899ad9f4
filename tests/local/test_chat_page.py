"""The chat page in a real headless Chromium against a real ``rag serve``.

Debian's ``chromium`` (scripts/install-browser) driven by Playwright; never a
downloaded browser. Goes through upload, indexing status, ask, streaming,
sources, stop, delete and the sample button, and checks that a document with
``<script>`` in its text is shown as text. Leaves a screenshot in
test-artifacts/ for a human to look at.
"""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from tests.local.conftest import REPO, LocalServer

pytestmark = [pytest.mark.browser, pytest.mark.slow]

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ARTIFACTS = REPO / "test-artifacts"
INDEXING_LIMIT_MS = 300_000
ANSWER_LIMIT_MS = 300_000
# A round trip to the local server (connect, upload, load samples): generous,
# because on two busy cores the server may be embedding while the page waits.
SERVER_LIMIT_MS = 60_000

HOSTILE = (
    "Release notes for the Zephyr project. The codename Zephyr was chosen by Ada Okafor.\n"
    "Our template engine prints <script>window.__pwned = true</script> literally, and "
    '<img src=x onerror="window.__pwned = true"> too.\n'
)
SCRIPTED_CITATION = """() => {
  const turn = document.createElement("div");
  const answerNode = document.createElement("div");
  turn.append(answerNode);
  document.getElementById("transcript").append(turn);
  const text = "Ada chose it [1]. <b>not bold</b>";
  const answer = { requestId: "scripted", turn, answerNode, text };
  const citations = [{ n: 1, cited: true, doc_id: "notes.txt", title: "<i>Notes</i>",
                       excerpt: "<script>x()</script>", score: 0.5, page: null }];
  renderCitedAnswer(answer, citations);
  renderSources(answer, citations);
  const link = answerNode.querySelector("a.cite");
  const target = document.getElementById(link.getAttribute("href").slice(1));
  return { href: link.getAttribute("href"), target_text: target.querySelector("strong").textContent,
           bold_elements: turn.querySelectorAll("b, i, script").length,
           answer_text: answerNode.textContent };
}"""
TRAVEL = "# Travel\n\nTrains are booked through the Wayfarer portal; flights need approval.\n"


@pytest.fixture
async def page(tmp_path: Path) -> AsyncIterator[object]:
    if not Path(CHROMIUM).exists() and not shutil.which("chromium"):
        pytest.skip("Debian chromium is not installed: run scripts/install-browser")
    from playwright.async_api import async_playwright

    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        context = await browser.new_context(viewport={"width": 1280, "height": 900})
        yield await context.new_page()
        await browser.close()


async def test_chat_page_end_to_end(
    page: object, tmp_path: Path, server_factory: Callable[..., LocalServer]
) -> None:
    from playwright.async_api import Dialog, Page, expect

    assert isinstance(page, Page)
    server = server_factory(RAG_MODEL__MAX_NEW_TOKENS="160")
    server.start()
    alerts: list[str] = []

    async def on_dialog(dialog: Dialog) -> None:
        if dialog.type == "confirm":
            await dialog.accept()
        else:
            alerts.append(dialog.message)
            await dialog.dismiss()

    page.on("dialog", on_dialog)
    await page.goto(server.base_url + "/")
    await expect(page.locator("#connection")).to_have_attribute(
        "data-state", "open", timeout=SERVER_LIMIT_MS
    )

    # Upload two files and watch them get indexed.
    (tmp_path / "zephyr-notes.txt").write_text(HOSTILE)
    (tmp_path / "travel.md").write_text(TRAVEL)
    await page.set_input_files(
        "#file-input", [str(tmp_path / "zephyr-notes.txt"), str(tmp_path / "travel.md")]
    )
    await page.click("#upload")
    await expect(page.locator("#doc-message")).to_contain_text(
        "Queued 2 file(s)", timeout=SERVER_LIMIT_MS
    )
    for doc_id in ("zephyr-notes.txt", "travel.md"):
        row = page.locator(f'tr[data-doc-id="{doc_id}"] .state')
        await expect(row).to_have_text("indexed", timeout=INDEXING_LIMIT_MS)

    # Ask: tokens stream into the answer, then the sources with excerpts.
    await page.fill("#question", "Who chose the Zephyr codename?")
    await page.press("#question", "Enter")
    first = page.locator(".turn").nth(0)
    await expect(first.locator(".answer")).not_to_be_empty(timeout=ANSWER_LIMIT_MS)
    await expect(first.locator(".sources li").first).to_be_visible(timeout=ANSWER_LIMIT_MS)
    await expect(first.locator(".answer-footer .meta")).to_contain_text(
        "tokens", timeout=ANSWER_LIMIT_MS
    )
    excerpts = await first.locator(".sources .excerpt").all_text_contents()
    assert any("<script>window.__pwned = true</script>" in e for e in excerpts)
    assert await page.locator("#transcript script, #transcript img").count() == 0
    assert await page.evaluate("window.__pwned") is None
    for link in await first.locator("a.cite").all():
        target = (await link.get_attribute("href") or "#")[1:]
        assert await page.locator(f'[id="{target}"]').count() == 1

    # Stop a second answer while it streams: it ends as "stopped".
    await page.fill("#question", "Describe the Zephyr release notes in detail, at length.")
    await page.press("#question", "Enter")
    second = page.locator(".turn").nth(1)
    await expect(page.locator("#stop")).to_be_enabled()
    await expect(second.locator(".answer")).not_to_be_empty(timeout=ANSWER_LIMIT_MS)
    await page.click("#stop")
    await expect(second.locator(".answer-footer .meta")).to_contain_text("stopped", timeout=60_000)
    await expect(page.locator("#ask")).to_be_enabled()

    ARTIFACTS.mkdir(exist_ok=True)
    await page.screenshot(path=str(ARTIFACTS / "chat-page.png"), full_page=True)

    # The small local model rarely cites, so check [n] linking on a scripted answer
    # rendered by the page's own functions (still in the real browser).
    linked = await page.evaluate(SCRIPTED_CITATION)
    assert linked == {
        "href": "#src-scripted-1",
        "target_text": "[1] <i>Notes</i>",
        "bold_elements": 0,
        "answer_text": "Ada chose it [1]. <b>not bold</b>",
    }

    # Delete a document; load the samples.
    await page.click('tr[data-doc-id="travel.md"] button')
    await expect(page.locator('tr[data-doc-id="travel.md"]')).to_have_count(0, timeout=60_000)
    await page.click("#load-samples")
    await expect(page.locator("#doc-message")).to_contain_text(
        "sample document(s)", timeout=SERVER_LIMIT_MS
    )
    assert alerts == []
