"""The extractive answers on the development questions, per intent and style, with every failure listed.

    python benchmarks/dev_answers.py [--data-dir DIR] [--intent INTENT] [--show-ok]

A quick loop for tuning on dev (the test split is never read here; `ketluan eval` reports both). Right = an
in-scope question answered with every expected fact (whole words; dates as dates); wrong = answered without
one; false refusal = in scope and refused; out of scope = refused.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
from collections import Counter, defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from fit_answerability import has_fact, read  # noqa: E402

from bot.extractive import ExtractiveAnswerer  # noqa: E402
from index.search import open_index  # noqa: E402
from index.settings import IndexSettings  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, default=None)
    parser.add_argument("--intent", default=None)
    parser.add_argument("--show-ok", action="store_true")
    parser.add_argument("--file", default="questions.dev.jsonl")
    args = parser.parse_args()
    if "test" in args.file:
        raise SystemExit("dev_answers reads dev questions only")
    settings = IndexSettings(data_dir=args.data_dir) if args.data_dir else IndexSettings()
    answerer = ExtractiveAnswerer(open_index(settings))
    items = [json.loads(x) for x in (ROOT / "data" / "eval" / args.file).read_text("utf-8").splitlines() if x]
    tally: dict[str, Counter[str]] = defaultdict(Counter)
    for item in items:
        if args.intent and item.get("intent") != args.intent:
            continue
        question = read(answerer, item)
        today = dt.date.fromisoformat(item["as_of"]) if item.get("as_of") else None
        draft = answerer.answer(question, None, today)
        answerable = bool(item.get("answerable", True)) and item.get("intent") != "greeting"
        facts = item.get("expect") or []
        if answerable:
            ok = draft.answered and all(has_fact(draft.answer, f) for f in facts)
            verdict = "right" if ok else ("wrong" if draft.answered else "refused")
        else:
            verdict = "oos_refused" if not draft.answered else "oos_answered"
        for key in (item.get("intent", item.get("category", "?")), item.get("style", "?"), "all"):
            tally[key][verdict] += 1
        if verdict not in ("right", "oos_refused") or args.show_ok:
            print(f"[{verdict}] {item['id']} ({item.get('intent')}/{item.get('style')}, read as {question.kind}) "
                  f"{item['question']}\n   expect {facts}\n   " + draft.answer.replace("\n", "\n   ")[:900])  # fmt: skip
    print("\nkey               right wrong refused oos_refused oos_answered")
    for key, c in sorted(tally.items()):
        print(
            f"{key:18s} {c['right']:5d} {c['wrong']:5d} {c['refused']:7d} {c['oos_refused']:11d} {c['oos_answered']:12d}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
