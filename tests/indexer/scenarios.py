"""What a clean ingest looks like, and how far the real index is from it.

The expectation for a set of messages is computed by a fresh pipeline over
in-memory fakes that processes, per document, only the message that must
win (the newest version; a delete means no chunks). The real index is then
read chunk by chunk (test-side refresh), so a violation names the document
and says what differs: extra generations, a wrong count, duplicated
ordinals, or other content.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass

from opensearchpy import AsyncOpenSearch

from shared.ports import BlobStore
from shared.settings import Settings
from tests.fakes.embedder import FakeEmbedder
from tests.fakes.status_store import FakeStatusStore
from tests.fakes.vector_index import FakeVectorIndex
from tests.indexer.conftest import make_pipeline
from tests.indexer.events import queue_message


@dataclass(frozen=True)
class Expected:
    generation: str
    texts: tuple[str, ...]  # by ordinal


def winners(bodies: list[str]) -> dict[str, str | None]:
    """Per doc id, the body of the message that must win (None: deleted).
    Ties and unversioned messages: the last one sent."""
    best: dict[str, tuple[int, int, str | None]] = {}
    for sent, body in enumerate(bodies):
        try:
            raw = json.loads(body)
        except ValueError:
            continue
        if not isinstance(raw, dict) or "doc_id" not in raw:
            continue
        key = (raw.get("doc_version") or 0, sent, body if raw.get("op") == "index" else None)
        if raw["doc_id"] not in best or key[:2] >= best[raw["doc_id"]][:2]:
            best[raw["doc_id"]] = key
    return {doc: entry[2] for doc, entry in best.items()}


async def clean_ingest(
    settings: Settings, bodies: Mapping[str, str | None], blobs: BlobStore | None = None
) -> dict[str, Expected | None]:
    index, status = FakeVectorIndex(), FakeStatusStore()
    pipeline = make_pipeline(settings, index, status, FakeEmbedder(dimension=16), blobs)
    expected: dict[str, Expected | None] = {}
    for doc, body in bodies.items():
        if body is None:
            expected[doc] = None
            continue
        outcome = await pipeline.process(queue_message(body))
        if not outcome.ok:
            expected[doc] = None  # poison: never indexed
            continue
        chunks = index.chunks_of(doc)
        expected[doc] = Expected(outcome.generation or "", tuple(c.chunk.text for c in chunks))
    return expected


async def index_contents(
    client: AsyncOpenSearch, index: str
) -> dict[str, dict[str, list[tuple[int, str]]]]:
    """doc id → generation → [(ordinal, text)], read straight from the node."""
    await client.indices.refresh(index=index)
    found: dict[str, dict[str, list[tuple[int, str]]]] = defaultdict(lambda: defaultdict(list))
    response = await client.search(
        index=index,
        body={"size": 10_000, "_source": ["doc_id", "generation", "ordinal", "text"]},
    )
    for hit in response["hits"]["hits"]:
        source = hit["_source"]
        found[source["doc_id"]][source["generation"]].append((source["ordinal"], source["text"]))
    return found


def violations(
    expected: dict[str, Expected | None], actual: dict[str, dict[str, list[tuple[int, str]]]]
) -> list[str]:
    problems: list[str] = []
    for doc in sorted(set(expected) | set(actual)):
        want, got = expected.get(doc), actual.get(doc, {})
        if want is None:
            if got:
                problems.append(f"{doc}: should be absent, holds {_shape(got)}")
            continue
        if set(got) != {want.generation}:
            problems.append(f"{doc}: want one generation {want.generation}, got {_shape(got)}")
            continue
        chunks = sorted(got[want.generation])
        if tuple(text for _, text in chunks) != want.texts or [o for o, _ in chunks] != list(
            range(len(want.texts))
        ):
            problems.append(
                f"{doc}: {len(chunks)} chunks (ordinals {[o for o, _ in chunks]}), "
                f"want {len(want.texts)}"
            )
    return problems


def _shape(got: dict[str, list[tuple[int, str]]]) -> str:
    return ", ".join(f"{g[:8]}×{len(c)}" for g, c in sorted(got.items())) or "nothing"
