"""The ingest message: what producers put on the SQS queue.

Version 1 envelope, discriminated by ``op``::

    {"version": 1, "op": "index", "doc_id": "handbook/leave.md", "title": "Leave policy",
     "source_uri": "https://intranet/leave", "metadata": {"team": "hr"},
     "content_type": "text/markdown", "text": "# Leave\\n..."}
    {"version": 1, "op": "index", "doc_id": "q3.pdf", "content_type": "application/pdf",
     "s3": {"bucket": "my-ingest-bucket", "key": "docs/q3.pdf"}}
    {"version": 1, "op": "delete", "doc_id": "handbook/leave.md"}
    {"version": 1, "op": "index", "doc_id": "a.md", "doc_version": 1732960000123, "text": "..."}

``doc_version`` (optional, both ops) orders the updates of one document.

``groups`` (optional) is the document's access list: absent = readable by
every authenticated user; ``[]`` = nobody but admins; otherwise members of any
listed group (see ``shared.access``). Changing only ``groups`` re-labels the
stored chunks without re-embedding them.

Exactly one body source is given: ``text`` (inline), ``data_base64`` (small
binary files such as PDFs) or ``s3`` (large files). ``parse_ingest_message``
is the only way in; every problem surfaces as :class:`InvalidMessage`.
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, model_validator

from shared.access import AccessList
from shared.errors import InvalidMessage

INGEST_VERSION = 1
# SQS accepts bodies up to 1 MiB; inline content larger than this must go via S3.
MAX_INLINE_BYTES = 1_000_000

DocId = Annotated[str, Field(min_length=1, max_length=512, pattern=r"^[^\x00-\x1f]+$")]
# Metadata keys; filter keys (protocol, index adapters) are checked with the same pattern.
METADATA_KEY_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]{0,63}$"
MetadataKey = Annotated[str, Field(pattern=METADATA_KEY_PATTERN)]
MetadataValue = str | int | float | bool | list[str]
Metadata = dict[MetadataKey, MetadataValue]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class S3Object(_Model):
    bucket: str = Field(min_length=3, max_length=63)
    key: str = Field(min_length=1, max_length=1024)
    version_id: str | None = None


DocVersion = Annotated[
    int | None,
    Field(
        default=None,
        ge=0,
        le=2**63 - 1,
        description=(
            "Optional, monotonically increasing per document (a source timestamp or sequence "
            "number). An update older than the version already applied is acknowledged as "
            "stale and changes nothing; without it, the later-processed message wins."
        ),
    ),
]


class IndexOperation(_Model):
    """Index (or re-index) one document. Re-sending identical content is a no-op."""

    version: Literal[1] = 1
    op: Literal["index"] = "index"
    doc_id: DocId
    doc_version: DocVersion = None
    title: str | None = Field(default=None, max_length=1024)
    source_uri: str | None = Field(default=None, max_length=2048)
    metadata: Metadata = Field(default_factory=dict)
    groups: AccessList | None = Field(
        default=None,
        description=(
            "Groups allowed to read the document. Absent: every authenticated user; "
            "[]: nobody but admins."
        ),
    )
    content_type: str | None = Field(
        default=None,
        description="MIME type; inferred from source_uri / the S3 key's extension when absent.",
    )
    text: str | None = None
    data_base64: str | None = None
    s3: S3Object | None = None

    @model_validator(mode="after")
    def _one_body_source(self) -> IndexOperation:
        given = [n for n in ("text", "data_base64", "s3") if getattr(self, n) is not None]
        if len(given) != 1:
            raise ValueError(
                f"exactly one of text, data_base64, s3 must be given (got {given or 'none'})"
            )
        if self.text is not None and len(self.text.encode()) > MAX_INLINE_BYTES:
            raise ValueError(f"inline text exceeds {MAX_INLINE_BYTES} bytes; send it via s3")
        if self.data_base64 is not None:
            try:
                base64.b64decode(self.data_base64, validate=True)
            except binascii.Error as exc:
                raise ValueError(f"data_base64 is not valid base64: {exc}") from exc
        return self

    def inline_bytes(self) -> bytes | None:
        if self.text is not None:
            return self.text.encode()
        if self.data_base64 is not None:
            return base64.b64decode(self.data_base64)
        return None


class DeleteOperation(_Model):
    """Remove every chunk of a document."""

    version: Literal[1] = 1
    op: Literal["delete"] = "delete"
    doc_id: DocId
    doc_version: DocVersion = None


IngestMessage = Annotated[IndexOperation | DeleteOperation, Field(discriminator="op")]
_ADAPTER: TypeAdapter[IndexOperation | DeleteOperation] = TypeAdapter(IngestMessage)


def parse_ingest_message(body: str | bytes) -> IndexOperation | DeleteOperation:
    """Parse an SQS body. Raises :class:`InvalidMessage` for anything unusable."""
    try:
        raw: Any = json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InvalidMessage(f"message body is not valid JSON: {exc}") from exc
    if not isinstance(raw, dict):
        raise InvalidMessage("message body must be a JSON object")
    version = raw.get("version")
    if version != INGEST_VERSION:
        raise InvalidMessage(
            f"unsupported ingest message version {version!r}; this indexer speaks version "
            f"{INGEST_VERSION}"
        )
    try:
        return _ADAPTER.validate_python(raw)
    except ValidationError as exc:
        problems = [
            f"{'.'.join(str(p) for p in e['loc']) or '(body)'}: {e['msg']}" for e in exc.errors()
        ]
        raise InvalidMessage("invalid ingest message: " + "; ".join(problems), problems) from exc


def ingest_message_schema() -> dict[str, Any]:
    return _ADAPTER.json_schema()
