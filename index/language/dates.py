"""Dates and deadlines as the Kết luận write them → dates with their precision and verbatim spans.

"ngày 31 tháng 8 năm 2025", "31/8/2025", "15-10-2025", "ngày 26-9" (year from the document), "từ ngày 1/7 đến
ngày 31/7/2025", "tuần đầu tháng 10-2025", "tháng 11/2025", "quý IV/2025", "6 tháng đầu năm 2025", "năm 2025",
"ngày 25 hằng tháng"; a deadline is such a date after a cue ("trước", "chậm nhất", "hoàn thành trong", "vào").
The official forms are few and fixed, so plain regex tables over folded text do this better than a general
date parser (which reads "26-9" as a day-month pair of any year and knows no "hằng tháng").
"""

from __future__ import annotations

import calendar
import datetime as dt
import re
from dataclasses import dataclass
from typing import Literal

from index.language.agencies import aligned_fold, folded_index

Precision = Literal["day", "week", "month", "year"]


@dataclass(frozen=True)
class DateMention:
    """A date as written: `text` is the verbatim span [start, end) of the given text; `date` the last day it
    stands for (a month stands for its last day); `first` the first day of a range."""

    start: int
    end: int
    text: str
    date: dt.date | None
    precision: Precision
    recurring: str | None = None  # "monthly", "quarterly", "yearly"
    first: dt.date | None = None


@dataclass(frozen=True)
class Deadline:
    """A deadline: the time phrase as written from its preposition (`text`, the span [start, end): "trước
    ngày 31/8/2025", "chậm nhất trước ngày 25 hằng tháng"), the date it falls on (None for a recurring
    deadline), its precision and recurrence; `lead` is where the whole phrase starts, with the words that
    introduce it ("hoàn thành", "phải hoàn thành dứt điểm")."""

    start: int
    end: int
    text: str
    date: dt.date | None
    precision: Precision
    recurring: str | None = None
    lead: int = -1


_ROMAN = {"i": 1, "ii": 2, "iii": 3, "iv": 4}
_WEEK = {"dau": 1, "dau tien": 1, "thu nhat": 1, "1": 1, "thu hai": 2, "thu 2": 2, "2": 2, "thu ba": 3,
         "thu 3": 3, "3": 3, "thu tu": 4, "thu 4": 4, "4": 4, "thu 1": 1, "cuoi": 5}  # fmt: skip
_S = r"\s*[/.\-]\s*"
_Y = r"(\d{4})"
_PATTERNS: list[tuple[str, str]] = [
    # "từ ngày 1/7 đến ngày 31/7/2025", "từ ngày 18 đến 24/7/2025", "từ ngày 1-31/7/2025"
    ("range", r"(?:tu\s+)?ngay\s+(\d{1,2})(?:" + _S + r"(\d{1,2})(?:" + _S + _Y + r")?)?"
              r"\s*(?:den(?:\s+het)?(?:\s+ngay)?|-)\s*(\d{1,2})" + _S + r"(\d{1,2})(?:" + _S + _Y + r")?(?!\d)"),
    ("long", r"(?:ngay\s+)?(\d{1,2})\s+thang\s+(\d{1,2})\s+nam\s+" + _Y),
    ("monthly", r"ngay\s+(\d{1,2})\s+(?:hang|moi)\s+thang"),
    ("quarterly", r"ngay\s+(\d{1,2})\s+(?:cua\s+)?thang\s+cuoi\s+(?:hang|moi)\s+quy"),
    ("week", r"tuan\s+(dau tien|dau|thu nhat|thu hai|thu ba|thu tu|thu [1-4]|cuoi|[1-4])\s+(?:cua\s+)?"
             r"thang\s+(\d{1,2})(?:" + _S + _Y + r"|\s+nam\s+" + _Y + r")?"),
    ("day", r"(?:ngay\s+)?(\d{1,2})" + _S + r"(\d{1,2})" + _S + _Y),
    ("dayshort", r"ngay\s+(\d{1,2})" + _S + r"(\d{1,2})(?![\d/\-]|\.\d)"),
    ("month", r"thang\s+(\d{1,2})(?:" + _S + _Y + r"|\s+nam\s+" + _Y + r")"),
    ("quarter", r"quy\s+(iv|iii|ii|i|[1-4])(?:" + _S + _Y + r"|\s+nam\s+" + _Y + r")"),
    ("half", r"(6|sau)\s+thang\s+(dau|cuoi)\s+nam\s+" + _Y),
    ("yearend", r"(cuoi|dau)\s+nam\s+" + _Y),
    ("year", r"nam\s+" + _Y + r"(?!\s*[\-–]\s*\d)"),
]  # fmt: skip
_DATE = re.compile("|".join(f"(?P<{name}>{pattern})" for name, pattern in _PATTERNS))
_STARTS = [_DATE.groupindex[name] for name, _ in _PATTERNS] + [_DATE.groups + 1]
_INNER = {name: range(_STARTS[i] + 1, _STARTS[i + 1]) for i, (name, _) in enumerate(_PATTERNS)}


def _day(year: int, month: int, day: int) -> dt.date | None:
    try:
        return dt.date(year, month, day)
    except ValueError:
        return None


