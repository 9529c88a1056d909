"""An eval question set + the chat service → answer quality: expected facts, refusals, verbatim citations."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from bot.followup import resolve
from bot.service import ChatService
from index.evaluation import EvalQuestion, Rewrite, latency_ms
from index.search import SearchFilters
from index.textnorm import fold, normalize


def conversation_rewrite(service: ChatService) -> Rewrite:
    """What the service searches for a question asked after its history (follow-ups inherit Kết luận etc.)."""
    analyze = service.extractive.analyze

    def rewrite(q: EvalQuestion) -> tuple[str, SearchFilters | None]:
        from bot.models import Turn

        history = [
            Turn(message_id=str(i), question=h, answer="", answered=True) for i, h in enumerate(q.history)
        ]
        question = resolve(normalize(q.question), history, analyze)
        return question.topic or question.text, service.extractive.effective_filters(question, None)

    return rewrite


def _contains(answer: str, fact: str | list[str]) -> bool:
    options = fact if isinstance(fact, list) else [fact]
    folded = fold(normalize(answer))
    return any(fold(normalize(o)) in folded for o in options)


@dataclass
class AnswerReport:
    in_corpus: int = 0
    out_of_corpus: int = 0
    fact_found: int = 0
    wrongly_refused: int = 0
    refused_out: int = 0
    citations: int = 0
    verbatim: int = 0
    marker_errors: int = 0
    latencies_ms: list[float] = field(default_factory=list)
    failures: dict[str, str] = field(default_factory=dict)

    def as_dict(self) -> dict[str, object]:
        latency = latency_ms(self.latencies_ms)
        return {
            "in_corpus_questions": self.in_corpus,
            "fact_in_answer": round(self.fact_found / self.in_corpus, 4) if self.in_corpus else None,
            "in_corpus_refused": round(self.wrongly_refused / self.in_corpus, 4) if self.in_corpus else None,
            "out_of_corpus_questions": self.out_of_corpus,
            "out_of_corpus_refused": round(self.refused_out / self.out_of_corpus, 4)
            if self.out_of_corpus
            else None,
            "citations": self.citations,
            "citations_verbatim": round(self.verbatim / self.citations, 4) if self.citations else None,
            "marker_errors": self.marker_errors,
            "latency_ms_p50": latency["p50"],
            "latency_ms_p95": latency["p95"],
            "failures": dict(sorted(self.failures.items())),
        }


def answer_report(service: ChatService, questions: list[EvalQuestion]) -> AnswerReport:
    """Ask every question in its own conversation (after its history) and check the answer."""
    import re

    report = AnswerReport()
    for q in questions:
        conversation: str | None = None
        for earlier in q.history:
            conversation = service.answer(earlier, conversation).conversation_id
        started = time.perf_counter()
        response = service.answer(q.question, conversation)
        report.latencies_ms.append((time.perf_counter() - started) * 1000)
        for c in response.citations:
            report.citations += 1
            source = service.index.source_text(c.source.file)
            if source[c.source.start : c.source.end] == c.text:
                report.verbatim += 1
        used = {int(n) for n in re.findall(r"\[(\d+)\]", response.answer)}
        if used != {c.n for c in response.citations}:
            report.marker_errors += 1
            report.failures[q.id] = "markers and citations disagree"
        if q.answerable:
            report.in_corpus += 1
            if not response.answered:
                report.wrongly_refused += 1
                report.failures[q.id] = "refused"
            elif all(_contains(response.answer, f) for f in q.expect):
                report.fact_found += 1
            else:
                report.failures[q.id] = f"expected {q.expect} not in answer"
        else:
            report.out_of_corpus += 1
            if not response.answered and not response.citations:
                report.refused_out += 1
            else:
                report.failures[q.id] = "answered a question the corpus does not cover"
    return report
