"""Question groups in, dev/test files out: a seeded split that keeps every paraphrase group on one side.

Usage (stdlib only, deterministic; re-running on the two files it wrote gives the same split):
    python data/eval/split.py                      # re-split questions.dev.jsonl + questions.test.jsonl
    python data/eval/split.py pooled.jsonl ...     # split freshly written questions

Groups are shuffled with a fixed seed separately for each intent, so both sides hold every answer type;
about 45 % of the groups of each intent go to dev, the rest to test.
"""

from __future__ import annotations

import json
import random
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
DEV = HERE / "questions.dev.jsonl"
TEST = HERE / "questions.test.jsonl"
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
    sources = [Path(a) for a in argv] or [DEV, TEST]
    rows = sorted(read(sources), key=order)
    side = assign(rows)
    for name, path in (("dev", DEV), ("test", TEST)):
        chosen = [r for r in rows if side[r["group"]] == name]
        path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in chosen), "utf-8")
        groups = {r["group"] for r in chosen}
        print(f"{name}: {len(chosen)} questions in {len(groups)} groups -> {path.name}")


if __name__ == "__main__":
    main(sys.argv[1:])
