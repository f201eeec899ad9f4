"""The naive pipeline, a yardstick beside the product (``rag eval --baseline naive``).

What a first try at retrieval looks like, with the product's *own* embedder:
the page's main text (an HTML page's ``main`` / ``[role=main]`` / ``body``
text, tags dropped; other formats as the product's loaders read them), cut
into 200-word chunks overlapping by 40 words, the page title on a line
before each chunk, k-NN only. No sections, no header budget, no keyword
search, no per-document cap. The embedder reads what fits its window
(all-MiniLM-L6-v2: 256 tokens) and the chunk handed to the model is the
whole 200 words.

If the product's defaults score below this on a corpus, the product loses
passages somewhere (extraction, chunk unit, header, fusion): docs/evaluation.md.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from selectolax.lexbor import LexborHTMLParser

from cli.eval.corpus import IndexReport
from cli.eval.questions import EvalQuestion
from cli.eval.runner import EvalSummary
from cli.eval.set_runner import evaluate_index, indexed_corpus, temporary_stores
from cli.files import discover
from shared.chunking import word_windows
from shared.documents import Chunk, EmbeddedChunk, chunk_id_for
from shared.errors import DocumentError
from shared.loaders import HTML, load, resolve_content_type
from shared.ports import Embedder, VectorIndex
from shared.settings import QuerySettings, Settings

NAIVE_WORDS = 200
NAIVE_OVERLAP = 40
_GENERATION = "naive"
_DROPPED = "script, style, noscript, template, nav, header, footer, aside, form, svg"
_MAIN = ("[role=main]", "main", "article", "body")
# A block tag starts a new word: "<dt>f</dt><dd>does</dd>" must not read "fdoes".
_BLOCK_START = re.compile(
    r"<(?=(?:p|div|dt|dd|li|tr|td|th|h[1-6]|br|pre|table|section|dl|ul|ol|blockquote)\b)",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class NaivePage:
    title: str | None
    words: list[str]


def naive_page(data: bytes, content_type: str | None, filename: str) -> NaivePage:
    """The page's main text as words, and its title."""
    if resolve_content_type(content_type, filename) == HTML:
        return _html_page(data.decode("utf-8", errors="replace"))
    loaded = load(data, content_type, filename=filename)
    return NaivePage(loaded.title, loaded.text.split())


def _html_page(markup: str) -> NaivePage:
    tree = LexborHTMLParser(_BLOCK_START.sub(" <", markup))
    node = tree.css_first("title")
    title = " ".join(node.text().split()) if node is not None else None
    for dropped in tree.css(_DROPPED):
        dropped.decompose()
    root = next((n for n in (tree.css_first(s) for s in _MAIN) if n is not None), tree.root)
    text = root.text(deep=True) if root is not None else ""
    return NaivePage(title or None, text.split())


def naive_chunks(doc_id: str, page: NaivePage) -> list[Chunk]:
    chunks = []
    for ordinal, window in enumerate(word_windows(len(page.words), NAIVE_WORDS, NAIVE_OVERLAP)):
        text = " ".join(page.words[window.start : window.stop])
        chunks.append(
            Chunk(
                chunk_id=chunk_id_for(doc_id, _GENERATION, ordinal),
                doc_id=doc_id,
                generation=_GENERATION,
                ordinal=ordinal,
                text=text,
                start=0,
                end=0,
                title=page.title,
            )
        )
    return chunks


def embedding_text(chunk: Chunk) -> str:
    """The title line, then the chunk: what the naive pipeline embeds."""
    return f"{chunk.title}\n{chunk.text}" if chunk.title else chunk.text


