"""Issue #22 item 3: the chat page shows what is waking on a stack scaled to zero.

Protocol events are fed to the page's own ``onEvent`` in a real headless Chromium,
as test_chat_page_answers.py does (the waking path over a real socket is
tests/query/test_waking.py).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from tests.local.conftest import LocalServer
from tests.local.test_chat_page_answers import browser_page  # noqa: F401  (fixture)

pytestmark = [pytest.mark.browser, pytest.mark.slow]

STATUS = """([requestId, component, message, elapsed]) => onEvent({
  event: "status", request_id: requestId, component, state: "waking", message,
  typical_s: component === "model" ? 600 : 30, elapsed_s: elapsed })"""
START = """(requestId) => addTurn({ requestId, question: "What do llamas eat?", text: "" })"""
TOKEN = (
    """(requestId) => onEvent({ event: "token", request_id: requestId, seq: 0, text: "Hay." })"""
)
DONE = """(requestId) => onEvent({ event: "done", request_id: requestId, stop_reason: "error",
  prompt_tokens: 0, completion_tokens: 0, time_to_first_token_ms: null, total_ms: 840000 })"""
ERROR = """(requestId) => onEvent({ event: "error", request_id: requestId,
  code: "model_unavailable", message: "the model is still starting: try again in 2 minutes" })"""


async def test_waking_is_shown_updated_and_cleared_by_the_answer(
    browser_page: Any,  # noqa: F811
    server_factory: Callable[..., LocalServer],
) -> None:
    from playwright.async_api import expect

    server = server_factory()
    server.start()
    page = await browser_page.new_page()
    await page.goto(server.base_url + "/")
    await page.evaluate(START, "w1")
    waking = page.locator(".turn .waking")
    await page.evaluate(STATUS, ["w1", "search", "the search collection is waking", 3.2])
    await expect(waking).to_have_count(1)
    await expect(waking).to_have_text("the search collection is waking (waited 3 s)")
    await expect(waking).to_have_attribute("role", "status")  # read out by screen readers
    # a later status updates the same line instead of adding one
    await page.evaluate(STATUS, ["w1", "model", "the model is starting", 30.0])
    await expect(waking).to_have_count(1)
    await expect(waking).to_have_text("the model is starting (waited 30 s)")
    # the first token replaces the notice with the answer
    await page.evaluate(TOKEN, "w1")
    await expect(waking).to_have_count(0)
    await expect(page.locator(".turn .answer")).to_contain_text("Hay.")


async def test_a_wake_past_the_budget_leaves_the_try_again_error(
    browser_page: Any,  # noqa: F811
    server_factory: Callable[..., LocalServer],
) -> None:
    from playwright.async_api import expect

    server = server_factory()
    server.start()
    page = await browser_page.new_page()
    await page.goto(server.base_url + "/")
    await page.evaluate(START, "w2")
    await page.evaluate(STATUS, ["w2", "model", "the model is starting", 0.0])
    await expect(page.locator(".turn .waking")).to_have_text("the model is starting")
    await page.evaluate(ERROR, "w2")
    await page.evaluate(DONE, "w2")
    await expect(page.locator(".turn .waking")).to_have_count(0)
    await expect(page.locator(".turn .error")).to_contain_text("try again in 2 minutes")
