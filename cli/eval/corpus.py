"""Index a folder of documents into a fresh store, for ``rag eval --compare``
and the retrieval quality gate.

It drives the indexer's own pipeline (load → chunk → embed → write) directly,
without a queue: an evaluation needs the store built exactly as ``rag ingest``
builds it, but not the queue's at-least-once machinery. Doc ids are the paths
relative to the folder, as ``rag ingest FOLDER`` assigns them.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from pathlib import Path

from cli.files import build_index_message, discover
from services.indexer.runtime import build_pipeline
from shared.errors import DocumentError
from shared.ports import Embedder, QueueMessage, StatusStore, VectorIndex
from shared.settings import Settings


@dataclass(frozen=True)
class IndexReport:
    documents: int
    chunks: int
    failed: dict[str, str]
    seconds: float


async def index_folder(
    folder: Path,
    *,
    settings: Settings,
    index: VectorIndex,
    status: StatusStore,
    embedder: Embedder,
) -> IndexReport:
    """Index every supported file under ``folder``; failures are reported, not raised."""
    files, _skipped = discover([folder])
    if not files:
        raise DocumentError(f"no supported documents under {folder}")
    pipeline = build_pipeline(settings, index=index, status=status, embedder=embedder)
    await pipeline.start()
    started = time.perf_counter()
    chunks = 0
    failed: dict[str, str] = {}
    for source in files:
        data = await asyncio.to_thread(source.path.read_bytes)
        message = build_index_message(source.doc_id, data, source.content_type)
        body = message.model_dump_json(exclude_none=True)
        outcome = await pipeline.process(QueueMessage(source.doc_id, source.doc_id, body))
        if outcome.ok:
            chunks += outcome.chunk_count
        else:
            failed[source.doc_id] = str(outcome.error)
    return IndexReport(len(files), chunks, failed, time.perf_counter() - started)
