"""An eval question set + the chat service → answer quality: facts, wrong answers, refusals, gold and verbatim
citations, per intent and per style."""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Literal

from bot.followup import resolve
from bot.models import ChatResponse
from bot.service import ChatService
from index.evaluation import EvalQuestion, Rewrite, fact_present, latency_ms
from index.search import SearchFilters, SearchQuery
from index.textnorm import normalize


def conversation_rewrite(service: ChatService) -> Rewrite:
    """What the service searches for a question asked after its history (follow-ups inherit Kết luận etc.)."""
    analyze = service.extractive.analyze

    def rewrite(q: EvalQuestion) -> tuple[str | SearchQuery, SearchFilters | None]:
        from bot.models import Turn

        history = [
            Turn(message_id=str(i), question=h, answer="", answered=True) for i, h in enumerate(q.history)
        ]
        question = resolve(normalize(q.question), history, analyze)
        known = [n for n in question.ket_luan if n in service.extractive.ket_luan]
        return replace(question, ket_luan=tuple(known)).search_query(None), None

    return rewrite


Outcome = Literal["correct", "wrong", "false_refusal", "refused_out", "answered_out"]


@dataclass(frozen=True)
class Scored:
    """One question's answer, judged: facts, gold citations, verbatim citations, markers, outcome."""

    id: str
    intent: str
    style: str
    outcome: Outcome
    facts_present: bool
    gold_cited: bool | None  # None: the question has no gold passages, or nothing was cited
    cited: int
    cited_gold: int
    verbatim: int
    markers_ok: bool
    why: str = ""


_MARKER = re.compile(r"\[(\d+)\]")


def score(q: EvalQuestion, response: ChatResponse, source_text: Callable[[str], str]) -> Scored:
    """Judge one answer against its question; `source_text` reads a source file (not through the service)."""
    verbatim = 0
    for c in response.citations:
        try:
            text = source_text(c.source.file)
        except OSError:
            continue
        verbatim += text[c.source.start : c.source.end] == c.text
    numbers = [c.n for c in response.citations]
    markers_ok = set(map(int, _MARKER.findall(response.answer))) == set(numbers) and sorted(numbers) == list(
        range(1, len(numbers) + 1)
    )
    gold = set(q.gold)
    cited_gold = sum(1 for c in response.citations if c.passage_id in gold)
    gold_cited = cited_gold > 0 if gold and response.citations else None
    facts = all(fact_present(response.answer, f) for f in q.expect)
    why = ""
    outcome: Outcome
    if not q.answerable:
        refused = not response.answered and not response.citations
        outcome = "refused_out" if refused else "answered_out"
        why = "" if refused else "answered a question the corpus does not cover"
    elif not response.answered:
        outcome, why = "false_refusal", "refused"
    elif not facts:
        outcome, why = "wrong", f"expected {q.expect} not in answer"
    elif gold and not gold_cited:
        outcome, why = "wrong", "no gold passage cited"
    else:
        outcome = "correct"
    if not markers_ok:
        why = "; ".join(filter(None, [why, "markers and citations disagree"]))
    return Scored(q.id, q.intent, q.style, outcome, facts and response.answered, gold_cited,
                  len(response.citations), cited_gold, verbatim, markers_ok, why)  # fmt: skip


def _rate(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


def summary(scores: Sequence[Scored]) -> dict[str, object]:
    """Rates over a group of judged answers: in-corpus and out-of-corpus counted apart."""
    answerable = [s for s in scores if s.outcome in ("correct", "wrong", "false_refusal")]
    out = [s for s in scores if s.outcome in ("refused_out", "answered_out")]
    with_gold = [s for s in answerable if s.gold_cited is not None]
    cited = sum(s.cited for s in answerable)
    return {
        "in_corpus_questions": len(answerable),
        "fact_in_answer": _rate(sum(s.facts_present for s in answerable), len(answerable)),
        "wrong_answers": _rate(sum(s.outcome == "wrong" for s in answerable), len(answerable)),
        "in_corpus_refused": _rate(sum(s.outcome == "false_refusal" for s in answerable), len(answerable)),
        "gold_cited": _rate(sum(bool(s.gold_cited) for s in with_gold), len(with_gold)),
        "citation_precision": _rate(sum(s.cited_gold for s in answerable), cited),
        "out_of_corpus_questions": len(out),
        "out_of_corpus_refused": _rate(sum(s.outcome == "refused_out" for s in out), len(out)),
    }


@dataclass
class AnswerReport:
    scores: list[Scored] = field(default_factory=list)
    latencies_ms: list[float] = field(default_factory=list)

    def as_dict(self) -> dict[str, object]:
        latency = latency_ms(self.latencies_ms)
        citations = sum(s.cited for s in self.scores)
        by_intent: dict[str, list[Scored]] = {}
        by_style: dict[str, list[Scored]] = {}
        for s in self.scores:
            by_intent.setdefault(s.intent, []).append(s)
            by_style.setdefault(s.style, []).append(s)
        return {
            **summary(self.scores),
            "citations": citations,
            "citations_verbatim": _rate(sum(s.verbatim for s in self.scores), citations),
            "marker_errors": sum(not s.markers_ok for s in self.scores),
            "latency_ms_p50": latency["p50"],
            "latency_ms_p95": latency["p95"],
            "by_intent": {k: summary(v) for k, v in sorted(by_intent.items())},
            "by_style": {k: summary(v) for k, v in sorted(by_style.items())},
            "failures": {s.id: s.why for s in sorted(self.scores, key=lambda s: s.id) if s.why},
        }


def read_sources(folder: Path) -> Callable[[str], str]:
    """A reader of the index build's source files straight from disk, apart from the service's own."""

    def read(file: str) -> str:
        path = (folder / file).resolve()
        if not path.is_relative_to(folder.resolve()):
            raise FileNotFoundError(file)
        return path.read_text("utf-8")

    return read


def answer_report(
    service: ChatService, questions: list[EvalQuestion], source_text: Callable[[str], str] | None = None
) -> AnswerReport:
    """Ask every question in its own conversation (after its history) and judge the answer."""
    read = source_text or read_sources(service.index.build / "sources")
    report = AnswerReport()
    for q in questions:
        conversation: str | None = None
        for earlier in q.history:
            conversation = service.answer(earlier, conversation).conversation_id
        started = time.perf_counter()
        response = service.answer(q.question, conversation, today=q.as_of)
        report.latencies_ms.append((time.perf_counter() - started) * 1000)
        report.scores.append(score(q, response, read))
    return report
