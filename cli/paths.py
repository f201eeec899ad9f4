"""Where the CLI keeps and finds things (cheap to import: no pydantic, no I/O)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from shared.settings import Settings

# The repo's sample documents (`rag ingest --sample`, the page's button, eval --compare).
SAMPLES_DIR = Path(__file__).resolve().parents[1] / "samples" / "corpus"
APP_NAME = "rag"


def default_data_dir() -> Path:
    """The per-user data folder used when neither --data-dir, RAG_DATA_DIR nor
    .env names one: ~/.local/share/rag on Linux, ~/Library/Application
    Support/rag on macOS, %LOCALAPPDATA%\\rag on Windows."""
    from platformdirs import user_data_path

    return user_data_path(APP_NAME, appauthor=False)


def load_cli_settings(**overrides: Any) -> Settings:
    """Settings for a CLI command: an explicit ``data_dir`` (--data-dir) beats
    RAG_DATA_DIR (and .env), which beat the per-user data folder."""
    from pydantic import ValidationError

    from shared.errors import ConfigurationError
    from shared.settings import load_settings

    try:
        settings = load_settings(**overrides)
    except ValidationError as exc:
        problems = "; ".join(
            f"RAG_{'__'.join(str(p) for p in e['loc']).upper()}: {e['msg']}" for e in exc.errors()
        )
        raise ConfigurationError(f"invalid setting: {problems}") from exc
    if "data_dir" not in settings.model_fields_set:
        settings = settings.model_copy(update={"data_dir": default_data_dir()})
    return settings
