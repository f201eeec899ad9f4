"""The indexer core's logic, over fakes (the real-server tests are elsewhere)."""

from __future__ import annotations

import asyncio
import json

from services.indexer.disposition import Verdict
from services.indexer.pipeline import IndexerPipeline, file_name_hint
from shared.documents import DocState
from shared.errors import IndexUnavailable, TransientError
from shared.ingest import parse_ingest_message
from shared.settings import Settings
from tests.fakes.embedder import FakeEmbedder
from tests.fakes.status_store import FakeStatusStore
from tests.fakes.vector_index import FakeVectorIndex
from tests.indexer.conftest import make_pipeline
from tests.indexer.events import delete_body, index_body, paragraphs, queue_message


async def test_indexes_a_new_document_and_records_its_status(
    pipeline: IndexerPipeline, fake_index: FakeVectorIndex, fake_status: FakeStatusStore
) -> None:
    # GIVEN a document long enough for several chunks
    body = index_body(
        "handbook/leave", paragraphs("leave", 8), title="Leave", metadata={"team": "hr"}
    )
    # WHEN it is processed
    outcome = await pipeline.process(queue_message(body))
    # THEN every chunk of one generation is stored, in order, with its metadata
    assert outcome.verdict is Verdict.INDEXED
    stored = fake_index.chunks_of("handbook/leave")
    assert len(stored) == outcome.chunk_count > 1
    assert [c.chunk.ordinal for c in stored] == list(range(len(stored)))
    assert {c.chunk.generation for c in stored} == {outcome.generation}
    assert all(c.chunk.metadata == {"team": "hr"} and c.chunk.title == "Leave" for c in stored)
    status = fake_status.records["handbook/leave"]
    assert status.state is DocState.INDEXED
    assert (status.generation, status.chunk_count) == (outcome.generation, outcome.chunk_count)
    assert status.indexed_at is not None


async def test_the_status_record_carries_the_loaders_title_when_the_message_has_none(
    pipeline: IndexerPipeline, fake_status: FakeStatusStore
) -> None:
    # GIVEN a Markdown upload without a title field (the chat page's uploads)
    text = "# Llama care guide\n\nLlamas eat hay.\n"
    body = index_body("guide.md", text, content_type="text/markdown")
    # WHEN it is indexed, THEN the document list can show its heading as the title
    await pipeline.process(queue_message(body))
    assert fake_status.records["guide.md"].title == "Llama care guide"


async def test_redelivery_of_the_same_message_changes_nothing(
    pipeline: IndexerPipeline, fake_index: FakeVectorIndex, embedder: FakeEmbedder
) -> None:
    message = queue_message(index_body("doc", paragraphs("alpha", 4)))
    first = await pipeline.process(message)
    rows_before, calls_before = dict(fake_index.rows), len(embedder.calls)

    again = await pipeline.process(message)

    assert again.verdict is Verdict.UNCHANGED
    assert again.generation == first.generation
    assert fake_index.rows == rows_before
    assert len(embedder.calls) == calls_before  # nothing embedded twice


async def test_changed_content_replaces_the_old_generation(
    pipeline: IndexerPipeline, fake_index: FakeVectorIndex
) -> None:
    await pipeline.process(queue_message(index_body("doc", paragraphs("old", 6))))
    changed = await pipeline.process(queue_message(index_body("doc", paragraphs("new", 3))))

    assert changed.verdict is Verdict.INDEXED
    stored = fake_index.chunks_of("doc")
    assert {c.chunk.generation for c in stored} == {changed.generation}
    assert len(stored) == changed.chunk_count
    assert changed.removed > 0
    assert all("old" not in c.chunk.text for c in stored)


async def test_changed_metadata_alone_is_a_new_generation(
    pipeline: IndexerPipeline, fake_index: FakeVectorIndex
) -> None:
    text = paragraphs("same", 2)
    first = await pipeline.process(queue_message(index_body("doc", text, metadata={"v": 1})))
    second = await pipeline.process(queue_message(index_body("doc", text, metadata={"v": 2})))

    assert second.generation != first.generation
    assert {c.chunk.metadata["v"] for c in fake_index.chunks_of("doc")} == {2}


