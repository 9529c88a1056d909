"""Extracted directives and references of a build → filtered, sorted task lists (the task tracker's query side)."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Literal
from zoneinfo import ZoneInfo

from pydantic import BaseModel, Field

from index.errors import BadQuery, NotFound
from index.language import agencies as agency_names
from index.language.references import normalize_ket_luan
from index.models import Directive, Reference
from index.textnorm import fold, normalize

DIRECTIVES_FILE = "directives.jsonl"
REFERENCES_FILE = "references.jsonl"
TIMEZONE = ZoneInfo("Asia/Ho_Chi_Minh")
Status = Literal["overdue", "upcoming", "no_deadline"]


def today() -> dt.date:
    return dt.datetime.now(TIMEZONE).date()


class UnknownAgency(NotFound):
    """An agency filter that names no known agency; `suggestions` are the closest known names."""

    code = "unknown_agency"

    def __init__(self, name: str, suggestions: list[str]) -> None:
        hint = f"; gần nhất: {', '.join(suggestions)}" if suggestions else ""
        super().__init__(f"không biết cơ quan {name!r}{hint}")
        self.name = name
        self.suggestions = suggestions


class TaskQuery(BaseModel):
    """Filters of GET /v1/directives; every field optional, combined with AND."""

    agency: str | None = Field(default=None, description="any alias, accent- and case-insensitive")
    ket_luan: str | None = Field(default=None, description='"183-KL/TW" or "183"')
    due_after: dt.date | None = None
    due_before: dt.date | None = None
    status: Status | None = None
    as_of: dt.date | None = Field(default=None, description="the day status is judged on; default today (VN)")
    q: str | None = Field(default=None, description="words that must all appear in the action")
    role: Literal["any", "lead", "partner"] = "any"


@dataclass(frozen=True)
class AgencyCount:
    name: str
    aliases: tuple[str, ...]
    directives: int


def _ket_luan_key(raw: str) -> str:
    number = normalize_ket_luan(raw)
    if number is None:
        raise BadQuery(f"not a Kết luận number: {raw!r} (expected e.g. 183-KL/TW or 183)")
    return number


class TaskBook:
    """The tasks and references of one build. Read-only; thread-safe."""

    def __init__(self, directives: list[Directive], references: list[Reference]) -> None:
        self.directives = directives
        self.references = references

    @classmethod
    def load(cls, build: Path) -> TaskBook:
        """Read a build's extraction; a build without one (older format) has no tasks."""

        def rows(name: str) -> list[str]:
            path = build / name
            return path.read_text("utf-8").splitlines() if path.exists() else []

        return cls(
            [Directive.model_validate_json(line) for line in rows(DIRECTIVES_FILE) if line.strip()],
            [Reference.model_validate_json(line) for line in rows(REFERENCES_FILE) if line.strip()],
        )

    def canonical_agency(self, name: str) -> str:
        """The canonical name `name` stands for; UnknownAgency with the closest names when none."""
        found = agency_names.resolve(name)
        present = {a for d in self.directives for a in (*d.agencies, *d.partners)}
        if found is not None:
            return found.name
        key = fold(normalize(name))
        for candidate in present:
            if fold(candidate) == key:
                return candidate
        raise UnknownAgency(name, agency_names.suggest(name))

    def query(self, query: TaskQuery) -> list[Directive]:
        """Directives matching every filter, by deadline (none last), newest Kết luận first on ties."""
        out = list(self.directives)
        if query.agency:
            name = self.canonical_agency(query.agency)
            out = [
                d
                for d in out
                if (query.role in ("any", "lead") and name in d.agencies)
                or (query.role in ("any", "partner") and name in d.partners)
            ]
        if query.ket_luan:
            number = _ket_luan_key(query.ket_luan)
            out = [d for d in out if d.ket_luan == number]
        if query.due_after:
            out = [d for d in out if d.deadline and d.deadline >= query.due_after]
        if query.due_before:
            out = [d for d in out if d.deadline and d.deadline <= query.due_before]
        if query.status:
            as_of = query.as_of or today()
            if query.status == "no_deadline":
                out = [d for d in out if d.deadline is None and d.recurring is None]
            elif query.status == "overdue":
                out = [d for d in out if d.deadline and d.deadline < as_of]
            else:
                out = [d for d in out if (d.deadline and d.deadline >= as_of) or d.recurring]
        if query.q:
            needles = fold(normalize(query.q)).split()
            out = [d for d in out if all(n in fold(normalize(d.action)) for n in needles)]
        return sorted(
            out,
            key=lambda d: (
                d.deadline is None,
                d.deadline or dt.date.max,
                -(d.issued or dt.date.min).toordinal(),
                d.directive_id,
            ),
        )

    def agencies(self) -> list[AgencyCount]:
        counts: Counter[str] = Counter(a for d in self.directives for a in {*d.agencies, *d.partners})
        aliases = {a.name: a.aliases for a in agency_names.known()}
        return [AgencyCount(name, aliases.get(name, ()), n) for name, n in sorted(counts.items())]

    def reference(self, number: str) -> Reference | None:
        key = fold(normalize(number)).replace(" ", "")
        return next((r for r in self.references if fold(r.number).replace(" ", "") == key), None)
