"""The WebSocket protocol: round trips and every malformed frame -> InvalidAction + code."""

from __future__ import annotations

import json
from typing import Any

import pytest

from shared.errors import InvalidAction
from shared.protocol import (
    MAX_QUESTION_CHARS,
    AcceptedEvent,
    AskAction,
    CancelAction,
    Citation,
    DoneEvent,
    ErrorCode,
    ErrorEvent,
    PingAction,
    PongEvent,
    SourcesEvent,
    StopReason,
    TokenEvent,
    encode_event,
    ends_request,
    parse_client_action,
    parse_server_event,
)


@pytest.mark.parametrize(
    "action",
    [
        AskAction(
            action="ask",
            question="How many leave days?",
            request_id="q-1.a:b",
            k=7,
            filters={"team": ["hr", "it"], "year": 2024, "public": True, "ratio": 0.5},
            conversation_id="conv-1",
            mode="hybrid",
            preset="terse",
        ),
        AskAction(action="ask", question="Minimal?"),
        CancelAction(action="cancel", request_id="q-1"),
        PingAction(action="ping"),
    ],
    ids=["ask-full", "ask-minimal", "cancel", "ping"],
)
def test_every_action_round_trips(action: AskAction | CancelAction | PingAction) -> None:
    assert parse_client_action(action.model_dump_json()) == action
    assert parse_client_action(action.model_dump_json().encode()) == action


def test_ask_defaults() -> None:
    ask = parse_client_action('{"action": "ask", "question": "hi"}')
    assert isinstance(ask, AskAction)
    assert (ask.request_id, ask.k, ask.filters, ask.conversation_id, ask.v) == (
        None,
        None,
        {},
        None,
        1,
    )


EVENTS = [
    AcceptedEvent(request_id="q1", conversation_id="c1"),
    TokenEvent(request_id="q1", seq=0, text="Hello « wörld » 😀"),
    SourcesEvent(
        request_id="q1",
        citations=[
            Citation(
                n=1,
                cited=True,
                doc_id="a.md",
                title="A",
                uri="https://x.example/a",
                page=3,
                excerpt="…",
                score=0.83,
            ),
            Citation(n=None, cited=False, doc_id="b.md", excerpt="b", score=0.1),
        ],
    ),
    DoneEvent(
        request_id="q1",
        stop_reason=StopReason.END,
        prompt_tokens=612,
        completion_tokens=11,
        time_to_first_token_ms=420.5,
        total_ms=980.1,
    ),
    DoneEvent(
        request_id="q1",
        stop_reason=StopReason.CANCELLED,
        prompt_tokens=0,
        completion_tokens=0,
        total_ms=3.0,
    ),
    ErrorEvent(request_id=None, code=ErrorCode.INVALID_JSON, message="bad"),
    PongEvent(),
]


@pytest.mark.parametrize("event", EVENTS, ids=lambda e: type(e).__name__)
def test_every_event_round_trips(event: Any) -> None:
    frame = encode_event(event)
    assert parse_server_event(frame) == event
    assert json.loads(frame)["event"] == event.event


def test_events_keep_null_fields_so_clients_see_every_key() -> None:
    frame = json.loads(encode_event(ErrorEvent(code=ErrorCode.INTERNAL_ERROR, message="x")))
    assert frame == {"event": "error", "request_id": None, "code": "internal_error", "message": "x"}


def ask(**fields: Any) -> str:
    return json.dumps({"action": "ask", "question": "What?", **fields})


