"""An index → its Kết luận as a catalogue: number, date, signer, report, subject, texts (official first),
newest first; and how dates and deadlines are written in answers."""

from __future__ import annotations

import datetime as dt
import functools
import re
from collections.abc import Sequence
from dataclasses import dataclass

from index.errors import NotFound
from index.models import Directive, Document, Passage
from index.search import SearchIndex
from index.textnorm import fold, normalize, words
from prompts import render


@dataclass(frozen=True)
class KetLuanInfo:
    number: str  # "183-KL/TW"
    issued: dt.date | None
    signer: str | None
    report: str | None
    subject: str
    documents: tuple[Document, ...]  # the official text first, then press reports


def vn_date(day: dt.date | None) -> str:
    return f"{day.day}/{day.month}/{day.year}" if day else "(không rõ ngày)"


def _slashed(text: str) -> str:
    """ "trước ngày 15-10-2025" → "trước ngày 15/10/2025": one way of writing dates in answers."""
    return re.sub(r"\b(\d{1,2})-(\d{1,2})-(\d{4})\b", r"\1/\2/\3", text)


@functools.lru_cache(maxsize=16384)
def folded_words(text: str) -> str:
    """The words of `text` folded, between spaces (" bo tu phap ra soat "), to find a folded phrase in. Kept:
    a question about tasks reads the actions of every task, and folding them each time was half of its CPU."""
    return " " + " ".join(words(fold(normalize(text)))) + " "


def coverage(content: Sequence[str], text: str) -> float:
    """The share of the folded words `content` that `text` holds."""
    have = set(folded_words(text).split())
    return sum(1 for w in content if w in have) / len(content) if content else 0.0


def task_passages(index: SearchIndex, d: Directive) -> list[Passage]:
    """The passages to cite for a task: the one its action is quoted from and, when another text of the same
    Kết luận states its deadline (179-KL/TW is told by two press reports), that one too."""
    found: list[Passage] = []
    for pid in (d.passage_id, *d.also_in):
        try:
            found.append(index.passage(pid))
        except NotFound:
            continue
    if not found:
        return []
    if d.deadline_text and d.deadline_text not in found[0].text:
        stating = next((p for p in found[1:] if d.deadline_text in p.text), None)
        if stating is not None:
            return [found[0], stating]
    return found[:1]


def task_passage(index: SearchIndex, d: Directive) -> Passage | None:
    """The passage that states a task's deadline when one does (else the one its action is quoted from)."""
    passages = task_passages(index, d)
    return passages[-1] if passages else None


def deadline_phrase(d: Directive) -> str:
    """How an answer states a task's deadline: the date at its precision, or the words of the text."""
    if d.recurring and d.deadline_text:
        return _slashed(d.deadline_text)
    if d.deadline is None:
        return _slashed(d.deadline_text) if d.deadline_text else render("no_deadline")
    if d.deadline_precision == "year":
        return render("span_year", year=d.deadline.year)
    if d.deadline_precision == "month":
        return render("span_month", month=d.deadline.month, year=d.deadline.year)
    if d.deadline_text:
        return _slashed(d.deadline_text)
    return render("span_before_day", date=vn_date(d.deadline))


def catalogue(index: SearchIndex) -> dict[str, KetLuanInfo]:
    groups: dict[str, list[Document]] = {}
    for doc in index.documents.values():
        if doc.ket_luan:
            groups.setdefault(doc.ket_luan, []).append(doc)
    info: dict[str, KetLuanInfo] = {}
    for number, docs in groups.items():
        docs.sort(key=lambda d: (not d.official, -sum(x is not None for x in (d.issued, d.signer, d.report))))
        subject = next((d.title.split(" về ", 1)[1] for d in docs if " về " in d.title), "")
        info[number] = KetLuanInfo(
            number=number,
            issued=next((d.issued for d in docs if d.issued), None),
            signer=next((d.signer for d in docs if d.signer), None),
            report=next((d.report for d in docs if d.report), None),
            subject=subject,
            documents=tuple(docs),
        )
    return dict(sorted(info.items(), key=lambda kv: kv[1].issued or dt.date.min, reverse=True))
