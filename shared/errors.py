"""The product's error tree.

    RagError
    ├── InvalidMessage          a producer's ingest message is malformed (poison: never retried)
    ├── InvalidAction           a client's WebSocket frame is malformed or unknown
    ├── DocumentError           a document can't be indexed as sent (poison: never retried)
    │   ├── UnsupportedContentType
    │   ├── DocumentTooLarge
    │   └── EmptyDocument
    ├── ConfigurationError      settings are missing or inconsistent (start-up error)
    │   └── DimensionMismatch   the index's vector size differs from the embedder's
    ├── StaleVersion            an update older than the document's stored version (acknowledged)
    ├── TransientError          worth retrying: a dependency is down or throttling
    │   ├── LeaseLost           another worker took over the document mid-way
    │   ├── IndexUnavailable
    │   ├── QueueUnavailable
    │   └── ModelUnavailable    a model endpoint throttles or is down
    │       └── ModelWaking     it scaled to zero and is starting (retry in seconds)
    ├── NoDocumentsIndexed      a search before the first document was indexed
    ├── UnknownFilterField      a filter names a metadata field no document has
    ├── IndexWriteError         some bulk items failed (carries which)
    ├── ModelError              the chat or embedding model failed mid-request
    └── ConnectionGone          the WebSocket client has left

Errors from libraries are mapped to these at the adapter boundary and raised
``from`` the original, so callers never catch botocore or opensearch-py types.
"""

from __future__ import annotations


class RagError(Exception):
    """Base of every error the product raises on purpose."""

    code = "internal_error"


class InvalidMessage(RagError):
    """An ingest message failed validation. ``errors`` lists each problem."""

    code = "invalid_message"

    def __init__(self, message: str, errors: list[str] | None = None) -> None:
        super().__init__(message)
        self.errors = errors or []


class InvalidAction(RagError):
    """A WebSocket frame is not valid JSON, not an object, or not a known action.

    ``request_id`` is the frame's own (when it carried a well-formed one) and
    ``action`` its action (when known), so the error can be addressed to the
    request the client is waiting on.
    """

    def __init__(
        self, code: str, message: str, *, request_id: str | None = None, action: str | None = None
    ) -> None:
        super().__init__(message)
        self.code = code
        self.request_id = request_id
        self.action = action


class DocumentError(RagError):
    """The document itself can't be indexed; retrying won't help."""

    code = "document_error"


class UnsupportedContentType(DocumentError):
    code = "unsupported_content_type"


class DocumentTooLarge(DocumentError):
    code = "document_too_large"


class EmptyDocument(DocumentError):
    code = "empty_document"


class ConfigurationError(RagError):
    code = "configuration_error"


class DimensionMismatch(ConfigurationError):
    code = "dimension_mismatch"


class TransientError(RagError):
    """A dependency failed in a way that a retry may fix."""

    code = "unavailable"


class StaleVersion(RagError):
    """A conditional status write found a newer ``doc_version`` (or a tombstone) stored."""

    code = "stale_version"


class LeaseLost(TransientError):
    """This worker's per-document lease expired and another worker may hold it now."""

    code = "lease_lost"


class IndexUnavailable(TransientError):
    code = "index_unavailable"


class QueueUnavailable(TransientError):
    code = "queue_unavailable"


class ModelUnavailable(TransientError):
    code = "model_unavailable"


class ModelWaking(ModelUnavailable):
    """The model has no capacity right now because it scaled to zero; the refused
    request itself starts the scale-out, so asking again soon succeeds.

    ``typical_s``: how long AWS documents (or we measured) waking to take, at most.
    """

    def __init__(self, message: str, typical_s: int) -> None:
        super().__init__(message)
        self.typical_s = typical_s


class NoDocumentsIndexed(RagError):
    """The index does not exist yet or holds no chunk: nothing was ever indexed.

    Not a failure of the index: the client is told to ingest documents first.
    """

    code = "no_documents"


class UnknownFilterField(RagError):
    """A search filter names metadata fields that no indexed chunk carries
    (``doc_id`` and ``title`` are not metadata): it could only ever match
    nothing, so the client is told instead of getting an empty answer."""

    code = "bad_filter"

    def __init__(self, fields: list[str]) -> None:
        names = ", ".join(repr(f) for f in fields)
        super().__init__(
            f"no document has the metadata field {names}: filters match the metadata "
            "given at ingest (docs/ingest.md), not doc_id, title or uri"
        )
        self.fields = fields


class IndexWriteError(RagError):
    """Some items of a bulk write failed; ``failures`` holds their reasons."""

    code = "index_write_failed"

    def __init__(self, message: str, failures: list[str]) -> None:
        super().__init__(message)
        self.failures = failures


class ModelError(RagError):
    code = "model_error"


class ConnectionGone(RagError):
    code = "connection_gone"
