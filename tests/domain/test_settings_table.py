"""The README's and docs/settings.md's settings tables are the model's (#24 item 6).

The README said `RAG_QUERY__SEARCH_MODE` defaults to `knn` and chunks to 200
tokens while the code said hybrid and 222: the tables are now generated from
``shared/settings.py`` (``scripts/settings-table``) and this test fails when
either is stale.
"""

from __future__ import annotations

from shared.settings import Settings
from shared.settings_table import BEGIN, END, REPO, readme_table, rows, stale


def test_the_committed_tables_are_the_generated_ones() -> None:
    assert stale() == [], "run scripts/settings-table and commit README.md, docs/settings.md"


def test_every_setting_has_a_row_with_the_models_default() -> None:
    by_name = {r.variable: r for r in rows()}
    defaults = Settings()
    assert by_name["RAG_QUERY__SEARCH_MODE"].default == f"`{defaults.query.search_mode}`"
    assert by_name["RAG_CHUNKING__CHUNK_TOKENS"].default == f"`{defaults.chunking.chunk_tokens}`"
    assert by_name["RAG_QUERY__SEARCH_MODE"].values == "`knn` \\| `hybrid`"
    assert by_name["RAG_CHUNKING__CHUNK_TOKENS"].values == "≥ 16, ≤ 254"
    assert len(by_name) > 80  # every leaf of the tree, not a hand-picked few


def test_the_readme_shows_the_generated_table_between_its_markers() -> None:
    readme = (REPO / "README.md").read_text()
    block = readme[readme.index(BEGIN) + len(BEGIN) : readme.index(END)]
    assert block.strip() == readme_table()
    assert "| `RAG_QUERY__SEARCH_MODE` | `hybrid` |" in block
