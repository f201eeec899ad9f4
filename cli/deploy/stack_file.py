"""A stack's ``Pulumi.NAME.yaml`` and the Pulumi program beside it, as ``rag doctor``
and ``rag cost`` read them (each says in its own words where the file should be)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any


def read_config(path: Path) -> dict[str, Any]:
    """The file's ``config:`` map (an existing file; callers word the not-found fix)."""
    import yaml

    values = (yaml.safe_load(path.read_text()) or {}).get("config") or {}
    if not isinstance(values, dict):
        raise ValueError(f"{path.name}: `config:` is not a map")
    return values


def project_on_path(project: Path) -> bool:
    """The Pulumi program (``infra/``) is not part of the installed package: the
    ``rag`` script imports it from a project folder, as Pulumi does. False when
    ``project`` has no ``infra/``."""
    if not (project / "infra" / "__init__.py").is_file():
        return False
    if str(project) not in sys.path:
        sys.path.insert(0, str(project))
    return True
