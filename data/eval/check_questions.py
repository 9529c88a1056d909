"""Dev/test question files and the built passages in, a list of problems (exit 1) or a summary (exit 0) out.

Usage (stdlib only):
    python data/eval/check_questions.py [--passages /path/to/passages.jsonl]

Checks the five question sets — dev/test, the second writer's dev2/test2, the third writer's dev3/test3, the
fourth writer's dev4/test4, the fifth writer's dev5/test5 and the sixth writer's dev6/test6 — each on its own: fields and their
values; ids unique; every gold id exists; every expected phrase is in a gold passage (accent- and
case-folded, whole tokens) and every expected ISO date is written there in some form; no expected fact is
already in the question; paraphrase groups have at least three questions (greetings and out-of-scope
excepted) and one intent; no group is on both sides and the split is the one split.py makes. Across sets:
no question of dev/test repeats one of data/eval/questions.jsonl, no question of dev2/test2 repeats one of
the earlier files, no question of dev3/test3, dev4/test4, dev5/test5 or dev6/test6 repeats one of the files before it, and no id or group is
shared between the sets.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import unicodedata
from collections import Counter
from pathlib import Path

import split

HERE = Path(__file__).resolve().parent
OLD = HERE / "questions.jsonl"
PASSAGES = HERE.parents[1] / "data" / "index" / "current" / "passages.jsonl"
MAIN_PASSAGES = Path("/work/main/data/index/current/passages.jsonl")

INTENTS = {
    "fact",
    "deadline",
    "agency_tasks",
    "deadline_window",
    "overdue",
    "upcoming",
    "list",
    "summary",
    "summary_series",
    "comparison",
    "reference",
    "metadata",
    "greeting",
    "followup",
    "out_of_scope",
}
UNANSWERABLE = {"greeting", "out_of_scope"}
STYLES = {"formal", "spoken", "abbrev", "no_diacritics", "keywords"}
FIELDS = (
    "id",
    "group",
    "intent",
    "style",
    "question",
    "history",
    "as_of",
    "answerable",
    "gold",
    "expect",
    "note",
)
ISO = re.compile(r"\d{4}-\d{2}-\d{2}")


def fold(text: str) -> str:
    """Lower case, no accents, đ -> d, every run of other characters one space; padded for token search."""
    text = unicodedata.normalize("NFD", text.replace("đ", "d").replace("Đ", "D"))
    text = "".join(c for c in text if not unicodedata.combining(c)).lower()
    return " " + " ".join(re.sub(r"[^0-9a-z]+", " ", text).split()) + " "


def has_phrase(phrase: str, text: str) -> bool:
    return fold(phrase) in fold(text)


def date_written(iso: str, text: str) -> bool:
    """Is the date written in the text as d/m/yyyy, d-m-yyyy, d.m.yyyy, "ngày d tháng m năm yyyy" or without year?"""
    y, m, d = (int(x) for x in iso.split("-"))
    numeric = rf"(?<![\d/.-])0?{d}\s*[/.-]\s*0?{m}(?:\s*[/.-]\s*{y})?(?!\s*[/.-]\s*\d|\d)"
    words = rf"ngày\s+0?{d}\s+tháng\s+0?{m}(?:\s*(?:năm|/|-)\s*{y})?(?!\s*[/.-]\s*\d|\d)"
    nfc = unicodedata.normalize("NFC", text).lower()
    return bool(re.search(numeric, nfc) or re.search(words, nfc))


def options(item: str | list[str]) -> list[str]:
    return [item] if isinstance(item, str) else list(item)


def load(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text("utf-8").splitlines() if line.strip()]


def check(
    dev: list[dict],
    test: list[dict],
    passages: dict[str, str],
    old: list[dict],
    old_name: str = "questions.jsonl",
) -> list[str]:
    problems: list[str] = []
    rows = dev + test
    ids = Counter(r.get("id") for r in rows)
    problems += [f"{i}: id used {n} times" for i, n in ids.items() if n > 1]
    old_questions = {fold(r["question"]) for r in old}
    seen_questions: Counter[str] = Counter()
    for r in rows:
        rid = r.get("id", "?")
        missing = [f for f in FIELDS if f not in r]
        if missing:
            problems.append(f"{rid}: missing {missing}")
            continue
        if r["intent"] not in INTENTS:
            problems.append(f"{rid}: unknown intent {r['intent']!r}")
        if r["style"] not in STYLES:
            problems.append(f"{rid}: unknown style {r['style']!r}")
        question = r["question"]
        if not isinstance(question, str) or not question.strip():
            problems.append(f"{rid}: empty question")
            continue
        if fold(question) in old_questions:
            problems.append(f"{rid}: copies a question of {old_name}")
        key = fold(" | ".join([*r["history"], question]))
        seen_questions[key] += 1
        if seen_questions[key] == 2:
            problems.append(f"{rid}: the same question (with its history) appears twice")
        if not isinstance(r["history"], list) or not all(isinstance(h, str) and h for h in r["history"]):
            problems.append(f"{rid}: history must be a list of questions")
        if (r["intent"] == "followup") != bool(r["history"]):
            problems.append(f"{rid}: history is for follow-ups only, and every follow-up has one")
        if r["intent"] == "followup" and len(r["history"]) > 2:
            problems.append(f"{rid}: follow-ups have two or three turns")
        if r["as_of"] is not None and not (isinstance(r["as_of"], str) and ISO.fullmatch(r["as_of"])):
            problems.append(f"{rid}: as_of must be null or YYYY-MM-DD")
        if r["intent"] in ("upcoming", "overdue") and r["as_of"] is None:
            problems.append(f"{rid}: {r['intent']} needs as_of")
        if r["answerable"] != (r["intent"] not in UNANSWERABLE):
            problems.append(f"{rid}: answerable must be false exactly for greetings and out_of_scope")
        if not r["answerable"]:
            if r["gold"] or r["expect"]:
                problems.append(f"{rid}: an unanswerable question has no gold and no expect")
            continue
        if not r["gold"] or not r["expect"]:
            problems.append(f"{rid}: an answerable question needs gold and expect")
        unknown = [g for g in r["gold"] if g not in passages]
        if unknown:
            problems.append(f"{rid}: gold not in passages.jsonl: {unknown}")
        gold_texts = [passages[g] for g in r["gold"] if g in passages]
        for item in r["expect"]:
            if not isinstance(item, str | list) or not options(item):
                problems.append(f"{rid}: bad expect entry {item!r}")
                continue
            if not any(_supported(opt, gold_texts) for opt in options(item)):
                problems.append(f"{rid}: expect {item!r} is not in any gold passage")
            for opt in options(item):
                if _in_question(opt, question):
                    problems.append(f"{rid}: expect {opt!r} is already in the question")
    problems += _check_groups(dev, test)
    return problems


def _supported(expected: str, texts: list[str]) -> bool:
    if ISO.fullmatch(expected):
        return any(date_written(expected, t) for t in texts)
    return any(has_phrase(expected, t) for t in texts)


def _in_question(expected: str, question: str) -> bool:
    if ISO.fullmatch(expected):
        return date_written(expected, question)
    return has_phrase(expected, question)


def _check_groups(dev: list[dict], test: list[dict]) -> list[str]:
    problems: list[str] = []
    sides: dict[str, set[str]] = {}
    members: dict[str, list[dict]] = {}
    for name, rows in (("dev", dev), ("test", test)):
        for r in rows:
            sides.setdefault(r["group"], set()).add(name)
            members.setdefault(r["group"], []).append(r)
    for group, where in sides.items():
        if len(where) > 1:
            problems.append(f"{group}: group split across dev and test")
    for group, rows in members.items():
        intents = {r["intent"] for r in rows}
        if len(intents) > 1:
            problems.append(f"{group}: one group, several intents {sorted(intents)}")
        if intents - UNANSWERABLE and len(rows) < 3:
            problems.append(f"{group}: only {len(rows)} questions (at least three ways of asking)")
        if intents - UNANSWERABLE and len({r["style"] for r in rows}) < 3:
            problems.append(f"{group}: fewer than three styles")
    expected = split.assign(dev + test)
    for group, where in sides.items():
        if len(where) == 1 and expected[group] not in where:
            problems.append(f"{group}: on {next(iter(where))}, but split.py puts it on {expected[group]}")
    return problems


def summary(dev: list[dict], test: list[dict], names: tuple[str, str] = ("dev", "test")) -> str:
    lines = []
    for name, rows in zip(names, (dev, test), strict=True):
        groups = len({r["group"] for r in rows})
        lines.append(f"{name}: {len(rows)} questions, {groups} groups")
        lines.append(
            "  intent: "
            + ", ".join(f"{k} {v}" for k, v in sorted(Counter(r["intent"] for r in rows).items()))
        )
        lines.append(
            "  style: " + ", ".join(f"{k} {v}" for k, v in sorted(Counter(r["style"] for r in rows).items()))
        )
    total = dev + test
    oos = sum(r["intent"] == "out_of_scope" for r in total)
    turns = Counter(len(r["history"]) + 1 for r in total if r["intent"] == "followup")
    lines.append(
        f"total: {len(total)} questions, {oos} out of scope, follow-ups by turns {dict(sorted(turns.items()))}"
    )
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--passages", type=Path, default=PASSAGES if PASSAGES.exists() else MAIN_PASSAGES)
    args = parser.parse_args()
    passages = {p["passage_id"]: p["text"] for p in load(args.passages)}
    dev, test = load(split.DEV), load(split.TEST)
    problems = check(dev, test, passages, load(OLD))
    total = dev + test
    if len(total) < 320:
        problems.append(f"only {len(total)} questions (at least 320)")
    if sum(r["intent"] == "out_of_scope" for r in total) < 50:
        problems.append("fewer than 50 out-of-scope questions")
    dev2, test2 = (load(p) if p.exists() else [] for p in (split.DEV2, split.TEST2))
    problems += check_second(dev2, test2, passages, load(OLD) + total)
    earlier = load(OLD) + total + dev2 + test2
    later: list[tuple[str, str, list[dict], list[dict]]] = []
    for ordinal, number, earlier_names in LATER_SETS:
        dev_n, test_n = (load(p) if p.exists() else [] for p in split.SETS[number])
        problems += check_later(ordinal, number, dev_n, test_n, passages, earlier, earlier_names)
        earlier = earlier + dev_n + test_n
        later.append((ordinal, number, dev_n, test_n))
    for p in problems:
        print(p)
    print(summary(dev, test))
    print("second set:")
    print(summary(dev2, test2, names=("dev2", "test2")))
    for ordinal, number, dev_n, test_n in later:
        print(f"{ordinal} set:")
        print(summary(dev_n, test_n, names=(f"dev{number}", f"test{number}")))
    print(f"{len(problems)} problems")
    return 1 if problems else 0


def check_second(
    dev2: list[dict], test2: list[dict], passages: dict[str, str], earlier: list[dict]
) -> list[str]:
    """The second writer's set: the same checks, no copy of an earlier question, no id or group in common."""
    if not dev2 or not test2:
        return [f"second set missing or empty: {split.DEV2.name}, {split.TEST2.name}"]
    problems = check(
        dev2, test2, passages, earlier, "questions.jsonl, questions.dev.jsonl or questions.test.jsonl"
    )
    total = dev2 + test2
    shared_ids = {r["id"] for r in total} & {r.get("id") for r in earlier}
    problems += [f"{i}: id also used in the first set" for i in sorted(shared_ids)]
    shared_groups = {r["group"] for r in total} & {r.get("group") for r in earlier}
    problems += [f"{g}: group also used in the first set" for g in sorted(shared_groups)]
    if len(total) < 150:
        problems.append(f"second set: only {len(total)} questions (at least 150)")
    if sum(r["intent"] == "out_of_scope" for r in total) < 40:
        problems.append("second set: fewer than 40 out-of-scope questions")
    return problems