async def test_delete_removes_every_chunk_and_records_it(
    pipeline: IndexerPipeline, fake_index: FakeVectorIndex, fake_status: FakeStatusStore
) -> None:
    await pipeline.process(queue_message(index_body("gone", paragraphs("x", 3))))
    await pipeline.process(queue_message(index_body("kept", paragraphs("y", 3))))

    outcome = await pipeline.process(queue_message(delete_body("gone")))

    assert outcome.verdict is Verdict.DELETED and outcome.removed > 0
    assert fake_index.chunks_of("gone") == []
    assert fake_index.chunks_of("kept") != []
    assert fake_status.records["gone"].state is DocState.DELETED


async def test_malformed_json_is_poison(pipeline: IndexerPipeline) -> None:
    outcome = await pipeline.process(queue_message("{not json"))
    assert outcome.verdict is Verdict.POISON
    assert outcome.error is not None and outcome.error.code == "invalid_message"


async def test_invalid_message_with_a_doc_id_records_why(
    pipeline: IndexerPipeline, fake_status: FakeStatusStore
) -> None:
    body = json.dumps({"version": 1, "op": "index", "doc_id": "d1"})  # no body source
    outcome = await pipeline.process(queue_message(body))
    assert outcome.verdict is Verdict.POISON
    status = fake_status.records["d1"]
    assert status.state is DocState.FAILED and status.error_code == "invalid_message"
    assert status.reason is not None and "exactly one of" in status.reason


async def test_unsupported_content_type_is_poison_with_its_code(
    pipeline: IndexerPipeline, fake_status: FakeStatusStore
) -> None:
    body = index_body("img", "binary?", content_type="image/png")
    outcome = await pipeline.process(queue_message(body))
    assert outcome.verdict is Verdict.POISON
    assert fake_status.records["img"].error_code == "unsupported_content_type"


async def test_empty_document_is_poison(pipeline: IndexerPipeline) -> None:
    outcome = await pipeline.process(queue_message(index_body("empty", "   \n ")))
    assert outcome.verdict is Verdict.POISON
    assert outcome.error is not None and outcome.error.code == "empty_document"


async def test_document_over_the_limit_is_poison(
    settings_small: IndexerPipeline,
) -> None:
    outcome = await settings_small.process(queue_message(index_body("big", "word " * 100)))
    assert outcome.verdict is Verdict.POISON
    assert outcome.error is not None and outcome.error.code == "document_too_large"


async def test_s3_body_without_s3_access_is_poison(pipeline: IndexerPipeline) -> None:
    body = json.dumps(
        {"version": 1, "op": "index", "doc_id": "d", "s3": {"bucket": "bkt", "key": "a.txt"}}
    )
    outcome = await pipeline.process(queue_message(body))
    assert outcome.verdict is Verdict.POISON


async def test_index_down_is_retried_and_the_next_delivery_indexes(
    pipeline: IndexerPipeline, fake_index: FakeVectorIndex, fake_status: FakeStatusStore
) -> None:
    message = queue_message(index_body("doc", paragraphs("retry", 3)))
    fake_index.fail_writes.append(IndexUnavailable("connection refused"))

    failed = await pipeline.process(message)
    assert failed.verdict is Verdict.RETRY
    assert fake_status.records["doc"].error_code == "index_unavailable"

    done = await pipeline.process(message)
    assert done.verdict is Verdict.INDEXED
    assert len(fake_index.chunks_of("doc")) == done.chunk_count
    assert fake_status.records["doc"].state is DocState.INDEXED


async def test_crash_between_write_and_cleanup_converges_without_re_embedding(
    pipeline: IndexerPipeline,
    fake_index: FakeVectorIndex,
    fake_status: FakeStatusStore,
    embedder: FakeEmbedder,
) -> None:
    # GIVEN version 1 indexed, then version 2 written but its clean-up crashed
    await pipeline.process(queue_message(index_body("doc", paragraphs("one", 4))))
    v2 = queue_message(index_body("doc", paragraphs("two", 2)))
    fake_index.fail_deletes.append(IndexUnavailable("gone mid-way"))
    crashed = await pipeline.process(v2)
    assert crashed.verdict is Verdict.RETRY
    assert len(await fake_index.generations("doc")) == 2
    calls = len(embedder.calls)

    # WHEN the same message is delivered again
    again = await pipeline.process(v2)

    # THEN only version 2 remains, it was not embedded twice, and the status says so
    assert again.verdict is Verdict.UNCHANGED
    assert await fake_index.generations("doc") == {again.generation: again.chunk_count}
    assert len(embedder.calls) == calls
    assert fake_status.records["doc"].state is DocState.INDEXED


