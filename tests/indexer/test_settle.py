"""The settle time follows the collection kind, never shorter than its refresh (#26 item 1)."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from shared.settings import Settings


def _settings(
    kind: str, index: dict[str, Any] | None = None, indexer: dict[str, Any] | None = None
) -> Settings:
    base = {"backend": "opensearch", "opensearch_url": "http://x", "collection_kind": kind}
    return Settings(_env_file=None, index=base | (index or {}), indexer=indexer or {})


@pytest.mark.parametrize(
    ("kind", "refresh_s", "settle_s"),
    # AWS: 60 s in classic vector collections, 10 s in NextGen ones; OpenSearch's 1 s.
    [("classic", 60.0, 90.0), ("nextgen", 10.0, 15.0), ("managed", 1.0, 1.5)],
)
def test_the_settle_time_is_the_kinds_refresh_with_a_margin(
    kind: str, refresh_s: float, settle_s: float
) -> None:
    settings = _settings(kind)
    assert settings.index.refresh_interval_s() == refresh_s
    assert settings.settle_seconds() == settle_s


def test_a_managed_index_declares_its_own_refresh_interval() -> None:
    settings = _settings("managed", index={"refresh_s": 5.0})
    assert settings.settle_seconds() == 7.5


def test_the_embedded_store_needs_no_settle() -> None:
    assert Settings(_env_file=None).settle_seconds() == 0.0


@pytest.mark.parametrize(("kind", "settle_s"), [("classic", 30.0), ("nextgen", 10.0)])
def test_a_settle_shorter_than_the_refresh_is_refused(kind: str, settle_s: float) -> None:
    # The landed default (30 s) against a classic collection's 60 s refresh.
    with pytest.raises(ValidationError, match="shorter than"):
        _settings(kind, indexer={"settle_s": settle_s})


def test_a_longer_settle_is_kept() -> None:
    assert _settings("classic", indexer={"settle_s": 120.0}).settle_seconds() == 120.0


def test_aws_fixes_the_refresh_interval_of_aoss_collections() -> None:
    with pytest.raises(ValidationError, match="managed OpenSearch only"):
        _settings("classic", index={"refresh_s": 1.0})


def test_an_unknown_kind_is_refused() -> None:
    with pytest.raises(ValidationError):
        _settings("serverless")
