"""The eval sets stay unseen by the tests: no question of data/eval/*.jsonl (nor a turn of its history)
appears word for word as a string in a file under tests/."""

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


def leaks(folder: Path, questions: dict[str, str]) -> list[str]:
    """Files under `folder` holding an eval question as a string of its own: quoted, or a whole line."""
    hits: list[str] = []
    for path in sorted(folder.rglob("*")):
        if not path.is_file() or path.suffix not in {".py", ".json", ".jsonl", ".txt", ".md"}:
            continue
        text = _key(path.read_text("utf-8"))
        lines = {_key(line) for line in path.read_text("utf-8").splitlines()}
        hits += [f"{path.relative_to(folder)}: {where} {q!r}" for q, where in questions.items()
                 if f'"{q}"' in text or f"'{q}'" in text or q in lines]  # fmt: skip
    return hits


def test_no_test_file_holds_an_eval_question() -> None:
    hits = leaks(ROOT / "tests", eval_questions())
    assert hits == [], "\n".join(hits)


def test_a_planted_eval_question_is_found(tmp_path: Path) -> None:
    question, where = next(iter(eval_questions().items()))
    (tmp_path / "test_x.py").write_text(f'Q = "{question.upper()}"\n', "utf-8")
    (tmp_path / "cases.txt").write_text(f"  {question}\n", "utf-8")
    (tmp_path / "ok.py").write_text(f'Q = "thêm {question}"\n', "utf-8")  # part of a longer string
    assert leaks(tmp_path, {question: where}) == [
        f"cases.txt: {where} {question!r}",
        f"test_x.py: {where} {question!r}",
    ]