async def test_a_partial_generation_is_rewritten_whole(
    pipeline: IndexerPipeline, fake_index: FakeVectorIndex, fake_status: FakeStatusStore
) -> None:
    message = queue_message(index_body("doc", paragraphs("part", 5)))
    first = await pipeline.process(message)
    # a crash left one chunk of the generation missing, and no status
    del fake_index.rows[next(iter(fake_index.rows))]
    fake_status.records.clear()

    again = await pipeline.process(message)

    assert again.verdict is Verdict.INDEXED
    stored = fake_index.chunks_of("doc")
    assert [c.chunk.ordinal for c in stored] == list(range(first.chunk_count))


def test_file_name_hint_prefers_a_name_with_an_extension() -> None:
    op = parse_ingest_message(
        index_body("notes/q3.md", "x", source_uri="https://wiki/q3", content_type=None)
    )
    assert file_name_hint(op) == "notes/q3.md"  # type: ignore[arg-type]


class _LookupAfterEmbedding(FakeVectorIndex):
    """Answers the generations lookup only once the embedder has been called,
    optionally with an error: shows what runs while the first group is embedded."""

    def __init__(self, embedder: FakeEmbedder, error: Exception | None = None) -> None:
        super().__init__()
        self._embedder = embedder
        self._error = error

    async def generations(self, doc_id: str) -> dict[str, int]:
        async with asyncio.timeout(5):
            while not self._embedder.calls:  # noqa: ASYNC110
                await asyncio.sleep(0.01)
        if self._error is not None:
            raise self._error
        return await super().generations(doc_id)


async def test_the_first_group_is_embedded_while_the_index_is_looked_up(
    settings: Settings, fake_status: FakeStatusStore, embedder: FakeEmbedder
) -> None:
    # GIVEN an index whose lookup returns only after embedding has started
    index = _LookupAfterEmbedding(embedder)
    pipeline = make_pipeline(settings, index, fake_status, embedder)
    # WHEN a document is indexed, THEN it completes (the two overlapped), written once
    outcome = await pipeline.process(queue_message(index_body("doc", paragraphs("ahead", 3))))
    assert outcome.verdict is Verdict.INDEXED
    assert len(index.chunks_of("doc")) == outcome.chunk_count
    assert sum(len(call) for call in embedder.calls) == outcome.chunk_count


async def test_a_lookup_failure_during_embedding_writes_nothing_and_is_retried(
    settings: Settings, fake_status: FakeStatusStore, embedder: FakeEmbedder
) -> None:
    index = _LookupAfterEmbedding(embedder, IndexUnavailable("search timed out"))
    pipeline = make_pipeline(settings, index, fake_status, embedder)
    outcome = await pipeline.process(queue_message(index_body("doc", paragraphs("fail", 3))))
    assert outcome.verdict is Verdict.RETRY
    assert index.rows == {}
    assert fake_status.records["doc"].error_code == "index_unavailable"


async def test_an_embedder_failure_is_retried_after_the_marker_and_writes_nothing(
    pipeline: IndexerPipeline,
    fake_index: FakeVectorIndex,
    fake_status: FakeStatusStore,
    embedder: FakeEmbedder,
) -> None:
    embedder.fail_with = TransientError("embedding endpoint throttled")
    message = queue_message(index_body("doc", paragraphs("busy", 3)))
    failed = await pipeline.process(message)
    assert failed.verdict is Verdict.RETRY
    assert fake_index.rows == {}
    record = fake_status.records["doc"]
    assert record.state is DocState.FAILED and record.writing == failed.generation
    done = await pipeline.process(message)  # the next delivery indexes it whole
    assert done.verdict is Verdict.INDEXED
    assert len(fake_index.chunks_of("doc")) == done.chunk_count
