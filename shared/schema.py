"""Write (or check) the JSON Schemas of the ingest message and the WebSocket protocol.

    python -m shared.schema            # regenerate docs/schema/*.schema.json
    python -m shared.schema --check    # exit 1 if a committed schema is stale

The schemas are generated from the pydantic models in ``shared.ingest`` and
``shared.protocol`` so that producers and client authors in other languages
can validate against exactly what the services accept. Output is stable
(sorted keys, two-space indent, trailing newline) so diffs stay reviewable.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from shared.ingest import INGEST_VERSION, ingest_message_schema
from shared.protocol import PROTOCOL_VERSION, client_action_schema, server_event_schema

DRAFT = "https://json-schema.org/draft/2020-12/schema"
DEFAULT_DIR = Path(__file__).resolve().parent.parent / "docs" / "schema"


@dataclass(frozen=True)
class SchemaDoc:
    name: str
    title: str
    description: str
    version: int
    build: Callable[[], dict[str, Any]]

    @property
    def filename(self) -> str:
        return f"{self.name}.schema.json"


SCHEMAS = (
    SchemaDoc(
        "ingest-message",
        "Ingest message",
        "Body of an SQS message for the indexer: index or delete one document "
        "(see docs/ingest.md).",
        INGEST_VERSION,
        ingest_message_schema,
    ),
    SchemaDoc(
        "client-action",
        "WebSocket client action",
        "A frame a chat client sends, routed on `action` (see docs/protocol.md).",
        PROTOCOL_VERSION,
        client_action_schema,
    ),
    SchemaDoc(
        "server-event",
        "WebSocket server event",
        "A frame the query service sends, tagged by `event` (see docs/protocol.md).",
        PROTOCOL_VERSION,
        server_event_schema,
    ),
)


def render(doc: SchemaDoc) -> str:
    schema = {
        "$schema": DRAFT,
        "$id": f"urn:serverless-rag:{doc.name}:v{doc.version}",
        **_close_key_patterns(doc.build()),
        "title": doc.title,
        "description": doc.description,
    }
    return json.dumps(schema, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def _close_key_patterns(node: Any) -> Any:
    """pydantic renders ``dict[Annotated[str, pattern], V]`` as ``patternProperties``
    only, which JSON Schema reads as "other keys are fine too"; the models reject
    them (metadata keys, filter keys), so the schema must as well."""
    if isinstance(node, list):
        return [_close_key_patterns(item) for item in node]
    if not isinstance(node, dict):
        return node
    closed = {key: _close_key_patterns(value) for key, value in node.items()}
    if "patternProperties" in closed and "properties" not in closed:
        closed.setdefault("additionalProperties", False)
    return closed


def stale_files(directory: Path) -> list[Path]:
    """Schema files that are missing or differ from what the models generate."""
    stale = []
    for doc in SCHEMAS:
        path = directory / doc.filename
        if not path.is_file() or path.read_text(encoding="utf-8") != render(doc):
            stale.append(path)
    return stale


def write_all(directory: Path) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for doc in SCHEMAS:
        path = directory / doc.filename
        path.write_text(render(doc), encoding="utf-8")
        written.append(path)
    return written


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m shared.schema", description=__doc__)
    parser.add_argument("--check", action="store_true", help="fail if a schema file is stale")
    parser.add_argument("--out-dir", type=Path, default=DEFAULT_DIR)
    args = parser.parse_args(argv)
    if args.check:
        stale = stale_files(args.out_dir)
        for path in stale:
            print(f"stale: {path} (run: python -m shared.schema)", file=sys.stderr)
        return 1 if stale else 0
    for path in write_all(args.out_dir):
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
