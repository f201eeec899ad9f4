"""A scripted fake ChatModel: queued answers, failures, delays, cancel tracking.

    model = FakeChatModel(Script(tokens=["Hi", " there"]))
    model.queue(Script(tokens=["a", "b"], error=ModelError("boom"), error_after=1))
    model.queue(Script(tokens=list("abcdef"), hold_after=2))  # waits for release()

Each ``stream`` call takes the next queued script (the last one repeats when
the queue runs dry). Every call is recorded in ``model.streams`` with the
prompt, the params, how many tokens were sent and whether the consumer
closed the stream early (``cancelled``).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass

from shared.ports import GenerationParams, ModelEvent, ModelFinish, ModelToken
from shared.protocol import StopReason


@dataclass
class Script:
    tokens: Sequence[str] = ("Hello", ",", " world", ".")
    stop_reason: StopReason = StopReason.END
    error: Exception | None = None  # raised once ``error_after`` tokens were sent
    error_after: int = 0
    delay_s: float = 0.0  # awaited before each token
    hold_after: int | None = None  # after this many tokens, wait for release()
    prompt_tokens: int | None = None  # default: count_tokens(prompt)


@dataclass
class StreamRecord:
    prompt: str
    params: GenerationParams
    tokens_sent: int = 0
    finished: bool = False  # ModelFinish was yielded
    cancelled: bool = False  # the consumer left before ModelFinish
    failed: bool = False


class FakeChatModel:
    def __init__(self, *scripts: Script, family: str = "llama2") -> None:
        self.scripts: list[Script] = list(scripts) or [Script()]
        self.family = family
        self.streams: list[StreamRecord] = []
        self._gate = asyncio.Event()
        self.holding = asyncio.Event()  # set while a stream waits at hold_after

    def queue(self, script: Script) -> None:
        self.scripts.append(script)

    def release(self) -> None:
        """Let held streams continue."""
        self._gate.set()

    @property
    def cancelled(self) -> int:
        return sum(record.cancelled for record in self.streams)

    def count_tokens(self, text: str) -> int:
        return len(text.split())

    def stream(self, prompt: str, params: GenerationParams) -> AsyncIterator[ModelEvent]:
        script = self.scripts.pop(0) if len(self.scripts) > 1 else self.scripts[0]
        record = StreamRecord(prompt=prompt, params=params)
        self.streams.append(record)
        return self._run(script, record)

    async def _run(self, script: Script, record: StreamRecord) -> AsyncIterator[ModelEvent]:
        try:
            async for event in self._events(script, record):
                yield event
        except (GeneratorExit, asyncio.CancelledError):
            record.cancelled = True
            raise
        except Exception:
            record.failed = True
            raise

    async def _events(self, script: Script, record: StreamRecord) -> AsyncIterator[ModelEvent]:
        reason, text = script.stop_reason, ""
        for token in script.tokens:
            await self._before_token(script, record)
            if record.tokens_sent >= record.params.max_new_tokens:
                reason = StopReason.LENGTH
                break
            text += token
            if any(stop in text for stop in record.params.stop):
                reason = StopReason.STOP_SEQUENCE
                break
            record.tokens_sent += 1
            yield ModelToken(token)
        if script.error is not None and record.tokens_sent >= script.error_after:
            raise script.error
        record.finished = True
        prompt_tokens = script.prompt_tokens
        if prompt_tokens is None:
            prompt_tokens = self.count_tokens(record.prompt)
        yield ModelFinish(reason, prompt_tokens=prompt_tokens, completion_tokens=record.tokens_sent)

    async def _before_token(self, script: Script, record: StreamRecord) -> None:
        if script.hold_after is not None and record.tokens_sent == script.hold_after:
            self.holding.set()
            await self._gate.wait()
        if script.error is not None and record.tokens_sent == script.error_after:
            raise script.error
        if script.delay_s:
            await asyncio.sleep(script.delay_s)
        else:
            await asyncio.sleep(0)  # a real model yields to the loop between tokens
