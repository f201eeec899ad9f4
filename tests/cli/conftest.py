"""The CLI's tests, one folder per command group (as cli/ is laid out); they
share tests/local's ``rag`` subprocess helper and its ``rag serve`` fixture."""

from tests.local.conftest import server_factory

__all__ = ["server_factory"]
