"""Question groups in, dev/test files out: a seeded split that keeps every paraphrase group on one side.

Usage (stdlib only, deterministic; re-running on the two files it wrote gives the same split):
    python data/eval/split.py                      # re-split questions.dev.jsonl + questions.test.jsonl
    python data/eval/split.py pooled.jsonl ...     # split freshly written questions
    python data/eval/split.py --set 2 [pooled.jsonl ...]   # the second writer's set: dev2 / test2
    python data/eval/split.py --set 3 [pooled.jsonl ...]   # the third writer's set: dev3 / test3
                                                           # (default source: its two files, else questions.pool3.jsonl)
    python data/eval/split.py --set 4 [pooled.jsonl ...]   # the fourth writer's set: dev4 / test4
                                                           # (default source: its two files, else questions.pool4.jsonl)
    python data/eval/split.py --set 5 [pooled.jsonl ...]   # the fifth writer's set: dev5 / test5
                                                           # (default source: its two files, else questions.pool5.jsonl)
    python data/eval/split.py --set 6 [pooled.jsonl ...]   # the sixth writer's set: dev6 / test6
                                                           # (default source: its two files, else questions.pool6.jsonl)

Groups are shuffled with a fixed seed separately for each intent, so both sides hold every answer type;
about 45 % of the groups of each intent go to dev, the rest to test.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
DEV = HERE / "questions.dev.jsonl"
TEST = HERE / "questions.test.jsonl"
DEV2 = HERE / "questions.dev2.jsonl"
TEST2 = HERE / "questions.test2.jsonl"
DEV3 = HERE / "questions.dev3.jsonl"
TEST3 = HERE / "questions.test3.jsonl"
POOL3 = HERE / "questions.pool3.jsonl"
DEV4 = HERE / "questions.dev4.jsonl"
TEST4 = HERE / "questions.test4.jsonl"
POOL4 = HERE / "questions.pool4.jsonl"
DEV5 = HERE / "questions.dev5.jsonl"
TEST5 = HERE / "questions.test5.jsonl"
POOL5 = HERE / "questions.pool5.jsonl"
DEV6 = HERE / "questions.dev6.jsonl"
TEST6 = HERE / "questions.test6.jsonl"
POOL6 = HERE / "questions.pool6.jsonl"
SETS = {"1": (DEV, TEST), "2": (DEV2, TEST2), "3": (DEV3, TEST3), "4": (DEV4, TEST4), "5": (DEV5, TEST5), "6": (DEV6, TEST6)}
POOLS = {"3": POOL3, "4": POOL4, "5": POOL5, "6": POOL6}
SEED = "ketluan-eval-2026"
DEV_SHARE = 0.45


def read(paths: list[Path]) -> list[dict]:
    rows: list[dict] = []
    for path in paths:
        for line in path.read_text("utf-8").splitlines():
            if line.strip():
                rows.append(json.loads(line))
    return rows


def assign(rows: list[dict]) -> dict[str, str]:
    """Group id -> "dev" or "test"."""
    by_intent: dict[str, set[str]] = {}
    for row in rows:
        by_intent.setdefault(row["intent"], set()).add(row["group"])
    side: dict[str, str] = {}
    for intent in sorted(by_intent):
        groups = sorted(by_intent[intent])
        random.Random(f"{SEED}:{intent}").shuffle(groups)
        n_dev = int(len(groups) * DEV_SHARE + 0.5)
        if len(groups) >= 2:
            n_dev = min(max(n_dev, 1), len(groups) - 1)
        for i, group in enumerate(groups):
            side[group] = "dev" if i < n_dev else "test"
    return side


def order(row: dict) -> tuple[str, int]:
    prefix, _, number = row["id"].rpartition("-")
    return prefix, int(number) if number.isdigit() else 0


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--set", choices=sorted(SETS), default="1", help="question set: 1 dev/test, 2 dev2/test2, 3 dev3/test3, 4 dev4/test4, 5 dev5/test5, 6 dev6/test6",
    )
    parser.add_argument("sources", nargs="*", type=Path, help="question files (default: the set's two files)")
    args = parser.parse_args(argv)
    dev, test = SETS[args.set]
    sources = args.sources or [p for p in (dev, test) if p.exists()]
    if not sources and args.set in POOLS:
        sources = [POOLS[args.set]]
    rows = sorted(read(sources), key=order)
    side = assign(rows)
    for name, path in (("dev", dev), ("test", test)):
        chosen = [r for r in rows if side[r["group"]] == name]
        path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in chosen), "utf-8")
        groups = {r["group"] for r in chosen}
        print(f"{name}: {len(chosen)} questions in {len(groups)} groups -> {path.name}")


if __name__ == "__main__":
    main(sys.argv[1:])
