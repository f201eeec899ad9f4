"""Token frames: split to fit, coalesced while a send is in flight, ordered by seq."""

from __future__ import annotations

import asyncio

import pytest

from services.query.answer.streaming import TokenStreamer, split_text
from shared.ports import ServerEvent
from shared.protocol import TokenEvent, encode_event


@pytest.mark.parametrize("text", ["a" * 10_000, "ö€😀" * 3_000, '"\\\n\x01' * 4_000])
def test_split_text_pieces_fit_the_budget_and_rejoin(text: str) -> None:
    pieces = split_text(text, 1_000)
    assert "".join(pieces) == text
    for piece in pieces:
        encoded = encode_event(TokenEvent(request_id="r", seq=0, text=piece)).encode()
        assert len(encoded) <= 1_000 + len(encode_event(TokenEvent(request_id="r", seq=0, text="")))


class SlowSink:
    """Each send takes a while; records what was sent."""

    def __init__(self) -> None:
        self.events: list[ServerEvent] = []
        self.gate = asyncio.Event()
        self.sending = asyncio.Event()

    async def send(self, event: ServerEvent) -> None:
        self.events.append(event)
        self.sending.set()
        if len(self.events) == 1:
            await self.gate.wait()  # the first send is in flight until released


async def test_text_pushed_during_a_send_goes_out_as_one_frame() -> None:
    sink = SlowSink()
    streamer = TokenStreamer(sink, "r", interval_s=0.0, max_frame_bytes=30_000)
    sender = asyncio.create_task(streamer.run())
    streamer.push("first")
    await sink.sending.wait()
    for word in [" a", " b", " c"]:
        streamer.push(word)
    sink.gate.set()
    streamer.close()
    await sender
    texts = [(e.seq, e.text) for e in sink.events if isinstance(e, TokenEvent)]
    assert texts == [(0, "first"), (1, " a b c")]
    assert streamer.first_sent_at is not None


async def test_close_flushes_without_waiting_for_the_interval() -> None:
    sink = SlowSink()
    sink.gate.set()
    streamer = TokenStreamer(sink, "r", interval_s=3600.0, max_frame_bytes=30_000)
    sender = asyncio.create_task(streamer.run())
    streamer.push("one")
    await asyncio.sleep(0)
    streamer.push(" two")
    streamer.close()
    await asyncio.wait_for(sender, timeout=10)  # an hour-long interval would time out
    assert "".join(e.text for e in sink.events if isinstance(e, TokenEvent)) == "one two"
