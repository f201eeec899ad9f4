"""The evaluation question file: JSON Lines, one question per line.

    {"question": "How do I …?", "doc_ids": ["guide/setup.md"], "passage": "exact words"}

``doc_ids`` name the documents (ids as given at ingest: for ``rag ingest DIR``
the path relative to DIR) that answer the question; any one of them counts.
``passage`` (optional) is a short piece of text a retrieved chunk should
contain. ``filters`` (optional) are metadata filters passed to retrieval as
the query service would. Blank lines and lines starting with ``#`` are skipped.
"""

from __future__ import annotations

import json
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from shared.errors import RagError
from shared.protocol import Filters


class QuestionFileError(RagError):
    """The question file is missing or has invalid lines (all listed)."""

    code = "invalid_question_file"


class EvalQuestion(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    question: str = Field(min_length=1, max_length=4000)
    doc_ids: list[str] = Field(min_length=1)
    passage: str | None = Field(default=None, min_length=1)
    filters: Filters = Field(default_factory=dict)


def parse_questions(lines: list[str], source: str = "<questions>") -> list[EvalQuestion]:
    """Parse every line; raise one QuestionFileError naming each bad line."""
    questions: list[EvalQuestion] = []
    problems: list[str] = []
    for number, line in enumerate(lines, start=1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        try:
            questions.append(EvalQuestion.model_validate(json.loads(stripped)))
        except json.JSONDecodeError as exc:
            problems.append(f"{source}:{number}: not JSON ({exc.msg})")
        except ValidationError as exc:
            detail = "; ".join(
                f"{'.'.join(str(p) for p in e['loc']) or '(line)'}: {e['msg']}"
                for e in exc.errors()
            )
            problems.append(f"{source}:{number}: {detail}")
    if problems:
        raise QuestionFileError("invalid question file:\n" + "\n".join(problems))
    if not questions:
        raise QuestionFileError(f"{source}: no questions")
    return questions


def load_questions(path: Path) -> list[EvalQuestion]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise QuestionFileError(f"cannot read {path}: {exc.strerror or exc}") from exc
    return parse_questions(text.splitlines(), str(path))
