"""The WebSocket protocol, version 1, shared by the Lambda and the local server.

Clients send JSON objects routed on ``action`` (API Gateway's
``$request.body.action``): ``ask``, ``cancel``, ``ping``. The server answers
with JSON objects tagged by ``event``: ``accepted``, ``token``, ``sources``,
``done``, ``error``, ``pong``. Per ``ask`` the order is always::

    accepted, token*, sources, done        (or: accepted?, token*, error, done)

``error`` never closes the connection. ``docs/schema/`` holds the JSON Schema
generated from these models (``python -m shared.schema``).
"""

from __future__ import annotations

import json
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from shared.errors import InvalidAction
from shared.ingest import MetadataKey

PROTOCOL_VERSION: Literal[1] = 1
MAX_QUESTION_CHARS = 4000
MAX_K = 50
# No valid frame nests deeper than filters' lists (4 levels); anything much
# deeper is rejected before validation, so it can't exhaust the stack.
MAX_FRAME_DEPTH = 16

RequestId = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._:-]+$")]
FilterValue = str | int | float | bool
# {"team": "hr"} matches metadata.team == "hr"; {"team": ["hr", "it"]} matches either.
Filters = dict[MetadataKey, FilterValue | list[FilterValue]]


class ErrorCode(StrEnum):
    INVALID_JSON = "invalid_json"
    UNKNOWN_ACTION = "unknown_action"
    INVALID_REQUEST = "invalid_request"
    QUESTION_TOO_LONG = "question_too_long"
    BAD_FILTER = "bad_filter"
    UNKNOWN_PRESET = "unknown_preset"
    TOO_MANY_REQUESTS = "too_many_requests"
    DUPLICATE_REQUEST = "duplicate_request"
    UNKNOWN_REQUEST = "unknown_request"
    RETRIEVAL_FAILED = "retrieval_failed"
    MODEL_FAILED = "model_failed"
    MODEL_UNAVAILABLE = "model_unavailable"  # the endpoint is not in service (yet)
    NO_DOCUMENTS = "no_documents"  # nothing has been indexed yet
    FRAME_TOO_LARGE = "frame_too_large"
    INTERNAL_ERROR = "internal_error"


class StopReason(StrEnum):
    END = "end"  # the model finished its answer
    LENGTH = "length"  # max new tokens reached
    STOP_SEQUENCE = "stop_sequence"
    CANCELLED = "cancelled"  # the client sent cancel
    ERROR = "error"  # an error event preceded this done
    REFUSED = "refused"  # no relevant source and query.refuse_without_sources: no model call


class Grounding(StrEnum):
    """The answer-level verdict of the attribution (docs/protocol.md, "Attribution")."""

    SUPPORTED = "supported"  # every claim backed by a source
    PARTLY = "partly_supported"  # at least half of the claims backed
    UNSUPPORTED = "unsupported"  # most claims backed by no source
    NO_SOURCES = "no_sources"  # retrieval found no source relevant to the question


