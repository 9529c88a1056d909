"""The eval sets stay unseen by the tests: no question of data/eval/*.jsonl (nor a turn of its history)
appears word for word in a file under tests/."""

from __future__ import annotations

import json
import re
from pathlib import Path

from index.textnorm import normalize

ROOT = Path(__file__).resolve().parent.parent
EVAL = ROOT / "data" / "eval"


def _key(text: str) -> str:
    return re.sub(r"\s+", " ", normalize(text)).strip().casefold()


def eval_questions() -> dict[str, str]:
    """Normalised question → "file:id", over every question set."""
    found: dict[str, str] = {}
    for path in sorted(EVAL.glob("*.jsonl")):
        for line in path.read_text("utf-8").splitlines():
            if not line.strip():
                continue
            item = json.loads(line)
            turns = [item.get("question", "")]
            for h in item.get("history", []):
                turns.append(h.get("question", "") if isinstance(h, dict) else h)
            for text in turns:
                if isinstance(text, str) and text.strip():
                    found.setdefault(_key(text), f"{path.name}:{item.get('id')}")
    return found


def test_eval_sets_are_read() -> None:
    assert len(eval_questions()) >= 50


def test_no_test_file_holds_an_eval_question() -> None:
    questions = eval_questions()
    hits: list[str] = []
    for path in sorted((ROOT / "tests").rglob("*")):
        if not path.is_file() or path.suffix not in {".py", ".json", ".jsonl", ".txt", ".md"}:
            continue
        text = _key(path.read_text("utf-8"))
        hits += [f"{path.relative_to(ROOT)}: {where} {q!r}" for q, where in questions.items() if q in text]
    assert hits == [], "\n".join(hits)
