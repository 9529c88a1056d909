"""Directives → the task tracker's downloads: CSV for Excel (UTF-8 with BOM) and an iCalendar feed."""

from __future__ import annotations

import csv
import datetime as dt
import io
from collections.abc import Sequence

from icalendar import Calendar, Event

import prompts
from index.models import Directive
from index.tasks import TIMEZONE, Status, first_due, status_of

CSV_MEDIA_TYPE = "text/csv; charset=utf-8"
ICS_MEDIA_TYPE = "text/calendar; charset=utf-8"
PRODID = "-//Hoi dap Ket luan//Nhiem vu//VI"
SUMMARY_CHARS = 120
# RFC 5545 FREQ (and INTERVAL) for the values Directive.recurring takes
_RRULES: dict[str, dict[str, object]] = {
    "daily": {"freq": "daily"},
    "weekly": {"freq": "weekly"},
    "monthly": {"freq": "monthly"},
    "quarterly": {"freq": "monthly", "interval": 3},
    "yearly": {"freq": "yearly"},
}
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def words() -> dict[str, str]:
    """The exports' Vietnamese words (prompts/tasks.txt)."""
    return prompts.table("tasks")


def absolute(public_url: str, url: str) -> str:
    return public_url.rstrip("/") + url


def status_word(status: Status) -> str:
    return words()[f"status_{status}"]


def recurring_word(recurring: str | None) -> str:
    if not recurring:
        return ""
    return words().get(f"recurring_{recurring}", recurring)


def _cell(text: str) -> str:
    """A text cell Excel will not run as a formula (OWASP: a leading ' before = + - @ tab CR)."""
    return "'" + text if text.startswith(_FORMULA_START) else text


def to_csv(directives: Sequence[Directive], *, public_url: str, as_of: dt.date) -> bytes:
    """One row per directive, Vietnamese headings; UTF-8 with a BOM so Excel reads the accents right."""
    w = words()
    columns = ("deadline", "status", "agencies", "partners", "action", "deadline_text", "recurring",
               "ket_luan", "issued", "label", "url", "id")  # fmt: skip
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow([w[f"col_{c}"] for c in columns])
    for d in directives:
        writer.writerow(
            [
                d.deadline.isoformat() if d.deadline else "",
                status_word(status_of(d, as_of)),
                _cell("; ".join(d.agencies)),
                _cell("; ".join(d.partners)),
                _cell(d.action),
                _cell(d.deadline_text or ""),
                recurring_word(d.recurring),
                d.ket_luan,
                d.issued.isoformat() if d.issued else "",
                _cell(d.label),
                absolute(public_url, d.url),
                d.directive_id,
            ]
        )
    return ("\ufeff" + out.getvalue()).encode("utf-8")


def _summary(d: Directive) -> str:
    action = " ".join(d.action.split())
    if len(action) > SUMMARY_CHARS:
        action = action[:SUMMARY_CHARS].rsplit(" ", 1)[0].rstrip(",;:") + "…"
    return f"{', '.join(d.agencies)}: {action}" if d.agencies else action


def _description(d: Directive, link: str) -> str:
    w = words()
    lines = [d.action]
    if d.agencies:
        lines.append(w["event_lead"].format(agencies=", ".join(d.agencies)))
    if d.partners:
        lines.append(w["event_partners"].format(partners=", ".join(d.partners)))
    deadline = d.deadline_text or (d.deadline.strftime("%d/%m/%Y") if d.deadline else "")
    if deadline:
        lines.append(w["event_deadline"].format(deadline=deadline))
    if d.recurring:
        lines.append(w["event_recurring"].format(recurring=recurring_word(d.recurring)))
    lines.append(w["event_source"].format(label=d.label))
    lines.append(link)
    return "\n".join(lines)


def calendar_name(filter_text: str = "") -> str:
    w = words()
    return w["calendar_name_filtered"].format(filter=filter_text) if filter_text else w["calendar_name"]


def to_ics(
    directives: Sequence[Directive],
    *,
    public_url: str,
    name: str | None = None,
    now: dt.datetime | None = None,
) -> bytes:
    """A VCALENDAR with one all-day VEVENT per directive that has a deadline (a recurring one repeats by
    RRULE from its first due day). UIDs come from directive ids, so a subscribed calendar updates events in
    place."""
    stamp = (now or dt.datetime.now(dt.UTC)).astimezone(dt.UTC).replace(microsecond=0)
    cal = Calendar()
    cal.add("prodid", PRODID)
    cal.add("version", "2.0")
    cal.add("calscale", "GREGORIAN")
    cal.add("method", "PUBLISH")
    cal.add("x-wr-calname", name or calendar_name())
    cal.add("x-wr-caldesc", words()["calendar_description"])
    cal.add("x-wr-timezone", str(TIMEZONE))
    cal.add("refresh-interval", dt.timedelta(hours=12), parameters={"VALUE": "DURATION"})
    cal.add("x-published-ttl", "PT12H")
    for d in directives:
        start = first_due(d)
        if start is None:
            continue
        link = absolute(public_url, d.url)
        event = Event()
        event.add("uid", f"{d.directive_id}@ketluan")
        event.add("dtstamp", stamp)
        event.add("dtstart", start)
        event.add("dtend", start + dt.timedelta(days=1))
        event.add("summary", _summary(d))
        event.add("description", _description(d, link))
        event.add("url", link)
        event.add("categories", [d.ket_luan])
        event.add("transp", "TRANSPARENT")
        if d.recurring in _RRULES:
            event.add("rrule", _RRULES[d.recurring])
        cal.add_component(event)
    return bytes(cal.to_ical())
