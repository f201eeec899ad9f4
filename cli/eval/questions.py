"""The evaluation question file: JSON Lines, one question per line.

    {"question": "How do I …?", "doc_ids": ["guide/setup.md"], "passage": "exact words"}

``doc_ids`` name the documents (ids as given at ingest: for ``rag ingest DIR``
the path relative to DIR) that answer the question; any one of them counts.
``passage`` (optional) is the answer's key string, or a list of 1–3
alternative spellings of it (``["shlex.split(", "split(s"]``): a retrieved
chunk of an expected document should contain one of them. ``filters``
(optional) are metadata filters passed to retrieval as the query service
would. Blank lines and lines starting with ``#`` are skipped.
"""

from __future__ import annotations

import json
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from shared.errors import RagError
from shared.protocol import Filters

MAX_PASSAGES = 3


class QuestionFileError(RagError):
    """The question file is missing or has invalid lines (all listed)."""

    code = "invalid_question_file"


class EvalQuestion(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    question: str = Field(min_length=1, max_length=4000)
    doc_ids: list[str] = Field(min_length=1)
    passage: str | list[str] | None = Field(default=None)
    filters: Filters = Field(default_factory=dict)

    @field_validator("passage")
    @classmethod
    def _one_to_three(cls, value: str | list[str] | None) -> str | list[str] | None:
        alternatives = [value] if isinstance(value, str) else (value or [])
        if value is not None and not 1 <= len(alternatives) <= MAX_PASSAGES:
            raise ValueError(f"give 1 to {MAX_PASSAGES} alternative key strings")
        if any(not a.strip() for a in alternatives):
            raise ValueError("a key string must not be empty")
        return value

    @property
    def passages(self) -> tuple[str, ...]:
        """The alternative key strings (empty when the question gives none)."""
        if self.passage is None:
            return ()
        return (self.passage,) if isinstance(self.passage, str) else tuple(self.passage)


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
