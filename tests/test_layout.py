"""The import rules of docs/architecture.md, checked on the source.

GIVEN every Python module of the product, THEN shared/ imports nothing of
ours, the two services never import each other, and neither the services nor
shared import the CLI or the Pulumi program.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
OURS = ("shared", "services", "cli", "infra")


def imported(path: Path) -> set[str]:
    """Top two levels of every module ``path`` imports (e.g. ``services.query``)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return {".".join(name.split(".")[:2]) for name in names if name.split(".")[0] in OURS}


def violations(folder: str, forbidden: tuple[str, ...]) -> list[str]:
    sources = sorted((ROOT / folder).rglob("*.py"))
    assert sources, f"no sources under {folder}/"
    return [
        f"{path.relative_to(ROOT)} imports {name}"
        for path in sources
        for name in sorted(imported(path))
        if name.startswith(forbidden)
    ]


@pytest.mark.parametrize(
    ("folder", "forbidden"),
    [
        ("shared", ("services", "cli", "infra")),
        ("services/query", ("services.indexer", "cli", "infra")),
        ("services/indexer", ("services.query", "cli", "infra")),
    ],
)
def test_imports_point_the_documented_way(folder: str, forbidden: tuple[str, ...]) -> None:
    assert violations(folder, forbidden) == []


def test_the_check_sees_an_import_when_there_is_one() -> None:
    assert "cli.local_parts" in imported(ROOT / "cli" / "serve.py")
    assert "services.query" in imported(ROOT / "cli" / "serve.py")
