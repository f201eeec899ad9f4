"""The one Lambda runtime helper both functions use (shared/lambda_runtime.py).

GIVEN an app built on the first invocation, WHEN warm invocations follow,
THEN they run on the same event loop with the same app (clients bound to the
loop survive), and close() ends both so the next invocation starts cold.
"""

from __future__ import annotations

import asyncio
from typing import Any

from services.indexer import lambda_handler as indexer_lambda
from services.query.transports import lambda_handler as query_lambda
from shared.lambda_runtime import LambdaRuntime


class LoopBoundApp:
    """Stands for an app holding clients bound to the loop that made them."""

    def __init__(self) -> None:
        self.loops: list[asyncio.AbstractEventLoop] = []
        self.closed = False

    async def handle(self, event: dict[str, Any], context: Any) -> dict[str, Any]:
        self.loops.append(asyncio.get_running_loop())
        return {"n": event["n"]}

    async def close(self) -> None:
        self.closed = True


def test_warm_invocations_share_the_app_and_its_loop() -> None:
    built: list[LoopBoundApp] = []

    def build() -> LoopBoundApp:
        built.append(LoopBoundApp())
        return built[-1]

    runtime = LambdaRuntime(build)
    try:
        assert [runtime({"n": i}, None) for i in range(3)] == [{"n": 0}, {"n": 1}, {"n": 2}]
        (app,) = built
        assert runtime.app is app and len(set(app.loops)) == 1
    finally:
        runtime.close()
    assert app.closed and runtime.app is None
    runtime({"n": 3}, None)  # cold again: a new app on a new loop
    assert len(built) == 2 and built[1].loops[0] is not app.loops[0]
    runtime.close()


def test_both_functions_use_it() -> None:
    assert isinstance(indexer_lambda.handler, LambdaRuntime)
    assert isinstance(query_lambda.handler, LambdaRuntime)
