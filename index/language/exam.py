"""An exam question about a text (true/false statement, multiple choice, short answer) → what to search:
the statement without its verdict cue, the stem without its instructions, and the choices that say something
(not "Cả A, B, C đều đúng"). Phrases are the file data/exam_wording.tsv."""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from index.textnorm import fold, normalize

DATA = Path(__file__).with_name("data")
_EDGE = r"[\s,.;:!?…\-–]*"
# a choice that only points at other choices: "Cả A, B, C đều đúng", "Cả 3 phương án trên", "Tất cả các đáp án
# trên", "Không có đáp án nào đúng", "Cả A và B đều sai" (folded text)
_POINTER_CHOICE = re.compile(
    r"^(ca|tat ca|khong co|khong)\b[^.;]{0,40}?"
    r"(\b[a-d]\b|phuong an|dap an|lua chon|cau tra loi|\btren\b|deu dung|deu sai)[^.;]{0,20}$"
)


@dataclass(frozen=True)
class ExamQuery:
    """What retrieval reads for one exam question: its stem, and one text per choice that says something."""

    stem: str
    choices: tuple[str, ...] = ()


@cache
def _phrases() -> dict[str, tuple[str, ...]]:
    out: dict[str, list[str]] = {}
    for line in (DATA / "exam_wording.tsv").read_text("utf-8").splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        kind, phrase = line.split("\t")
        out.setdefault(kind, []).append(phrase.strip())
    # longest first, so "nhan dinh tren dung hay sai" wins over "dung hay sai"
    return {k: tuple(sorted(v, key=len, reverse=True)) for k, v in out.items()}


@cache
def _patterns() -> tuple[re.Pattern[str], re.Pattern[str], re.Pattern[str]]:
    verdict = "|".join(re.escape(p) for p in _phrases()["verdict"])
    instruction = "|".join(re.escape(p) for p in _phrases()["instruction"])
    return (
        re.compile(rf"{_EDGE}(?:la\s+)?(?:{verdict}){_EDGE}$"),
        re.compile(rf"^{_EDGE}(?:{verdict})\s*[:?]{_EDGE}"),
        re.compile(rf"\s*\b(?:{instruction})\b[\s.:;,]*"),
    )


def _cut(text: str, pattern: re.Pattern[str], repl: str = "") -> str:
    """`text` with the spans `pattern` finds in its folded form replaced (fold keeps offsets in NFC text)."""
    folded = fold(text)
    out, last = [], 0
    for m in pattern.finditer(folded):
        out.append(text[last : m.start()])
        out.append(repl if m.start() > 0 and m.end() < len(text) else "")
        last = m.end()
    out.append(text[last:])
    return "".join(out)


def strip_task_wording(question: str) -> str:
    """The question without the words that only set the task: a verdict cue ("…, đúng hay sai?",
    "Nhận định sau đúng hay sai: …") and instructions ("Chọn câu trả lời đúng nhất", "sau đây")."""
    end, lead, instruction = _patterns()
    text = normalize(question)
    text = _cut(_cut(text, end), lead)
    text = _cut(text, instruction, " ")
    stripped = normalize(text)
    return stripped if any(ch.isalnum() for ch in stripped) else normalize(question)


def is_pointer_choice(choice: str) -> bool:
    """True for a choice that only points at others ("Cả A, B, C đều đúng"), which names nothing to search."""
    return bool(_POINTER_CHOICE.match(fold(normalize(choice)).rstrip(" .;:")))


def exam_query(question: str, choices: dict[str, str] | list[str] | None = None) -> ExamQuery:
    """The stem without task wording, and the choices that say something (in their order, no repeats)."""
    items = list(choices.values()) if isinstance(choices, dict) else list(choices or [])
    kept: list[str] = []
    for choice in items:
        text = normalize(choice).rstrip(" .;")
        if text and not is_pointer_choice(text) and text not in kept:
            kept.append(text)
    return ExamQuery(stem=strip_task_wording(question), choices=tuple(kept))
