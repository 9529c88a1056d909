"""Extracted tasks vs the hand-annotated gold file (data/eval/directives.jsonl) → precision and recall.

- Triples: the set of (Kết luận, agency, deadline) over every task, one triple per responsible agency
  (the deadline an ISO date or none; a recurring deadline counts as none, as the gold file writes it).
  Agency names on both sides go through the agency table (index/language/agencies.py), so a gold name that
  is an alias of a canonical name ("Ủy ban nhân dân các tỉnh, thành phố") counts as that name.
- Spans: a gold span is found when an extracted action span in the same file (a directive's own `source`
  or one of its `also_sources`) overlaps it with character IoU >= 0.5 (|A ∩ B| / |A ∪ B| over the
  [start, end) offsets). Span precision is the share of extracted spans that find a gold span that way.
- Tasks: a gold task is found when any of its spans is; an extracted directive is right when any of its
  spans finds a gold span.
- Verbatim: every extracted action equals the source text at its offsets.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from index.language import agencies as agency_names
from index.models import Directive

IOU = 0.5


@dataclass
class DirectiveReport:
    gold_tasks: int
    extracted: int
    triple_precision: float
    triple_recall: float
    span_precision: float
    span_recall: float
    task_recall: float
    task_precision: float
    verbatim: float
    missed_triples: list[str] = field(default_factory=list)
    extra_triples: list[str] = field(default_factory=list)
    missed_tasks: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def load_gold(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text("utf-8").splitlines() if line.strip()]


def _canonical(name: str) -> str:
    found = agency_names.resolve(name)
    return found.name if found else name


def _iou(a: tuple[int, int], b: tuple[int, int]) -> float:
    inter = max(0, min(a[1], b[1]) - max(a[0], b[0]))
    union = max(a[1], b[1]) - min(a[0], b[0])
    return inter / union if union > 0 else 0.0


def _ratio(n: int, d: int) -> float:
    return round(n / d, 3) if d else 1.0


def _spans(d: Directive) -> list[tuple[str, int, int]]:
    return [(s.file, s.start, s.end) for s in (d.source, *d.also_sources)]


def evaluate(
    directives: list[Directive], gold: list[dict[str, Any]], sources: dict[str, str]
) -> DirectiveReport:
    """Precision and recall of `directives` against `gold`; `sources` maps file names to their text."""

    def triples_of(ket_luan: str, names: list[str], deadline: str | None) -> set[tuple[str, str, str]]:
        return {(ket_luan, _canonical(a), deadline or "-") for a in names}

    gold_triples: set[tuple[str, str, str]] = set()
    for g in gold:
        gold_triples |= triples_of(g["ket_luan"], g["agencies"], g.get("deadline"))
    found_triples: set[tuple[str, str, str]] = set()
    for d in directives:
        found_triples |= triples_of(d.ket_luan, d.agencies, d.deadline.isoformat() if d.deadline else None)
    hit = gold_triples & found_triples

    gold_spans = [(g["id"], (s["file"], s["start"], s["end"])) for g in gold for s in g["spans"]]
    ours = [(d.directive_id, span) for d in directives for span in _spans(d)]

    def matches(a: tuple[str, int, int], b: tuple[str, int, int]) -> bool:
        return a[0] == b[0] and _iou((a[1], a[2]), (b[1], b[2])) >= IOU

    found_gold = {i for i, (_, g) in enumerate(gold_spans) if any(matches(g, o) for _, o in ours)}
    right_ours = {i for i, (_, o) in enumerate(ours) if any(matches(o, g) for _, g in gold_spans)}
    gold_ids_found = {gold_spans[i][0] for i in found_gold}
    ours_right = {ours[i][0] for i in right_ours}
    verbatim = sum(
        sources.get(d.source.file, "")[d.source.start : d.source.end] == d.action for d in directives
    )
    return DirectiveReport(
        gold_tasks=len(gold),
        extracted=len(directives),
        triple_precision=_ratio(len(hit), len(found_triples)),
        triple_recall=_ratio(len(hit), len(gold_triples)),
        span_precision=_ratio(len(right_ours), len(ours)),
        span_recall=_ratio(len(found_gold), len(gold_spans)),
        task_recall=_ratio(len(gold_ids_found), len(gold)),
        task_precision=_ratio(len(ours_right), len(directives)),
        verbatim=_ratio(verbatim, len(directives)),
        missed_triples=sorted(" | ".join(t) for t in gold_triples - found_triples),
        extra_triples=sorted(" | ".join(t) for t in found_triples - gold_triples),
        missed_tasks=sorted({g["id"] for g in gold} - gold_ids_found),
    )


def build_report(build: Path, gold_path: Path) -> DirectiveReport:
    """The report for the tasks a built index holds (its directives.jsonl and its copy of the sources)."""
    from index.tasks import TaskBook

    sources = {
        p.relative_to(build / "sources").as_posix(): p.read_text("utf-8")
        for p in (build / "sources").rglob("*")
        if p.is_file()
    }
    return evaluate(TaskBook.load(build).directives, load_gold(gold_path), sources)
