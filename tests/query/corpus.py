"""A tiny corpus for query tests: distinct topics so hash-embedding retrieval is predictable."""

from __future__ import annotations

from shared.documents import Chunk, EmbeddedChunk, chunk_id_for
from tests.fakes.embedder import FakeEmbedder

DOCS: dict[str, tuple[str, dict[str, str], list[str]]] = {
    "llamas": (
        "Llama care",
        {"team": "farm"},
        [
            "Llamas eat grass and hay and need fresh water every day.",
            "A llama herd should have at least two animals because llamas are social.",
        ],
    ),
    "vacation": (
        "Vacation policy",
        {"team": "hr"},
        [
            "Employees get twenty five vacation days per year.",
            "Unused vacation days expire at the end of March of the following year.",
        ],
    ),
    "vacation-copy": (
        "Vacation policy (copy)",
        {"team": "hr"},
        ["Employees get twenty five vacation days per year."],
    ),
    "servers": (
        "Server room",
        {"team": "it"},
        ["The server room is cooled to eighteen degrees and locked at night."],
    ),
}


def unembedded_chunks() -> list[Chunk]:
    """The corpus as chunks, for tests that embed them with a real embedder."""
    chunks = []
    for doc_id, (title, metadata, texts) in DOCS.items():
        for ordinal, text in enumerate(texts):
            chunk = Chunk(
                chunk_id=chunk_id_for(doc_id, "g1", ordinal),
                doc_id=doc_id,
                generation="g1",
                ordinal=ordinal,
                text=text,
                start=0,
                end=len(text),
                title=title,
                source_uri=f"s3://docs/{doc_id}.txt",
                metadata=metadata,
            )
            chunks.append(chunk)
    return chunks


def corpus_chunks(embedder: FakeEmbedder) -> list[EmbeddedChunk]:
    return [EmbeddedChunk(chunk=c, vector=embedder.vector(c.text)) for c in unembedded_chunks()]
