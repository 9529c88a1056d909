"""Text → agency mentions and written dates: stand-ins for `index.language.agencies.find` and
`index.language.dates.find_dates` until those land; callers import the real ones first. Delete then.
"""

from __future__ import annotations

import calendar
import datetime as dt
import re
from dataclasses import dataclass
from functools import cache
from typing import Literal

from index.language.agencies import Agency, _key, known
from index.textnorm import fold, nfc


@dataclass(frozen=True)
class Mention:
    start: int
    end: int
    agency: Agency


@cache
def _agency_pattern() -> tuple[re.Pattern[str], dict[str, Agency]]:
    table: dict[str, Agency] = {}
    for agency in known():
        for alias in (agency.name, *agency.aliases):
            table.setdefault(_key(alias), agency)
    keys = sorted(table, key=len, reverse=True)
    alternatives = "|".join(r"[\s-]+".join(map(re.escape, k.split())) for k in keys)
    return re.compile(rf"(?<!\w)(?:{alternatives})(?!\w)"), table


def find_agencies(text: str) -> list[Mention]:
    """Every known agency named in `text` (any alias, accents and case ignored), in order, longest first."""
    pattern, table = _agency_pattern()
    folded = fold(nfc(text))
    return [Mention(m.start(), m.end(), table[" ".join(m.group(0).replace("-", " ").split())])
            for m in pattern.finditer(folded)]  # fmt: skip


Precision = Literal["day", "week", "month", "year"]


@dataclass(frozen=True)
class DateMention:
    """A date as written: the span [start, end) of the text, `date` the last day it stands for (None when
    the year is unknown), `precision` how much of it is written."""

    start: int
    end: int
    text: str
    date: dt.date | None
    precision: Precision


_SEP = r"\s*[/.-]\s*"
_DATE_FORMS = [
    # 31/12/2025, 31-12-2025, 31.12.2025
    re.compile(rf"(?<![\d/.-])(?P<d>\d{{1,2}}){_SEP}(?P<m>\d{{1,2}}){_SEP}(?P<y>\d{{4}})(?!\d)"),
    # (ngày) 31 tháng 12 (năm 2025)
    re.compile(r"(?<!\d)(?P<d>\d{1,2})\s+thang\s+(?P<m>\d{1,2})(?:\s+nam\s+(?P<y>\d{4}))?(?!\d)"),
    # tháng 12/2025, tháng 12 năm 2025, tháng 11-2025
    re.compile(r"thang\s+(?P<m>\d{1,2})(?:\s*[/-]\s*|\s+nam\s+)(?P<y>\d{4})(?!\d)"),
    # 12/2025 (month and year)
    re.compile(r"(?<![\d/.-])(?P<m>\d{1,2})\s*[/-]\s*(?P<y>\d{4})(?![\d/.-])"),
    # 31/12 or 26-9 (day and month, the year from the context)
    re.compile(r"(?<![\d/.-])(?P<d>\d{1,2})\s*[/-]\s*(?P<m>\d{1,2})(?![\d/.-]|\s*[/.-]\s*\d)(?!\s*thang)"),
    # năm 2025
    re.compile(r"nam\s+(?P<y>\d{4})(?!\d)"),
    # 2025-12-31
    re.compile(r"(?<![\d/.-])(?P<y>\d{4})-(?P<m>\d{1,2})-(?P<d>\d{1,2})(?![\d/.-])"),
]


def find_dates(text: str, default_year: int | None = None) -> list[DateMention]:
    """Dates as written (day, month or year precision), in order; a day without a year takes
    `default_year`. Spans that are not a real calendar date are skipped."""
    folded = fold(nfc(text))
    taken: list[tuple[int, int]] = []
    out: list[DateMention] = []
    for form in _DATE_FORMS:
        for m in form.finditer(folded):
            if any(m.start() < e and s < m.end() for s, e in taken):
                continue
            parts = m.groupdict()
            day = int(parts["d"]) if parts.get("d") else None
            month = int(parts["m"]) if parts.get("m") else None
            year = int(parts["y"]) if parts.get("y") else default_year
            precision: Precision = "day" if day else "month" if month else "year"
            try:
                date = None
                if year is not None:
                    last = calendar.monthrange(year, month or 12)[1]
                    date = dt.date(year, month or 12, day or last)
                elif day is not None:
                    dt.date(2000, month or 1, day)  # a real day and month, year unknown
            except (ValueError, calendar.IllegalMonthError):
                continue
            taken.append((m.start(), m.end()))
            out.append(DateMention(m.start(), m.end(), text[m.start() : m.end()], date, precision))
    return sorted(out, key=lambda d: d.start)