def _month_end(year: int, month: int) -> dt.date | None:
    if not 1 <= month <= 12:
        return None
    return dt.date(year, month, calendar.monthrange(year, month)[1])


def _read(kind: str, g: list[str], default_year: int | None) -> tuple[dt.date | None, Precision, str | None,
                                                                  dt.date | None]:  # fmt: skip
    """(date, precision, recurring, first) of one match; `g` holds the groups inside the kind's own, "" for a
    group that took no part."""

    def year(*raw: str) -> int | None:
        return next((int(r) for r in raw if r), default_year)

    if kind == "range":
        d1, m1, y1, d2, m2, y2 = g
        y = year(y2, y1)
        if y is None:
            return None, "day", None, None
        last = _day(y, int(m2), int(d2))
        first = _day(int(y1) if y1 else y, int(m1 or m2), int(d1))
        return last, "day", None, first
    if kind == "long" or kind == "day":
        d, m, written = g
        return _day(int(written), int(m), int(d)), "day", None, None
    if kind == "dayshort":
        d, m = g
        y = year()
        return (_day(y, int(m), int(d)) if y else None), "day", None, None
    if kind == "monthly":
        return None, "day", "monthly", None
    if kind == "quarterly":
        return None, "day", "quarterly", None
    if kind == "week":
        which, m, y1, y2 = g
        y = year(y1, y2)
        if y is None:
            return None, "week", None, None
        n = _WEEK[which]
        return (_month_end(y, int(m)) if n == 5 else _day(y, int(m), 7 * n)), "week", None, None
    if kind == "month":
        m, y1, y2 = g  # the month pattern always writes its year
        return _month_end(int(y1 or y2), int(m)), "month", None, None
    if kind == "quarter":
        q, y1, y2 = g
        n = int(q) if q.isdigit() else _ROMAN[q]
        return _month_end(int(y1 or y2), 3 * n), "month", None, None
    if kind == "half":
        _, which, written = g
        return _month_end(int(written), 6 if which == "dau" else 12), "month", None, None
    if kind == "yearend":
        which, written = g
        if which == "dau":
            return _month_end(int(written), 3), "month", None, None
        return dt.date(int(written), 12, 31), "year", None, None
    return dt.date(int(g[0]), 12, 31), "year", None, None


def find_dates(text: str, default_year: int | None = None) -> list[DateMention]:
    """Every date `text` writes, in order; a day without its year ("ngày 26-9") takes `default_year`."""
    folded, where = aligned_fold(text)
    out: list[DateMention] = []
    for match in _DATE.finditer(folded):
        kind = match.lastgroup or ""
        inner = [match.group(i) or "" for i in _INNER[kind]]
        date, precision, recurring, first = _read(kind, inner, default_year)
        start, end = where[match.start()], where[match.end() - 1] + 1
        out.append(DateMention(start, end, text[start:end], date, precision, recurring, first))
    return out


_CUE = re.compile(
    r"(?:(?:phai|bao dam|dam bao|de)\s+)?(?:hoan thanh(?:\s+(?:dut diem|xong))?\s+)?"
    r"(?P<time>(?:cham nhat|muon nhat)(?:\s+(?:la|vao|truoc))?|truoc|trong|vao|den het|ket thuc truoc|xong truoc"
    r"|(?:thoi han|han chot|han)(?:\s+(?:la|:))?)\s*[:,]?\s*$"
)
_CUE_WINDOW = 48


def find_deadlines(text: str, issued: dt.date | None = None) -> list[Deadline]:
    """The deadlines `text` sets: dates after a cue ("trước ngày 31/8/2025", "chậm nhất trước ngày 25 hằng
    tháng", "trong năm 2025", "trong tuần đầu tháng 10-2025"); a day without its year falls in the issue
    year, or the next one when that would be before the issue date."""
    default_year = issued.year if issued else None
    folded, where = aligned_fold(text)
    at_char = folded_index(text, folded, where)
    out: list[Deadline] = []
    for mention in find_dates(text, default_year):
        if mention.first is not None:
            continue  # a period ("từ ngày 1/7 đến ngày 31/7/2025") is not a deadline
        f_start = at_char[mention.start]
        before = folded[max(0, f_start - _CUE_WINDOW) : f_start]
        cue = _CUE.search(before)
        if not cue:
            continue
        offset = max(0, f_start - _CUE_WINDOW)
        lead, start = where[offset + cue.start()], where[offset + cue.start("time")]  # the cue is never empty
        date = mention.date
        if (
            date
            and issued
            and mention.precision == "day"
            and date < issued
            and not re.search(r"\d{4}", mention.text)
        ):
            date = _day(date.year + 1, date.month, date.day)
        out.append(Deadline(start, mention.end, text[start : mention.end], date, mention.precision,
                            mention.recurring, lead))  # fmt: skip
    return out


def recurring_day(text: str) -> int | None:
    """The day of the month a recurring deadline falls on ("chậm nhất trước ngày 25 hằng tháng" → 25, "ngày
    20 của tháng cuối hằng quý" → 20), None when `text` sets no recurring deadline."""
    folded, _ = aligned_fold(text)
    for match in _DATE.finditer(folded):
        if match.lastgroup in ("monthly", "quarterly"):
            day = int(match.group(_INNER[match.lastgroup][0]))
            return day if 1 <= day <= 31 else None
    return None
