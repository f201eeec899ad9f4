"""``rag eval --attribution SET.jsonl``: measure the sentence attribution
(services/query/answer/attribution.py) on labelled answers (evalsets/attribution/).

Each line of a set is one answer: its question, the sources the prompt held
and its sentences, each labelled ``supported`` / ``fabricated`` (by kind) /
``no_claim``. The answer is the sentences joined by spaces; the product's own
attributor checks it against the sources with the configured embedder, and
every labelled sentence gets the verdict of the answer sentences that overlap
it (a fabricated sentence is caught if any of its parts is unsupported; a
supported one is wrongly flagged if any part is not supported).

Reported: the share of fabricated sentences caught (marked ``unsupported``)
per kind and overall, also split by whether the sentence carries a ``[n]``
marker; supported sentences wrongly flagged (``unsupported`` or ``no_claim``);
pleasantries reported as ``no_claim``; and ms per sentence (the attribution
after the answer ended, sources read ahead as the service does while the model
generates; and cold, sources included).
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from services.query.answer.attribution import Attributor
from shared.errors import RagError
from shared.ports import Embedder
from shared.protocol import AnswerSentence, SentenceSupport

LABELS = ("supported", "fabricated", "no_claim")
FABRICATED_KINDS = ("swap", "negation", "invented", "other_doc", "filler")


@dataclass(frozen=True)
class LabelledSentence:
    text: str
    label: str
    kind: str
    start: int
    end: int


@dataclass(frozen=True)
class LabelledAnswer:
    id: str
    question: str
    sources: tuple[str, ...]
    titles: tuple[str | None, ...]
    sentences: tuple[LabelledSentence, ...]

    @property
    def text(self) -> str:
        return " ".join(s.text for s in self.sentences)


def parse_answer(raw: dict[str, Any], where: str) -> LabelledAnswer:
    try:
        sources = tuple(str(s["text"]) for s in raw["sources"])
        titles = tuple(s.get("title") for s in raw["sources"])
        sentences: list[LabelledSentence] = []
        position = 0
        for item in raw["sentences"]:
            text, label, kind = str(item["text"]), str(item["label"]), str(item["kind"])
            if label not in LABELS:
                raise RagError(f"{where}: unknown label {label!r} (one of {', '.join(LABELS)})")
            sentences.append(LabelledSentence(text, label, kind, position, position + len(text)))
            position += len(text) + 1
        return LabelledAnswer(
            str(raw["id"]), str(raw["question"]), sources, titles, tuple(sentences)
        )
    except (KeyError, TypeError) as exc:
        raise RagError(f"{where}: not a labelled answer ({exc!r})") from exc


def load_set(path: Path) -> list[LabelledAnswer]:
    if not path.is_file():
        raise RagError(f"{path} is not a file (an attribution set: evalsets/attribution/*.jsonl)")
    answers = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if line.strip():
            try:
                raw = json.loads(line)
            except json.JSONDecodeError as exc:
                raise RagError(f"{path}:{number}: not JSON ({exc})") from exc
            answers.append(parse_answer(raw, f"{path}:{number}"))
    if not answers:
        raise RagError(f"{path} holds no labelled answer")
    return answers


@dataclass(frozen=True)
class Verdict:
    """One labelled sentence and what the attributor said about it."""

    sentence: LabelledSentence
    supports: tuple[SentenceSupport, ...]  # of the answer sentences overlapping it
    marked: bool

    @property
    def caught(self) -> bool:
        return SentenceSupport.UNSUPPORTED in self.supports

    @property
    def accepted(self) -> bool:
        return bool(self.supports) and all(s == SentenceSupport.SUPPORTED for s in self.supports)

    @property
    def no_claim(self) -> bool:
        return bool(self.supports) and all(s == SentenceSupport.NO_CLAIM for s in self.supports)


def verdicts_for(answer: LabelledAnswer, found: Sequence[AnswerSentence]) -> list[Verdict]:
    out = []
    for labelled in answer.sentences:
        overlapping = tuple(
            s.support for s in found if s.start < labelled.end and s.end > labelled.start
        )
        marked = "[" in labelled.text and any(ch.isdigit() for ch in labelled.text)
        out.append(Verdict(labelled, overlapping, marked))
    return out


def _share(part: int, whole: int) -> float | None:
    return part / whole if whole else None


@dataclass(frozen=True)
class AttributionReport:
    verdicts: tuple[Verdict, ...]
    warm_ms: float  # attribution after the answer ended, sources prepared
    cold_ms: float  # the same with the sources' sentences embedded too

    def of(self, label: str, kind: str | None = None) -> list[Verdict]:
        return [
            v
            for v in self.verdicts
            if v.sentence.label == label and (kind is None or v.sentence.kind == kind)
        ]

    def as_json(self) -> dict[str, Any]:
        fabricated = self.of("fabricated")
        supported = self.of("supported")
        pleasant = self.of("no_claim")
        count = len(self.verdicts)
        by_kind = {}
        for kind in FABRICATED_KINDS:
            group = self.of("fabricated", kind)
            by_kind[kind] = {"caught": sum(v.caught for v in group), "of": len(group)}
        marked = [v for v in fabricated if v.marked]
        plain = [v for v in fabricated if not v.marked]
        flagged = [v for v in supported if not v.accepted]
        return {
            "sentences": count,
            "fabricated_caught": _share(sum(v.caught for v in fabricated), len(fabricated)),
            "fabricated": len(fabricated),
            "caught_by_kind": by_kind,
            "caught_with_marker": {"caught": sum(v.caught for v in marked), "of": len(marked)},
            "caught_without_marker": {"caught": sum(v.caught for v in plain), "of": len(plain)},
            "supported_wrongly_flagged": _share(len(flagged), len(supported)),
            "supported": len(supported),
            "supported_flagged_unsupported": sum(v.caught for v in supported),
            "supported_flagged_no_claim": sum(
                SentenceSupport.NO_CLAIM in v.supports for v in supported
            ),
            "pleasantries_no_claim": _share(sum(v.no_claim for v in pleasant), len(pleasant)),
            "pleasantries": len(pleasant),
            "ms_per_sentence": round(self.warm_ms / count, 2) if count else None,
            "ms_per_sentence_cold": round(self.cold_ms / count, 2) if count else None,
            "misses": [
                {
                    "kind": v.sentence.kind,
                    "text": v.sentence.text,
                    "got": [str(s) for s in v.supports],
                }
                for v in self.verdicts
                if (v.sentence.label == "fabricated" and not v.caught)
                or (v.sentence.label == "supported" and not v.accepted)
                or (v.sentence.label == "no_claim" and not v.no_claim)
            ],
        }

    def text_lines(self) -> list[str]:
        data = self.as_json()

        def pct(value: float | None) -> str:
            return "-" if value is None else f"{value:.3f}"

        lines = [
            f"fabricated caught     {pct(data['fabricated_caught'])}   ({data['fabricated']})",
        ]
        for kind, row in data["caught_by_kind"].items():
            lines.append(
                f"  {kind:<19} {pct(_share(row['caught'], row['of']))}   "
                f"({row['caught']}/{row['of']})"
            )
        for name in ("with_marker", "without_marker"):
            row = data[f"caught_{name}"]
            lines.append(
                f"  {name.replace('_', ' '):<19} {pct(_share(row['caught'], row['of']))}   "
                f"({row['caught']}/{row['of']})"
            )
        lines += [
            f"supported flagged     {pct(data['supported_wrongly_flagged'])}   "
            f"({data['supported_flagged_unsupported']} unsupported, "
            f"{data['supported_flagged_no_claim']} no_claim, of {data['supported']})",
            f"pleasantries no_claim {pct(data['pleasantries_no_claim'])}   "
            f"({data['pleasantries']})",
            f"ms per sentence       {data['ms_per_sentence']} "
            f"(cold, sources embedded too: {data['ms_per_sentence_cold']})",
        ]
        return lines


async def evaluate_attribution(
    answers: Sequence[LabelledAnswer], embedder: Embedder | None
) -> AttributionReport:
    """Attribute every labelled answer; time it as the service spends it: the
    sources are read while the model generates (``prepare``), the answer's
    sentences after it ends. A fresh attributor per answer, so nothing of an
    earlier answer is reused; ``cold`` also times reading the sources."""
    verdicts: list[Verdict] = []
    warm = cold = 0.0
    if embedder is not None:  # load the model before the clock runs
        await embedder.embed_documents(["warm up"])
    for answer in answers:
        attributor = Attributor(embedder)
        started = time.perf_counter()
        await attributor.prepare(answer.sources)
        prepared = time.perf_counter()
        result = await attributor.attribute(answer.text, answer.sources, answer.titles)
        ended = time.perf_counter()
        warm += (ended - prepared) * 1000
        cold += (ended - started) * 1000
        verdicts += verdicts_for(answer, result.sentences)
    return AttributionReport(tuple(verdicts), warm, cold)
