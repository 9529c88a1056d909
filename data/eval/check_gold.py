"""Checks data/eval/directives.jsonl, the hand-annotated gold tasks (standard library only).

    python data/eval/check_gold.py [path/to/directives.jsonl]

Verifies: one JSON object per line with exactly the expected keys; unique ids of the form
klNNN-NN matching their Kết luận; every span verbatim (text[start:end] == action, read as UTF-8)
without surrounding blanks, inside a file of that Kết luận; deadline_text verbatim in one of the
task's files; ISO deadlines that exist and agree with their precision; recurring deadlines
without a date; names written with the new-style "ủy". Prints counts per Kết luận; exit 1 on
any error.
"""

from __future__ import annotations

import calendar
import datetime as dt
import json
import re
import sys
from collections import Counter
from pathlib import Path
from typing import Any

EVAL = Path(__file__).resolve().parent
CORPUS = EVAL.parent / "corpus"

FILES = {  # which Kết luận each corpus file tells
    "000_5d30afc99b18f1f4.txt": "183-KL/TW",
    "001_32125652a63c81a5.txt": "221-KL/TW",
    "002_b7aa1c61d36e9fd3.txt": "179-KL/TW",
    "003_a134ef8411e6adba.txt": "179-KL/TW",
    "004_e28c69e39740ef77.txt": "195-KL/TW",
}
KEYS = {
    "id",
    "ket_luan",
    "agencies",
    "partners",
    "verb",
    "deadline",
    "deadline_precision",
    "deadline_text",
    "recurring",
    "implicit_agency",
    "spans",
    "note",
}
SPAN_KEYS = {"file", "start", "end", "action"}
PRECISIONS = {"day", "week", "month", "year"}
RECURRING = {"monthly"}
VERBS = {"giao", "yêu cầu", "chỉ đạo", "đề nghị", "lưu ý", None}


def _deadline_errors(task: dict[str, Any]) -> list[str]:
    deadline, prec, text, rec = (
        task["deadline"],
        task["deadline_precision"],
        task["deadline_text"],
        task["recurring"],
    )
    if rec is not None:
        if rec not in RECURRING:
            return [f"unknown recurring {rec!r}"]
        if deadline is not None or prec is not None or not text:
            return ["a recurring deadline has no date, no precision and a deadline_text"]
        return []
    if deadline is None:
        return [] if prec is None and text is None else ["no deadline but precision/text set"]
    if prec not in PRECISIONS or not text:
        return ["a deadline needs a precision and a deadline_text"]
    try:
        day = dt.date.fromisoformat(deadline)
    except ValueError:
        return [f"invalid ISO date {deadline!r}"]
    last = calendar.monthrange(day.year, day.month)[1]
    if prec == "year" and (day.month, day.day) != (12, 31):
        return ["a year deadline falls on 31 December"]
    if prec == "month" and day.day != last:
        return ["a month deadline falls on the month's last day"]
    if prec == "week" and day.day % 7 != 0 and day.day != last:
        return ["a week deadline falls on the 7th, 14th, 21st, 28th or the month's end"]
    if prec == "day" and not re.search(rf"\b0?{day.day}\s*[/-]\s*0?{day.month}\b", text):
        return [f"deadline_text {text!r} does not show day {day.day}/{day.month}"]
    return []


def check(path: Path) -> tuple[list[str], Counter[str]]:
    texts = {name: (CORPUS / name).read_text(encoding="utf-8") for name in FILES}
    errors: list[str] = []
    seen: set[str] = set()
    counts: Counter[str] = Counter()
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        task = json.loads(line)
        tid = task.get("id", f"line {n}")

        def err(msg: str, tid: str = tid) -> None:
            errors.append(f"{tid}: {msg}")

        if set(task) != KEYS:
            err(f"keys differ: {sorted(set(task) ^ KEYS)}")
            continue
        if tid in seen:
            err("duplicate id")
        seen.add(tid)
        kl = task["ket_luan"]
        m = re.fullmatch(r"kl(\d+)-\d{2}", tid)
        if not m or not kl.startswith(m.group(1) + "-KL/TW"):
            err(f"id does not match {kl}")
        counts[kl] += 1
        if not task["agencies"] or not all(isinstance(a, str) and a for a in task["agencies"]):
            err("agencies must be a non-empty list of names")
        for name in task["agencies"] + task["partners"]:
            if "uỷ" in name or "Uỷ" in name or name != name.strip():
                err(f"name not canonical: {name!r}")
        if set(task["agencies"]) & set(task["partners"]):
            err("an agency is also a partner")
        if task["verb"] not in VERBS:
            err(f"unknown verb {task['verb']!r}")
        if not isinstance(task["implicit_agency"], bool):
            err("implicit_agency must be a boolean")
        if not task["spans"]:
            err("no span")
        files = []
        for span in task["spans"]:
            if set(span) != SPAN_KEYS:
                err(f"span keys differ: {sorted(set(span) ^ SPAN_KEYS)}")
                continue
            name = span["file"]
            if FILES.get(name) != kl:
                err(f"{name} does not tell {kl}")
                continue
            files.append(name)
            text = texts[name]
            start, end = span["start"], span["end"]
            if not (0 <= start < end <= len(text)) or text[start:end] != span["action"]:
                err(f"span {name}[{start}:{end}] is not verbatim")
            elif span["action"] != span["action"].strip():
                err(f"span {name}[{start}:{end}] has surrounding blanks")
        if len(files) != len(set(files)):
            err("two spans in one file")
        if task["deadline_text"] and not any(task["deadline_text"] in texts[f] for f in files):
            err(f"deadline_text {task['deadline_text']!r} not found in the task's files")
        for msg in _deadline_errors(task):
            err(msg)
    return errors, counts


def main() -> int:
    path = Path(sys.argv[1]) if len(sys.argv) > 1 else EVAL / "directives.jsonl"
    errors, counts = check(path)
    for e in errors:
        print("ERROR", e)
    for kl in sorted(counts):
        print(f"{kl}: {counts[kl]} tasks")
    print(f"total: {sum(counts.values())} tasks, {len(errors)} errors")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