class _Msg(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# ---- client actions ---------------------------------------------------------


class AskAction(_Msg):
    action: Literal["ask"]
    question: str = Field(min_length=1, max_length=MAX_QUESTION_CHARS)
    request_id: RequestId | None = Field(
        default=None, description="Echoed on every event of this answer; generated if absent."
    )
    k: int | None = Field(default=None, ge=1, le=MAX_K, description="Chunks to retrieve.")
    filters: Filters = Field(default_factory=dict, description="Metadata equality filters.")
    conversation_id: str | None = Field(default=None, min_length=1, max_length=128)
    mode: Literal["knn", "hybrid"] | None = Field(default=None, description="Search mode.")
    preset: str | None = Field(default=None, max_length=64, description="System prompt preset.")
    v: Literal[1] = 1


class CancelAction(_Msg):
    action: Literal["cancel"]
    request_id: RequestId
    v: Literal[1] = 1


class PingAction(_Msg):
    action: Literal["ping"]
    v: Literal[1] = 1


ClientAction = Annotated[AskAction | CancelAction | PingAction, Field(discriminator="action")]
_CLIENT: TypeAdapter[AskAction | CancelAction | PingAction] = TypeAdapter(ClientAction)
KNOWN_ACTIONS = ("ask", "cancel", "ping")
_REQUEST_ID: TypeAdapter[str] = TypeAdapter(RequestId)


# ---- server events ----------------------------------------------------------


class AcceptedEvent(_Msg):
    event: Literal["accepted"] = "accepted"
    request_id: str
    conversation_id: str | None = None


class TokenEvent(_Msg):
    event: Literal["token"] = "token"
    request_id: str
    seq: int = Field(ge=0, description="0, 1, 2… per answer; one event may carry several tokens")
    text: str


class Citation(_Msg):
    n: int | None = Field(
        description="The [n] the answer cites it by; null if not cited (supports no sentence)."
    )
    cited: bool = Field(description="True if it supports at least one answer sentence.")
    doc_id: str
    title: str | None = None
    uri: str | None = None
    page: int | None = None
    excerpt: str
    score: float = Field(
        description="The retriever's raw score: reciprocal-rank fusion (about 0.01-0.04) in "
        "hybrid mode, the index's similarity in k-NN mode. Only orders the sources of one "
        "answer: show the rank (number) instead."
    )
    number: int | None = Field(
        default=None,
        ge=1,
        description="The source's number in the prompt (what [n] markers and "
        "sentences[].sources refer to), cited or not; sources are numbered in retrieval "
        "order, so it is also the source's rank (1 = the best match).",
    )
    found_by: list[Literal["keyword", "vector"]] = Field(
        default_factory=list,
        description="Which searches returned it: keyword (BM25) and/or vector (k-NN).",
    )


class SentenceSupport(StrEnum):
    SUPPORTED = "supported"  # at least one source backs it
    UNSUPPORTED = "unsupported"  # no source backs it: show it as unverified
    NO_CLAIM = "no_claim"  # too short to check ("Here is how:")


class BackingPassage(_Msg):
    source: int = Field(ge=1, description="The source's number in the prompt (Citation.number).")
    start: int = Field(ge=0, description="Offset in that source's citation excerpt.")
    end: int = Field(ge=0, description="Exclusive end offset in that excerpt.")


class AnswerSentence(_Msg):
    start: int = Field(ge=0, description="Offset in the answer text, in Unicode code points.")
    end: int = Field(ge=0, description="Exclusive end offset, in Unicode code points.")
    support: SentenceSupport
    sources: list[int] = Field(description="Numbers of the sources that support it, best first.")
    markers: list[int] = Field(description="The [n] markers the model wrote in it.")
    unsupported_markers: list[int] = Field(
        description="Markers whose source does not support the sentence."
    )
    passages: list[BackingPassage] = Field(
        default_factory=list,
        description="The passages (one source sentence each) that back it, per supporting "
        "source: offsets into that source's excerpt, which always reaches them.",
    )


class SourcesEvent(_Msg):
    event: Literal["sources"] = "sources"
    request_id: str
    citations: list[Citation]
    sentences: list[AnswerSentence] | None = Field(
        default=None,
        description="Per answer sentence, the sources that support it; null when the "
        "answer was not attributed (cancelled, or attribution failed).",
    )


class StatusEvent(_Msg):
    """A part of the stack is waking from zero; the answer continues when it is ready.

    Sent before the first token, again about every 30 seconds while the wait
    lasts (which also keeps API Gateway's 10-minute idle timeout from closing the
    socket). If the part is not ready within the worker's time, ``error`` with code
    ``model_unavailable`` and ``done`` follow, saying when to try again.
    """

    event: Literal["status"] = "status"
    request_id: str
    component: Literal["model", "search"] = Field(
        description="What is waking: the chat model or the search collection."
    )
    state: Literal["waking"] = "waking"
    message: str = Field(description="For people: what is happening and how long it takes.")
    typical_s: int = Field(ge=0, description="How long waking usually takes, at most (seconds).")
    elapsed_s: float = Field(ge=0, description="Seconds this answer has waited so far.")


class DoneEvent(_Msg):
    event: Literal["done"] = "done"
    request_id: str
    stop_reason: StopReason
    prompt_tokens: int = Field(ge=0)
    completion_tokens: int = Field(ge=0)
    time_to_first_token_ms: float | None = None
    total_ms: float
    attribution_ms: float | None = Field(
        default=None, description="Time spent attributing sentences after the last token."
    )
    model_ms: float | None = Field(
        default=None,
        description="Time the model spent on this answer (request to last token, waking "
        "excluded): what a pay-per-use model bills (docs/cost.md).",
    )
    supported_share: float | None = Field(
        default=None,
        ge=0,
        le=1,
        description="Share of the answer's distinct claims (sentences that are not no_claim) "
        "that a source backs; null when the answer was not attributed or claims nothing.",
    )
    grounding: Grounding | None = Field(
        default=None,
        description="The answer-level verdict: unsupported when most claims are unbacked, "
        "no_sources when retrieval found nothing relevant; null when not attributed.",
    )


class ErrorEvent(_Msg):
    event: Literal["error"] = "error"
    request_id: str | None = None
    code: ErrorCode
    message: str


class PongEvent(_Msg):
    event: Literal["pong"] = "pong"


ServerEvent = Annotated[
    AcceptedEvent | TokenEvent | StatusEvent | SourcesEvent | DoneEvent | ErrorEvent | PongEvent,
    Field(discriminator="event"),
]

_SERVER: TypeAdapter[
    AcceptedEvent | TokenEvent | StatusEvent | SourcesEvent | DoneEvent | ErrorEvent | PongEvent
] = TypeAdapter(ServerEvent)


def ends_request(event: ServerEvent) -> bool:
    """Whether ``event`` is the last one its request gets: the ``done``, or an
    ``error`` that no ``done`` follows, namely one under no request id (a frame
    with no usable id) or a refused duplicate id (a ``done`` would end the
    answer still running under that id). Servers and clients read it here."""
    if isinstance(event, DoneEvent):
        return True
    return isinstance(event, ErrorEvent) and (
        event.request_id is None or event.code == ErrorCode.DUPLICATE_REQUEST
    )


def parse_client_action(frame: str | bytes) -> AskAction | CancelAction | PingAction:
    """Parse one client frame; raise :class:`InvalidAction` with a protocol error code."""
    try:
        raw: Any = json.loads(frame)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InvalidAction(ErrorCode.INVALID_JSON, f"frame is not valid JSON: {exc}") from exc
    except RecursionError as exc:  # the decoder recurses per nesting level
        raise InvalidAction(
            ErrorCode.INVALID_JSON, f"frame nests deeper than {MAX_FRAME_DEPTH} levels"
        ) from exc
    if not isinstance(raw, dict):
        raise InvalidAction(ErrorCode.INVALID_JSON, "frame must be a JSON object")
    action = raw.get("action")
    # Every error about a frame that names its request goes back under that id,
    # so the client waiting on it is not left waiting.
    request_id = frame_request_id(raw)
    if action not in KNOWN_ACTIONS:
        raise InvalidAction(
            ErrorCode.UNKNOWN_ACTION,
            f"unknown action {action!r}; expected one of {', '.join(KNOWN_ACTIONS)}",
            request_id=request_id,
        )
    if nesting_depth(raw) > MAX_FRAME_DEPTH:
        raise InvalidAction(
            ErrorCode.INVALID_REQUEST,
            f"frame nests deeper than {MAX_FRAME_DEPTH} levels",
            request_id=request_id,
            action=action,
        )
    try:
        # Strict: "5" or true is not an integer, as the published schema says.
        return _CLIENT.validate_python(raw, strict=True)
    except ValidationError as exc:
        raise InvalidAction(
            _code_for(exc), _describe(exc), request_id=request_id, action=action
        ) from exc


def frame_request_id(raw: dict[str, Any]) -> str | None:
    """The frame's ``request_id`` if it is a well-formed one, else None (an
    ill-formed id can't be echoed: the client could not have meant it)."""
    try:
        return _REQUEST_ID.validate_python(raw.get("request_id"), strict=True)
    except ValidationError:
        return None


def nesting_depth(value: Any) -> int:
    """How deeply lists and objects nest in a parsed JSON value (iterative, so
    a deep value can't exhaust the stack)."""
    deepest = 0
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            item = list(item.values())
        if isinstance(item, list):
            deepest = max(deepest, depth)
            if depth <= MAX_FRAME_DEPTH:
                stack.extend((child, depth + 1) for child in item)
    return deepest


def _code_for(exc: ValidationError) -> ErrorCode:
    for err in exc.errors():
        field = err["loc"][1] if len(err["loc"]) > 1 else None
        if field == "question" and err["type"] == "string_too_long":
            return ErrorCode.QUESTION_TOO_LONG
        if field == "filters":
            return ErrorCode.BAD_FILTER
    return ErrorCode.INVALID_REQUEST


def _describe(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err["loc"][1:]) or "(frame)"
        parts.append(f"{loc}: {err['msg']}")
    return "invalid request: " + "; ".join(parts)


def parse_server_event(
    frame: str | bytes,
) -> AcceptedEvent | TokenEvent | StatusEvent | SourcesEvent | DoneEvent | ErrorEvent | PongEvent:
    """For clients and tests: parse one server frame (strictly, as the schema says)."""
    return _SERVER.validate_json(frame, strict=True)


def encode_event(
    event: AcceptedEvent
    | TokenEvent
    | StatusEvent
    | SourcesEvent
    | DoneEvent
    | ErrorEvent
    | PongEvent,
) -> str:
    return event.model_dump_json(exclude_none=False)


def client_action_schema() -> dict[str, Any]:
    return _CLIENT.json_schema()


def server_event_schema() -> dict[str, Any]:
    return _SERVER.json_schema()