async def index_naive(folder: Path, index: VectorIndex, embedder: Embedder) -> IndexReport:
    """Index ``folder`` the naive way (doc ids as ``rag ingest FOLDER`` gives them)."""
    files, _skipped = discover([folder])
    if not files:
        raise DocumentError(f"no supported documents under {folder}")
    await index.ensure_index(embedder.dimension)
    started = time.perf_counter()
    total = 0
    failed: dict[str, str] = {}
    for source in files:
        data = await asyncio.to_thread(source.path.read_bytes)
        try:
            page = naive_page(data, source.content_type, source.path.name)
        except DocumentError as exc:
            failed[source.doc_id] = str(exc)
            continue
        chunks = naive_chunks(source.doc_id, page)
        if not chunks:
            continue
        vectors = await embedder.embed_documents([embedding_text(c) for c in chunks])
        await index.write([EmbeddedChunk(c, v) for c, v in zip(chunks, vectors, strict=True)])
        total += len(chunks)
    return IndexReport(len(files), total, failed, time.perf_counter() - started)


def naive_query_settings(base: QuerySettings) -> QuerySettings:
    """k-NN as it comes: no per-document cap, only exact duplicates dropped."""
    return base.model_copy(
        update={"search_mode": "knn", "max_chunks_per_doc": 1000, "near_duplicate_threshold": 1.0}
    )


async def evaluate_naive(
    name: str,
    corpus: Path,
    questions: Sequence[EvalQuestion],
    settings: Settings,
    embedder: Embedder,
) -> tuple[IndexReport, EvalSummary]:
    """``corpus`` indexed the naive way into a temporary embedded store, and
    ``questions`` run against it by k-NN at the settings' k."""
    async with temporary_stores(f"naive-{name}", settings) as (local, index, _status):
        report = await index_naive(corpus, index, embedder)
        query = naive_query_settings(local.query)
        summaries = await evaluate_index(index, questions, query, embedder, ("knn",))
        return report, summaries["knn"]


@dataclass(frozen=True)
class BaselineRow:
    pipeline: str  # "product" or "naive"
    chunks: int
    index_seconds: float
    summary: EvalSummary


async def product_beside_naive(
    corpus: Path, questions: Sequence[EvalQuestion], settings: Settings, embedder: Embedder, k: int
) -> list[BaselineRow]:
    """``corpus`` indexed by the product (the given settings, k-NN and hybrid)
    and by the naive pipeline, each into a temporary embedded store, with the
    same embedder and questions: ``rag eval --baseline naive``."""
    settings = settings.model_copy(
        update={"query": settings.query.model_copy(update={"default_k": k})}
    )
    rows = []
    async with indexed_corpus("product", corpus, settings, embedder) as (index, report):
        summaries = await evaluate_index(index, questions, settings.query, embedder)
        for summary in summaries.values():
            rows.append(BaselineRow("product", report.chunks, report.seconds, summary))
    naive_report, naive_summary = await evaluate_naive(
        "naive", corpus, questions, settings, embedder
    )
    rows.append(BaselineRow("naive", naive_report.chunks, naive_report.seconds, naive_summary))
    return rows


def baseline_text(rows: Sequence[BaselineRow]) -> str:
    header = (
        f"{'pipeline':<8} {'mode':<7} {'chunks':>6} {'chunks/s':>8} "
        f"{'R@1':>6} {'R@5':>6} {'MRR':>6} {'P@3':>6} {'P@5':>6}"
    )
    lines = [header, "-" * len(header)]
    for row in rows:
        m = row.summary.metrics
        rate = row.chunks / row.index_seconds if row.index_seconds > 0 else 0.0
        passages = [m.get("passage@3"), m.get("passage@5")]
        p3, p5 = ("-" if v is None else f"{v:.3f}" for v in passages)
        lines.append(
            f"{row.pipeline:<8} {row.summary.mode:<7} {row.chunks:>6} {rate:>8.1f} "
            f"{m['recall@1']:>6.3f} {m['recall@5']:>6.3f} {m['mrr']:>6.3f} {p3:>6} {p5:>6}"
        )
    return "\n".join(lines)


def baseline_json(rows: Sequence[BaselineRow], context: dict[str, Any]) -> dict[str, Any]:
    return {
        **context,
        "runs": [
            {
                "pipeline": row.pipeline,
                "mode": row.summary.mode,
                "chunks": row.chunks,
                "index_seconds": round(row.index_seconds, 2),
                **{key: round(value, 4) for key, value in row.summary.metrics.items()},
            }
            for row in rows
        ],
    }
