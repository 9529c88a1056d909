"""Extracted directives and references of a build → filtered, sorted task lists (the task tracker's query side)."""

from __future__ import annotations

import calendar
import datetime as dt
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Literal
from zoneinfo import ZoneInfo

from pydantic import BaseModel, Field, field_validator

from index.errors import BadQuery, NotFound
from index.language import agencies as agency_names
from index.language.dates import recurring_day
from index.language.references import normalize_ket_luan
from index.models import Directive, Reference
from index.task_links import link_tasks
from index.textnorm import fold, normalize

DIRECTIVES_FILE = "directives.jsonl"
REFERENCES_FILE = "references.jsonl"
TIMEZONE = ZoneInfo("Asia/Ho_Chi_Minh")
Status = Literal["overdue", "upcoming", "no_deadline"]
_DIGITS = frozenset("0123456789")  # str.isdigit() also takes "¹", which int() refuses


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

    agency: str | None = Field(
        default=None, max_length=200, description="any alias, accent- and case-insensitive"
    )
    ket_luan: str | None = Field(default=None, max_length=40, description='"183-KL/TW" or "183"')
    due_after: dt.date | None = None
    due_before: dt.date | None = None
    status: Status | None = None
    as_of: dt.date | None = Field(default=None, description="the day status is judged on; default today (VN)")
    q: str | None = Field(
        default=None, max_length=200, description="words that must all appear in the action"
    )
    role: Literal["any", "lead", "partner"] = "any"

    @field_validator("agency", "ket_luan", "due_after", "due_before", "status", "as_of", "q", mode="before")
    @classmethod
    def _blank_is_absent(cls, value: object) -> object:
        # an HTML form sends every field, the empty ones as ""
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("ket_luan")
    @classmethod
    def _has_a_number(cls, value: str | None) -> str | None:
        if value is not None and normalize_ket_luan(value) is None:
            raise ValueError("not a Kết luận number (expected e.g. 183-KL/TW or 183)")
        return value

    def is_filtered(self) -> bool:
        """True when any filter narrows the list (as_of and role alone do not)."""
        return any(
            v is not None
            for v in (self.agency, self.ket_luan, self.due_after, self.due_before, self.status, self.q)
        )


def status_of(directive: Directive, as_of: dt.date) -> Status:
    """Where a task stands on `as_of`: a recurring one is always upcoming (there is a next time)."""
    if directive.recurring:
        return "upcoming"
    if directive.deadline is None:
        return "no_deadline"
    return "overdue" if directive.deadline < as_of else "upcoming"


_PERIOD_MONTHS = {"monthly": 1, "quarterly": 3}


def first_due(directive: Directive) -> dt.date | None:
    """The first day a task falls due: its deadline; for a recurring one written without a date ("trước
    ngày 25 hằng tháng"), the first such day on or after the Kết luận was issued (a quarter's is in the
    quarter's last month)."""
    step = _PERIOD_MONTHS.get(directive.recurring or "")
    if directive.deadline or step is None or directive.issued is None:
        return directive.deadline
    day = recurring_day(directive.deadline_text or "")
    if day is None:
        return None
    issued = directive.issued
    month = issued.month if step == 1 else (issued.month - 1) // 3 * 3 + 3
    year = issued.year
    while True:
        due = dt.date(year, month, min(day, calendar.monthrange(year, month)[1]))
        if due >= issued:
            return due
        month += step
        year, month = (year + 1, month - 12) if month > 12 else (year, month)


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
        self.directives = link_tasks(directives)  # a task a later Kết luận repeats or re-dates, linked
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
        raise UnknownAgency(name, self.closest_agencies(name))

    def closest_agencies(self, name: str, limit: int = 3) -> list[str]:
        """Canonical names closest to `name`, best first: the alias table and the names extraction found."""
        from rapidfuzz import fuzz, process

        choices = {
            fold(normalize(alias)): a.name for a in agency_names.known() for alias in (a.name, *a.aliases)
        }
        for d in self.directives:
            for agency in (*d.agencies, *d.partners):
                choices.setdefault(fold(normalize(agency)), agency)
        found = process.extract(fold(normalize(name)), list(choices), scorer=fuzz.WRatio, limit=limit * 4)
        out: list[str] = []
        for key, _, _ in found:
            if choices[key] not in out:
                out.append(choices[key])
        return out[:limit]

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
            out = [d for d in out if status_of(d, as_of) == query.status]
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
        ordered = sorted(counts.items(), key=lambda item: (fold(item[0]), item[0]))
        return [AgencyCount(name, aliases.get(name, ()), n) for name, n in ordered]

    def ket_luans(self) -> list[str]:
        """The Kết luận that assign tasks, newest number first."""

        def number(k: str) -> int:
            digits = "".join(ch for ch in k.split("-")[0] if ch in _DIGITS)
            return int(digits) if digits else 0

        return sorted({d.ket_luan for d in self.directives}, key=lambda k: (-number(k), k))

    def reference(self, number: str) -> Reference | None:
        key = fold(normalize(number)).replace(" ", "")
        return next((r for r in self.references if fold(r.number).replace(" ", "") == key), None)
