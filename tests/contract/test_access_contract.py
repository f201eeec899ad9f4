"""Access lists, on every VectorIndex adapter (SQLite and the real OpenSearch node).

Index level: a caller's scope is enforced inside the search (k results come
back when 1 % of the chunks are readable), client filters only narrow it, a
re-label takes effect without a re-write. Service level (the real index under
the real AnswerService, a fake model): a forbidden chunk never reaches the
sources, the prompt or a replayed turn.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import numpy as np
import pytest

from services.query.answer.audit import AUDIT_LOGGER
from services.query.answer.parts import QueryDeps
from services.query.answer.service import AnswerService
from services.query.frontdoor import new_job
from services.query.state.conversation import InMemoryConversationStore
from shared.access import Access, Principal
from shared.documents import Chunk, EmbeddedChunk, SearchHit, Vector, chunk_id_for
from shared.ingest import MetadataValue
from shared.ports import VectorIndex
from shared.protocol import AskAction, SourcesEvent
from shared.settings import ModelSettings, QuerySettings, Settings
from tests.contract.conftest import IndexUnderTest
from tests.fakes.chat_model import FakeChatModel, Script
from tests.fakes.embedder import FakeEmbedder
from tests.fakes.sink import RecordingSink

DIM = 8
ADMIN = Access.everything()
HR = Access.of({"hr"})
NOBODY_SPECIAL = Access.of(set())


def unit(v: Vector) -> Vector:
    scaled: Vector = (v / np.linalg.norm(v)).astype(np.float32)
    return scaled


def vec(seed: int) -> Vector:
    return unit(np.random.default_rng(seed).normal(size=DIM).astype(np.float32))


def labelled(
    doc_id: str,
    groups: list[str] | None,
    vector: Vector,
    text: str = "plain filler words",
    ordinal: int = 0,
    metadata: dict[str, MetadataValue] | None = None,
) -> EmbeddedChunk:
    chunk = Chunk(
        chunk_id=chunk_id_for(doc_id, "g", ordinal),
        doc_id=doc_id,
        generation="g",
        ordinal=ordinal,
        text=text,
        start=0,
        end=len(text),
        title=doc_id,
        metadata=metadata or {},
        groups=groups,
    )
    return EmbeddedChunk(chunk=chunk, vector=vector)


@pytest.fixture(autouse=True)
async def _close_opened(under_test: IndexUnderTest) -> AsyncIterator[None]:
    yield
    for opened in under_test.opened:
        await opened.close()


def docs(hits: list[SearchHit]) -> set[str]:
    return {h.chunk.doc_id for h in hits}


LABELS: dict[str, list[str] | None] = {
    "public.md": None,  # every authenticated caller
    "hr.md": ["hr"],
    "hr-finance.md": ["finance", "hr"],
    "finance.md": ["finance"],
    "locked.md": [],  # admins only
}


async def write_labelled(under_test: IndexUnderTest, index: VectorIndex) -> None:
    await index.ensure_index(DIM)
    await index.write(
        [
            labelled(doc, groups, vec(n), f"salary leave words {doc}", metadata={"team": "hr"})
            for n, (doc, groups) in enumerate(LABELS.items())
        ]
    )
    await under_test.eventually(
        lambda: index.knn_search(vec(0), 10, {}, ADMIN), lambda h: len(h) == len(LABELS)
    )


async def test_each_caller_gets_exactly_the_chunks_it_may_read(
    under_test: IndexUnderTest, index: VectorIndex
) -> None:
    await write_labelled(under_test, index)
    expected = {
        ADMIN: set(LABELS),
        HR: {"public.md", "hr.md", "hr-finance.md"},
        Access.of({"finance"}): {"public.md", "hr-finance.md", "finance.md"},
        NOBODY_SPECIAL: {"public.md"},
        Access.of({"marketing"}): {"public.md"},
    }
    for access, readable in expected.items():
        assert docs(await index.knn_search(vec(9), 10, {}, access)) == readable, access
        assert docs(await index.keyword_search("salary", 10, {}, access)) == readable, access
        assert await index.readable(sorted(LABELS), access) == readable, access
    hit = (await index.knn_search(vec(1), 1, {}, HR))[0]
    assert hit.chunk.groups == ["hr"]  # the access list comes back on the chunk


async def test_client_filters_narrow_but_never_widen(
    under_test: IndexUnderTest, index: VectorIndex
) -> None:
    await write_labelled(under_test, index)
    # Every chunk has team=hr: the filter matches forbidden chunks too, but only narrows.
    for filters in ({"team": "hr"}, {"team": ["hr", "it"]}, {"groups": "finance"}, {"access": "*"}):
        found = docs(await index.knn_search(vec(3), 10, filters, HR))  # type: ignore[arg-type]
        assert found <= {"public.md", "hr.md", "hr-finance.md"}, filters
        found = docs(await index.keyword_search("salary", 10, filters, HR))  # type: ignore[arg-type]
        assert found <= {"public.md", "hr.md", "hr-finance.md"}, filters
    assert docs(await index.knn_search(vec(3), 10, {"team": "hr"}, HR)) == {
        "public.md",
        "hr.md",
        "hr-finance.md",
    }


async def test_k_results_come_back_when_one_percent_is_readable(
    under_test: IndexUnderTest, index: VectorIndex
) -> None:
    """300 chunks, 3 readable by the caller and all far from the query: a post-filter
    of the top k would return none; the efficient filter returns all 3."""
    await index.ensure_index(DIM)
    query = vec(1000)
    crowd = [labelled(f"crowd{i}.md", ["crowd"], unit(query + 0.05 * vec(i))) for i in range(297)]
    rare = [labelled(f"rare{i}.md", ["rare"], unit(0.05 * vec(i) - query)) for i in range(3)]
    await index.write(crowd + rare)
    await under_test.eventually(
        lambda: index.knn_search(query, 300, {}, ADMIN), lambda h: len(h) == 300
    )

    hits = await index.knn_search(query, 3, {}, Access.of({"rare"}))

    assert docs(hits) == {"rare0.md", "rare1.md", "rare2.md"}
    ten_percent = await index.knn_search(query, 30, {}, Access.of({"crowd"}))
    assert len(ten_percent) == 30 and all(h.chunk.groups == ["crowd"] for h in ten_percent)


async def test_an_access_change_takes_effect_without_rewriting(
    under_test: IndexUnderTest, index: VectorIndex
) -> None:
    await write_labelled(under_test, index)
    before = await index.knn_search(vec(1), 1, {}, HR)
    assert docs(before) == {"hr.md"}

    assert await index.set_groups("hr.md", ["finance"]) == 1
    gone = await under_test.eventually(
        lambda: index.knn_search(vec(1), 10, {}, HR), lambda h: "hr.md" not in docs(h)
    )
    assert "hr.md" not in docs(gone)
    assert await index.readable(["hr.md"], HR) == set()
    finance = await index.knn_search(vec(1), 1, {}, Access.of({"finance"}))
    assert docs(finance) == {"hr.md"}
    assert finance[0].chunk.groups == ["finance"]
    assert finance[0].score == pytest.approx(before[0].score, abs=1e-4)  # same vector

    await index.set_groups("hr.md", [])  # admins only
    locked = await under_test.eventually(
        lambda: index.knn_search(vec(1), 10, {}, Access.of({"finance"})),
        lambda h: "hr.md" not in docs(h),
    )
    assert "hr.md" not in docs(locked)
    assert "hr.md" in docs(await index.knn_search(vec(1), 10, {}, ADMIN))

    await index.set_groups("hr.md", None)  # every authenticated caller
    opened = await under_test.eventually(
        lambda: index.knn_search(vec(1), 10, {}, NOBODY_SPECIAL), lambda h: "hr.md" in docs(h)
    )
    assert "hr.md" in docs(opened)
    assert docs(await index.keyword_search("hr.md", 10, {}, NOBODY_SPECIAL)) >= {"hr.md"}


# ---- the answer service over the real index ----------------------------------------


@pytest.fixture
def audit_lines() -> Iterator[list[str]]:
    lines: list[str] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            lines.append(record.getMessage())

    logger = logging.getLogger(AUDIT_LOGGER)
    handler = Keep()
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    yield lines
    logger.removeHandler(handler)


async def test_a_forbidden_document_never_reaches_sources_prompt_or_history(
    under_test: IndexUnderTest, index: VectorIndex, audit_lines: list[str]
) -> None:
    embedder = FakeEmbedder(dimension=DIM)
    texts = {
        "public.md": "The cafeteria opens at eight for everyone.",
        "pay.md": "Salary bands for the cafeteria staff: ZETA-7731, confidential.",
    }
    labels = {"public.md": None, "pay.md": ["hr"]}
    await index.ensure_index(DIM)
    await index.write([labelled(d, labels[d], embedder.vector(t), t) for d, t in texts.items()])
    await under_test.eventually(
        lambda: index.knn_search(vec(0), 5, {}, ADMIN), lambda h: len(h) == 2
    )
    model = FakeChatModel(Script(tokens=["See [1] and [2]."]))
    settings = Settings(
        query=QuerySettings(coalesce_ms=0.0),
        model=ModelSettings(context_tokens=4096, max_new_tokens=128),
    )
    deps = QueryDeps(embedder, index, model, InMemoryConversationStore())
    service = AnswerService(settings, deps)
    hr_user = Principal(id="alice", groups=frozenset({"hr"}))
    outsider = Principal(id="bob", groups=frozenset({"sales"}))

    async def ask(who: Principal, question: str, conversation: str) -> RecordingSink:
        sink = RecordingSink()
        job = new_job(
            AskAction(action="ask", question=question, conversation_id=conversation, k=5), who
        )
        await service.answer(job, sink, asyncio.Event())
        return sink

    # The outsider asks straight for the secret: neither sources nor prompt hold it.
    sink = await ask(outsider, "salary bands cafeteria staff", "c-bob")
    (sources,) = sink.of("sources")
    assert isinstance(sources, SourcesEvent)
    assert {c.doc_id for c in sources.citations} == {"public.md"}
    assert "ZETA-7731" not in model.streams[-1].prompt

    # The HR user may read it; the answer is remembered in the HR user's conversation.
    sink = await ask(hr_user, "salary bands cafeteria staff", "shared-id")
    assert "ZETA-7731" in model.streams[-1].prompt
    model.scripts = [Script(tokens=["The bands are ZETA-7731 [1]."])]
    await ask(hr_user, "what are the bands?", "shared-id")
    assert "ZETA-7731" in model.streams[-1].prompt

    # Another caller reusing the same conversation id gets none of that history.
    model.scripts = [Script(tokens=["Nothing."])]
    await ask(outsider, "and what did you say before?", "shared-id")
    assert "ZETA-7731" not in model.streams[-1].prompt

    # The document is re-labelled away from HR: the follow-up no longer replays
    # the turns that drew on it, nor retrieves it.
    await index.set_groups("pay.md", ["board"])
    await under_test.eventually(
        lambda: index.readable(["pay.md"], hr_user.access), lambda found: not found
    )
    await ask(hr_user, "remind me of the bands", "shared-id")
    assert "ZETA-7731" not in model.streams[-1].prompt

    audits = [line for line in audit_lines if '"principal": "bob"' in line]
    assert audits and all("pay.md" not in line for line in audits)
    assert all("ZETA-7731" not in line for line in audit_lines)  # ids only, never text


async def test_sqlite_chunks_from_before_access_lists_are_open_to_everyone(
    tmp_path: Path,
) -> None:
    """A data folder written before access lists existed: on open, its chunks get
    the everyone term once (they had no list, and absent means everyone)."""
    from shared.adapters.sqlite.common import open_connection
    from shared.adapters.sqlite.store import SqliteVectorIndex

    path = tmp_path / "rag.sqlite3"
    first = SqliteVectorIndex(path)
    await first.ensure_index(DIM)
    await first.write([labelled("old.md", None, vec(1), "old words")])
    await first.close()
    conn = open_connection(path, load_vec=True)  # make it look like the old schema's data
    conn.execute("DROP TABLE chunk_access")
    conn.execute("DELETE FROM index_meta WHERE key = 'access_terms'")
    conn.close()

    reopened = SqliteVectorIndex(path)
    try:
        assert docs(await reopened.knn_search(vec(1), 5, {}, HR)) == {"old.md"}
        await reopened.write([labelled("new.md", ["finance"], vec(2), "new words")])
        assert docs(await reopened.knn_search(vec(1), 5, {}, HR)) == {"old.md"}
    finally:
        await reopened.close()
