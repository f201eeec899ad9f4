"""How the query service says no: the wording of every refusal and the events
that close out a refused request id, in one place for both transports.
"""

from __future__ import annotations

from shared.errors import RagError
from shared.ports import ConnectionSink
from shared.protocol import DoneEvent, ErrorCode, ErrorEvent, StopReason, ends_request

TIME_LIMIT_MESSAGE = "the answer took longer than the service's time limit"
NO_DOCUMENTS = (
    "no documents indexed yet: ingest some first (`rag ingest PATH` or a message on the "
    "ingest queue), then ask again"
)
# The answer (one token) when no retrieved source is about the question and
# query.refuse_without_sources is on (services/query/answer/service.py).
NO_RELEVANT_SOURCES = (
    "The indexed documents do not cover this question, so there is no answer from them. "
    "Try other words, or index documents about it."
)


class AskRejected(RagError):
    """An ask that can't be accepted; ``code`` is the protocol error code."""

    def __init__(self, code: ErrorCode, message: str) -> None:
        super().__init__(message)
        self.code = code


def rejection_events(
    request_id: str | None, code: str, message: str, total_ms: float = 0.0
) -> list[ErrorEvent | DoneEvent]:
    """``error``, then ``done(stop_reason=error)`` so the client can close out
    the request id, unless the error already ends it (``ends_request``)."""
    error = ErrorEvent(request_id=request_id, code=ErrorCode(code), message=message)
    if ends_request(error) or request_id is None:  # (the second test narrows the type)
        return [error]
    done = DoneEvent(
        request_id=request_id,
        stop_reason=StopReason.ERROR,
        prompt_tokens=0,
        completion_tokens=0,
        total_ms=total_ms,
    )
    return [error, done]


async def send_rejection(
    sink: ConnectionSink, request_id: str | None, code: str, message: str, total_ms: float = 0.0
) -> None:
    for event in rejection_events(request_id, code, message, total_ms):
        await sink.send(event)


def unknown_request(request_id: str) -> ErrorEvent:
    """The answer to a ``cancel`` for a request id that is not running."""
    return ErrorEvent(
        request_id=request_id,
        code=ErrorCode.UNKNOWN_REQUEST,
        message=f"no running answer with request id {request_id!r}",
    )


def refusal(code: ErrorCode, request_id: str, max_running: int) -> AskRejected:
    """The one wording of the per-connection rules, for both transports."""
    if code == ErrorCode.DUPLICATE_REQUEST:
        return AskRejected(code, f"request {request_id!r} is already running")
    return AskRejected(code, f"at most {max_running} answers may run at once on one connection")
