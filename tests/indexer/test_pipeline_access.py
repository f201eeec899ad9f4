"""Access lists through the indexer: stored per chunk, re-labelled without re-embedding."""

from __future__ import annotations

from services.indexer.disposition import Verdict
from services.indexer.pipeline import IndexerPipeline
from tests.fakes.embedder import FakeEmbedder
from tests.fakes.status_store import FakeStatusStore
from tests.fakes.vector_index import FakeVectorIndex
from tests.indexer.events import index_body, paragraphs, queue_message


def groups_of(index: FakeVectorIndex, doc_id: str) -> list[list[str] | None]:
    return [row.chunk.groups for row in index.chunks_of(doc_id)]


async def test_each_chunk_carries_the_access_list_and_the_status_records_it(
    pipeline: IndexerPipeline, fake_index: FakeVectorIndex, fake_status: FakeStatusStore
) -> None:
    body = index_body("hr/pay.md", paragraphs("salary", 6), groups=["hr", "finance"])
    outcome = await pipeline.process(queue_message(body))
    assert outcome.verdict is Verdict.INDEXED and outcome.chunk_count > 1
    assert groups_of(fake_index, "hr/pay.md") == [["hr", "finance"]] * outcome.chunk_count
    assert fake_status.records["hr/pay.md"].groups == ["hr", "finance"]


async def test_changing_only_the_access_list_relabels_without_re_embedding(
    pipeline: IndexerPipeline, fake_index: FakeVectorIndex, embedder: FakeEmbedder
) -> None:
    text = paragraphs("salary", 6)
    first = await pipeline.process(queue_message(index_body("pay.md", text, groups=["hr"])))
    vectors_before = {sid: row.vector.tobytes() for sid, row in fake_index.rows.items()}
    embedded_before, writes_before = len(embedder.calls), fake_index.writes

    relabel = await pipeline.process(queue_message(index_body("pay.md", text, groups=[])))

    assert relabel.verdict is Verdict.RELABELLED
    assert relabel.generation == first.generation  # same content: same generation
    assert len(embedder.calls) == embedded_before  # nothing embedded again
    assert fake_index.writes == writes_before  # nothing written again
    assert {sid: row.vector.tobytes() for sid, row in fake_index.rows.items()} == vectors_before
    assert groups_of(fake_index, "pay.md") == [[]] * first.chunk_count

    # Back to "every authenticated user" (the field absent), then a plain redelivery.
    opened = await pipeline.process(queue_message(index_body("pay.md", text)))
    assert opened.verdict is Verdict.RELABELLED
    assert groups_of(fake_index, "pay.md") == [None] * first.chunk_count
    again = await pipeline.process(queue_message(index_body("pay.md", text)))
    assert again.verdict is Verdict.UNCHANGED


async def test_new_content_with_a_narrower_list_relabels_the_old_chunks_first(
    pipeline: IndexerPipeline, fake_index: FakeVectorIndex
) -> None:
    await pipeline.process(queue_message(index_body("pay.md", paragraphs("old", 4))))
    # The old generation must not stay readable by everyone while the new one is written.
    fake_index.fail_writes.append(RuntimeError("write failed half-way"))
    failed = await pipeline.process(
        queue_message(index_body("pay.md", paragraphs("new", 4), groups=["hr"]))
    )
    assert failed.verdict is Verdict.RETRY
    assert set(map(str, groups_of(fake_index, "pay.md"))) == {"['hr']"}


async def test_an_access_list_that_is_not_a_list_of_short_names_is_poison(
    pipeline: IndexerPipeline, fake_index: FakeVectorIndex, fake_status: FakeStatusStore
) -> None:
    for bad in ("hr", [1, 2], ["x" * 200], ["*"], [""], {"hr": True}, ["a b"]):
        outcome = await pipeline.process(queue_message(index_body("bad.md", "text", groups=bad)))
        assert outcome.verdict is Verdict.POISON, bad
        assert outcome.error is not None and "groups" in str(outcome.error)
    assert fake_index.rows == {}
    assert fake_status.records["bad.md"].reason is not None
