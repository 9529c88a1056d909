"""`ketluan directives`: the tasks of the current build, filtered, as a table, JSON, CSV or iCalendar."""

from __future__ import annotations

import argparse
import datetime as dt
import json
import shutil
import sys
import textwrap
from pathlib import Path

from pydantic import ValidationError

from api import exports
from api.errors import unknown_agency_message, user_message, value_message
from api.settings import Settings
from index.errors import BadQuery
from index.layout import current_build
from index.models import Directive
from index.tasks import TaskBook, TaskQuery, UnknownAgency, status_of, today

_OPTIONS = {"agency": "--agency", "ket_luan": "--ket-luan", "due_after": "--due-after",
            "due_before": "--due-before", "status": "--status", "as_of": "--as-of", "q": "--q"}  # fmt: skip


def register(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser("directives", parents=[common], help="tasks the Kết luận assign: who, what, by when")
    p.add_argument("--agency", help="an agency, by any name or abbreviation (accents optional)")
    p.add_argument("--ket-luan", help="only this Kết luận, e.g. 183-KL/TW or 183")
    p.add_argument("--due-after", metavar="YYYY-MM-DD", help="deadline on or after this day")
    p.add_argument("--due-before", metavar="YYYY-MM-DD", help="deadline on or before this day")
    p.add_argument(
        "--status", metavar="overdue|upcoming|no_deadline", help="where the task stands on --as-of"
    )
    p.add_argument("--as-of", metavar="YYYY-MM-DD", help="the day status is judged on (default today, VN)")
    p.add_argument("--q", help="words that must all appear in the task")
    fmt = p.add_mutually_exclusive_group()
    fmt.add_argument("--json", action="store_true", help='print {"directives": [Directive…]}')
    fmt.add_argument("--csv", action="store_true", help="print CSV (UTF-8 with BOM, as /v1/directives.csv)")
    fmt.add_argument("--ics", action="store_true", help="print an iCalendar feed (as /v1/directives.ics)")
    p.set_defaults(func=_cmd_directives)


def _query(args: argparse.Namespace) -> TaskQuery:
    values = {field: getattr(args, field) for field in _OPTIONS}
    try:
        return TaskQuery.model_validate({k: v for k, v in values.items() if v is not None})
    except ValidationError as exc:
        first = exc.errors()[0]
        field = str(first["loc"][0]) if first.get("loc") else ""
        option = _OPTIONS.get(field, field)
        message = value_message(first, shown=option) or user_message("invalid_field", field=option)
        raise BadQuery(message) from None


def _cmd_directives(args: argparse.Namespace) -> int:
    settings = Settings.load(data_dir=Path(args.data_dir)) if args.data_dir else Settings.load()
    query = _query(args)
    book = TaskBook.load(current_build(settings.index.index_dir))
    try:
        directives = book.query(query)
    except UnknownAgency as exc:
        raise BadQuery(unknown_agency_message(exc)) from None
    as_of = query.as_of or today()
    public_url = settings.bot.public_url
    if args.json:
        print(json.dumps({"directives": [d.model_dump(mode="json") for d in directives]}, ensure_ascii=False))
    elif args.csv:
        _write(exports.to_csv(directives, public_url=public_url, as_of=as_of))
    elif args.ics:
        _write(exports.to_ics(directives, public_url=public_url))
    else:
        print(table(directives, as_of, public_url, shutil.get_terminal_size((110, 24)).columns))
    return 0


def _write(body: bytes) -> None:
    sys.stdout.flush()
    sys.stdout.buffer.write(body)
    sys.stdout.buffer.flush()


def table(directives: list[Directive], as_of: dt.date, public_url: str, width: int) -> str:
    """A plain-text table: deadline, status, Kết luận, lead agency, then the task wrapped under it."""
    w = exports.words()
    if not directives:
        return w["cli_empty"]
    width = max(60, min(width, 140))
    heads = (w["col_deadline"], w["col_status"], w["col_ket_luan"], w["col_agencies"])
    rows: list[tuple[str, str, str, str, Directive]] = []
    for d in directives:
        deadline = d.deadline.strftime("%d/%m/%Y") if d.deadline else "—"
        if d.recurring:
            deadline += f" ({exports.recurring_word(d.recurring)})"
        lead = ", ".join(d.agencies) or w["cli_no_agency"]
        rows.append((deadline, exports.status_word(status_of(d, as_of)), d.ket_luan, lead, d))
    widths = [max(len(heads[i]), *(len(str(r[i])) for r in rows)) for i in range(3)]
    indent = " " * 4
    lines = ["  ".join(h.ljust(widths[i]) if i < 3 else h for i, h in enumerate(heads)), "─" * width]
    for *cells, d in rows:
        lines.append("  ".join(c.ljust(widths[i]) if i < 3 else c for i, c in enumerate(cells)))
        body = [d.action]
        if d.partners:
            body.append(w["event_partners"].format(partners=", ".join(d.partners)))
        body.append(d.label)
        for text in body:
            lines.extend(textwrap.wrap(text, width, initial_indent=indent, subsequent_indent=indent) or [""])
        lines += [indent + exports.absolute(public_url, d.url), ""]
    lines.append(w["cli_count"].format(count=len(directives), as_of=as_of.strftime("%d/%m/%Y")))
    return "\n".join(lines)
