"""The k-NN engine setting refuses nmslib at start-up (issue #26 item 3).

Every k-NN search carries the caller's access groups inside ``knn.filter``;
OpenSearch runs that efficient filter only on the lucene and faiss engines.
"""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from shared.settings import load_settings


def test_nmslib_is_refused_when_settings_load(monkeypatch: pytest.MonkeyPatch) -> None:
    # GIVEN the engine set to nmslib in the environment
    monkeypatch.setenv("RAG_INDEX__ENGINE", "nmslib")
    # WHEN settings load THEN they refuse it, saying why and what to set
    with pytest.raises(ValidationError) as refused:
        load_settings()
    message = str(refused.value)
    assert "knn.filter" in message
    assert "RAG_INDEX__ENGINE=faiss" in message


@pytest.mark.parametrize("engine", ["faiss", "lucene"])
def test_filtering_engines_load(monkeypatch: pytest.MonkeyPatch, engine: str) -> None:
    monkeypatch.setenv("RAG_INDEX__ENGINE", engine)
    assert load_settings().index.engine == engine