# the writers' sets after the second: (ordinal, set number, how the message names the earlier sets)
LATER_SETS = (
    ("third", "3", "questions.jsonl or the first or second set"),
    ("fourth", "4", "questions.jsonl or the first, second or third set"),
    ("fifth", "5", "questions.jsonl or the first, second, third or fourth set"),
    ("sixth", "6", "questions.jsonl or the first to fifth set"),
)


def check_later(
    ordinal: str, number: str, dev: list[dict], test: list[dict], passages: dict[str, str], earlier: list[dict],
    earlier_names: str,
) -> list[str]:  # fmt: skip
    """A later writer's set: the same checks, no copy of an earlier question, no id or group in common, and
    dev + test hold exactly the questions of its pool."""
    dev_path, test_path = split.SETS[number]
    if not dev or not test:
        return [f"{ordinal} set missing or empty: {dev_path.name}, {test_path.name}"]
    problems = check(dev, test, passages, earlier, earlier_names)
    total = dev + test
    shared_ids = {r["id"] for r in total} & {r.get("id") for r in earlier}
    problems += [f"{i}: id also used in an earlier set" for i in sorted(shared_ids)]
    shared_groups = {r["group"] for r in total} & {r.get("group") for r in earlier}
    problems += [f"{g}: group also used in an earlier set" for g in sorted(shared_groups)]
    if len(total) < 150:
        problems.append(f"{ordinal} set: only {len(total)} questions (at least 150)")
    if sum(r["intent"] == "out_of_scope" for r in total) < 25:
        problems.append(f"{ordinal} set: fewer than 25 out-of-scope questions")
    pool = split.POOLS[number]
    if pool.exists():
        pooled = {r["id"] for r in load(pool)}
        if pooled != {r["id"] for r in total}:
            problems.append(
                f"{ordinal} set: dev{number} + test{number} are not the questions of {pool.name} "
                f"(re-run split.py --set {number})"
            )
    return problems


if __name__ == "__main__":
    sys.exit(main())
