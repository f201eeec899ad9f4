"""`rag ingest` into OpenSearch, as a user runs it (issue #24, item 4).

GIVEN local mode pointed at the real OpenSearch node and an index name that
does not exist yet, WHEN `rag ingest FOLDER` runs (no server: it indexes
in-process), THEN the documents are indexed and the command exits 0, instead
of failing on a 404 while it counted generations for its progress line.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.local.conftest import rag

pytestmark = pytest.mark.slow


def test_ingest_into_a_fresh_opensearch_index(
    tmp_path: Path, opensearch_url: str, opensearch_knn_engine: str, opensearch_index_name: str
) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "park.txt").write_text("Visitors park in the north lot beside the llama barn.\n")
    (docs / "food.md").write_text("# Food\n\nThe llamas eat hay and grass twice a day.\n")
    env = {
        "RAG_DATA_DIR": str(tmp_path / "data"),
        "RAG_INDEX__BACKEND": "opensearch",
        "RAG_INDEX__OPENSEARCH_URL": opensearch_url,
        "RAG_INDEX__ENGINE": opensearch_knn_engine,
        "RAG_INDEX__INDEX_NAME": opensearch_index_name,
    }

    result = rag("ingest", str(docs), env=env, timeout=300)

    assert result.returncode == 0, result.stderr
    assert "2 document(s) indexed" in result.stdout
    listed = rag("docs", env=env)
    assert "park.txt" in listed.stdout and "food.md" in listed.stdout