MALFORMED: dict[str, tuple[str | bytes, ErrorCode]] = {
    "not json": ("{nope", ErrorCode.INVALID_JSON),
    "invalid utf-8": (b'{"action": "ping", "x": "\xff"}', ErrorCode.INVALID_JSON),
    "array": ('["ask"]', ErrorCode.INVALID_JSON),
    "string": ('"ping"', ErrorCode.INVALID_JSON),
    "unknown action": ('{"action": "shout"}', ErrorCode.UNKNOWN_ACTION),
    "missing action": ('{"question": "What?"}', ErrorCode.UNKNOWN_ACTION),
    "action not a string": ('{"action": 1}', ErrorCode.UNKNOWN_ACTION),
    "missing question": ('{"action": "ask"}', ErrorCode.INVALID_REQUEST),
    "empty question": (ask(question=""), ErrorCode.INVALID_REQUEST),
    "question not a string": (ask(question=5), ErrorCode.INVALID_REQUEST),
    "oversize question": (
        ask(question="x" * (MAX_QUESTION_CHARS + 1)),
        ErrorCode.QUESTION_TOO_LONG,
    ),
    "filters not an object": (ask(filters=["team"]), ErrorCode.BAD_FILTER),
    "filter key with a space": (ask(filters={"bad key": "x"}), ErrorCode.BAD_FILTER),
    "nested filter value": (ask(filters={"team": {"eq": "hr"}}), ErrorCode.BAD_FILTER),
    "null filter value": (ask(filters={"team": None}), ErrorCode.BAD_FILTER),
    "k zero": (ask(k=0), ErrorCode.INVALID_REQUEST),
    "k too large": (ask(k=51), ErrorCode.INVALID_REQUEST),
    "k not a number": (ask(k="five"), ErrorCode.INVALID_REQUEST),
    "bad mode": (ask(mode="fuzzy"), ErrorCode.INVALID_REQUEST),
    "bad request id": (ask(request_id="has space"), ErrorCode.INVALID_REQUEST),
    "request id too long": (ask(request_id="r" * 65), ErrorCode.INVALID_REQUEST),
    "extra field on ask": (ask(temperature=2), ErrorCode.INVALID_REQUEST),
    "unknown protocol version": (ask(v=2), ErrorCode.INVALID_REQUEST),
    "cancel without request id": ('{"action": "cancel"}', ErrorCode.INVALID_REQUEST),
    "extra field on ping": ('{"action": "ping", "x": 1}', ErrorCode.INVALID_REQUEST),
}


@pytest.mark.parametrize(("frame", "code"), MALFORMED.values(), ids=MALFORMED.keys())
def test_every_malformed_frame_gets_its_error_code(frame: str | bytes, code: ErrorCode) -> None:
    with pytest.raises(InvalidAction) as raised:
        parse_client_action(frame)
    assert raised.value.code == code
    assert str(raised.value)


def test_invalid_request_names_the_field() -> None:
    with pytest.raises(InvalidAction, match="question"):
        parse_client_action('{"action": "ask"}')


def test_question_at_the_limit_is_accepted() -> None:
    action = parse_client_action(ask(question="x" * MAX_QUESTION_CHARS))
    assert isinstance(action, AskAction)


# ---- strict types and nesting (the parse function, shared by both transports) ----


@pytest.mark.parametrize(
    "fields",
    [
        {"k": "5"},
        {"k": True},
        {"k": 5.0},
        {"question": 5},
        {"conversation_id": 7},
        {"request_id": 12},
        {"mode": ["knn"]},
        {"v": "1"},
    ],
    ids=str,
)
def test_ask_fields_are_strict_as_the_schema_says(fields: dict[str, Any]) -> None:
    frame = json.dumps({"action": "ask", "question": "q", **fields})
    with pytest.raises(InvalidAction) as caught:
        parse_client_action(frame)
    assert caught.value.code == ErrorCode.INVALID_REQUEST


def test_filter_values_keep_their_json_types() -> None:
    frame = json.dumps(
        {"action": "ask", "question": "q", "filters": {"a": 1, "b": 0.5, "c": True, "d": ["x"]}}
    )
    ask = parse_client_action(frame)
    assert isinstance(ask, AskAction)
    assert ask.filters == {"a": 1, "b": 0.5, "c": True, "d": ["x"]}
    assert type(ask.filters["c"]) is bool


@pytest.mark.parametrize(("levels", "code"), [(100_000, "invalid_json"), (40, "invalid_request")])
def test_deep_nesting_is_a_protocol_error_not_a_crash(levels: int, code: str) -> None:
    frame = '{"action":"ask","question":"q","filters":' + "[" * levels + "]" * levels + "}"
    with pytest.raises(InvalidAction) as caught:
        parse_client_action(frame)
    assert caught.value.code == code
    assert "nests deeper" in str(caught.value)


def test_a_request_ends_with_its_done_or_an_error_no_done_follows() -> None:
    # One rule for the server (which adds the done) and every client (which waits for it).
    done = DoneEvent(
        request_id="r",
        stop_reason=StopReason.END,
        prompt_tokens=1,
        completion_tokens=1,
        total_ms=1.0,
    )
    assert ends_request(done)
    assert ends_request(ErrorEvent(request_id=None, code=ErrorCode.INVALID_JSON, message="x"))
    duplicate = ErrorEvent(request_id="r", code=ErrorCode.DUPLICATE_REQUEST, message="x")
    assert ends_request(duplicate)
    # A refusal under a usable id is followed by its done; the answer's events go on.
    assert not ends_request(ErrorEvent(request_id="r", code=ErrorCode.MODEL_FAILED, message="x"))
    assert not ends_request(AcceptedEvent(request_id="r", conversation_id="c"))
    assert not ends_request(TokenEvent(request_id="r", seq=0, text="a"))
    assert not ends_request(PongEvent())
