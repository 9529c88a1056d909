"""bot/evaluation.py: one answer judged against its question (facts, gold citations, verbatim offsets read
apart from the service, markers), the rates per intent and style, and the run over a fake service."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest

from bot.evaluation import (
    AnswerReport,
    Scored,
    answer_report,
    conversation_rewrite,
    read_sources,
    score,
    summary,
)
from bot.models import ChatResponse, Citation
from bot.service import ChatService
from index.evaluation import EvalQuestion
from tests.handmade import FILE, SOURCE, citation, read_source


def _response(answer: str, citations: list[Citation], answered: bool = True) -> ChatResponse:
    return ChatResponse(conversation_id="c", message_id="m", answer=answer, answered=answered,
                        citations=citations, mode="extractive", latency_ms=1.0)  # fmt: skip


def _q(expect: list[str | list[str]] | None = None, gold: list[str] | None = None, answerable: bool = True,
       question: str = "Hỏi gì đó?", **kw: Any) -> EvalQuestion:  # fmt: skip
    return EvalQuestion(id=kw.pop("id", "q1"), question=question, expect=expect or [], answerable=answerable,
                        gold=gold if gold is not None else ["kl901.p1"], **kw)  # fmt: skip


ANSWER = "Hạn là 30/6/2026 [1]. Bộ Tài chính chủ trì [2]."
CITED = [citation(1, 1), citation(2, 2)]


@pytest.mark.parametrize(
    ("question", "response", "outcome", "why"),
    [
        (_q(["2026-06-30", "Bộ Tài chính"]), _response(ANSWER, CITED), "correct", ""),
        (_q(["30 tháng 6 năm 2026"]), _response(ANSWER, CITED), "correct", ""),
        (_q(["30/7/2026"]), _response(ANSWER, CITED), "wrong", "expected ['30/7/2026'] not in answer"),
        (
            _q(["Bộ Tài chính", "Bộ Nội vụ"]),
            _response(ANSWER, CITED),
            "wrong",
            "expected ['Bộ Tài chính', 'Bộ Nội vụ']",
        ),
        (_q([["Bộ Nội vụ", "Bộ Tài chính"]]), _response(ANSWER, CITED), "correct", ""),
        (_q(["Bộ Tài chính"], gold=["kl901.p4"]), _response(ANSWER, CITED), "wrong", "no gold passage cited"),
        (_q(["Bộ Tài chính"], gold=[]), _response(ANSWER, CITED), "correct", ""),
        (_q(["Bộ Tài chính"]), _response("Xin lỗi.", [], answered=False), "false_refusal", "refused"),
        (_q(answerable=False), _response("Xin lỗi.", [], answered=False), "refused_out", ""),
        (_q(answerable=False), _response(ANSWER, CITED), "answered_out", "answered a question the corpus"),
        (
            _q(answerable=False),
            _response("Xin lỗi [1].", CITED[:1], answered=False),
            "answered_out",
            "answered",
        ),
        (_q(["Bộ Tài chính"]), _response(ANSWER, CITED[:1]), "correct", "markers and citations disagree"),
        (
            _q(["Quốc phòng"]),
            _response(ANSWER, CITED[:1]),
            "wrong",
            "expected ['Quốc phòng'] not in answer; markers and citations disagree",
        ),
    ],
)
def test_score_outcomes(question: EvalQuestion, response: ChatResponse, outcome: str, why: str) -> None:
    scored = score(question, response, read_source)
    assert scored.outcome == outcome
    assert scored.why.startswith(why) and bool(scored.why) is bool(why)


def test_score_counts_citations_gold_and_verbatim_apart_from_the_service() -> None:
    moved = citation(2, 2).model_copy(
        update={"source": citation(2, 2).source.model_copy(update={"start": 0})}
    )
    scored = score(_q(["Bộ Tài chính"], gold=["kl901.p2", "kl901.p9"]), _response(ANSWER, [citation(1, 1), moved]),
                   read_source)  # fmt: skip
    assert (scored.cited, scored.cited_gold, scored.gold_cited, scored.verbatim) == (2, 1, True, 1)
    assert (scored.id, scored.intent, scored.style, scored.markers_ok) == ("q1", "other", "unspecified", True)
    unreadable = citation(1, 1).model_copy(
        update={"source": citation(1, 1).source.model_copy(update={"file": "x"})}
    )
    assert score(_q(), _response("A [1].", [unreadable]), read_source).verbatim == 0
    both = [unreadable, citation(2, 2)]
    assert score(_q(), _response("A [1] [2].", both), read_source).verbatim == 1  # the next is still read
    assert not score(_q(), _response("Xin lỗi.", [], answered=False), read_source).facts_present
    assert score(_q(), _response("Xin lỗi.", [], answered=False), read_source).gold_cited is None
    assert score(_q(gold=[]), _response("A [1].", CITED[:1]), read_source).gold_cited is None
    assert score(_q(gold=["kl901.p4"]), _response("A [1].", CITED[:1]), read_source).gold_cited is False


@pytest.mark.parametrize(
    ("answer", "ns", "ok"),
    [("A [1] [2].", [1, 2], True), ("A [2] [3].", [2, 3], False), ("A [1].", [1, 1], False), ("A [1] [3].", [1, 2], False),
     ("A.", [], True), ("A.", [1], False)],
)  # fmt: skip
def test_score_checks_markers_against_the_contract(answer: str, ns: list[int], ok: bool) -> None:
    citations = [citation(1, n) for n in ns]
    assert score(_q(), _response(answer, citations), read_source).markers_ok is ok


def _scored(outcome: str, **kw: Any) -> Scored:
    base: dict[str, Any] = {"id": "x", "intent": "i", "style": "s", "outcome": outcome, "facts_present": False,
                            "gold_cited": None, "cited": 0, "cited_gold": 0, "verbatim": 0, "markers_ok": True}  # fmt: skip
    return Scored(**{**base, **kw})


def test_summary_rates() -> None:
    scores = [
        _scored("correct", facts_present=True, gold_cited=True, cited=2, cited_gold=1),
        _scored("wrong", facts_present=True, gold_cited=False, cited=1),
        _scored("wrong", cited=3, cited_gold=3, gold_cited=True),
        _scored("false_refusal"),
        _scored("refused_out"),
        _scored("answered_out", cited=5, cited_gold=0),
    ]
    assert summary(scores) == {
        "in_corpus_questions": 4,
        "fact_in_answer": 0.5,
        "wrong_answers": 0.5,
        "in_corpus_refused": 0.25,
        "gold_cited": round(2 / 3, 4),
        "citation_precision": round(4 / 6, 4),
        "out_of_corpus_questions": 2,
        "out_of_corpus_refused": 0.5,
    }
    assert summary([]) == {
        "in_corpus_questions": 0, "fact_in_answer": None, "wrong_answers": None, "in_corpus_refused": None,
        "gold_cited": None, "citation_precision": None, "out_of_corpus_questions": 0, "out_of_corpus_refused": None,
    }  # fmt: skip


def test_report_keeps_the_old_keys_and_adds_the_new_ones() -> None:
    report = AnswerReport(
        [_scored("correct", id="b", intent="deadline", style="spoken", facts_present=True, cited=2, verbatim=2),
         _scored("wrong", id="a", intent="tasks", style="spoken", cited=2, verbatim=1, markers_ok=False, why="w"),
         _scored("refused_out", id="c", intent="out_of_scope", style="formal")],
        [3.0, 1.0, 2.0],
    )  # fmt: skip
    d = report.as_dict()
    old_keys = {"in_corpus_questions", "fact_in_answer", "in_corpus_refused", "out_of_corpus_questions",
                "out_of_corpus_refused", "citations", "citations_verbatim", "marker_errors", "latency_ms_p50",
                "latency_ms_p95", "failures"}  # fmt: skip
    assert old_keys <= set(d)
    assert (d["citations"], d["citations_verbatim"], d["marker_errors"]) == (4, 0.75, 1)
    assert (d["latency_ms_p50"], d["latency_ms_p95"]) == (2.0, 2.0)
    assert d["failures"] == {"a": "w"}
    assert list(d["by_intent"]) == ["deadline", "out_of_scope", "tasks"]  # type: ignore[call-overload]
    assert d["by_intent"]["tasks"]["wrong_answers"] == 1.0  # type: ignore[index]
    assert d["by_style"]["spoken"]["in_corpus_questions"] == 2  # type: ignore[index]
    assert d["by_style"]["formal"]["out_of_corpus_refused"] == 1.0  # type: ignore[index]
    assert AnswerReport().as_dict()["citations_verbatim"] is None


def test_read_sources_reads_inside_its_folder_only(tmp_path: Path) -> None:
    (tmp_path / "sources").mkdir()
    (tmp_path / "sources" / FILE).write_text(SOURCE, "utf-8")
    (tmp_path / "secret.txt").write_text("x", "utf-8")
    read = read_sources(tmp_path / "sources")
    assert read(FILE) == SOURCE
    with pytest.raises(FileNotFoundError, match="secret"):
        read("../secret.txt")


class FakeService:
    """Answers from a table; records what it was asked, conversation by conversation."""

    def __init__(self, answers: dict[str, ChatResponse], build: Path) -> None:
        self.answers = answers
        self.asked: list[tuple[str, str | None]] = []
        self.days: list[dt.date | None] = []
        self.index = type("Index", (), {"build": build})()

    def answer(
        self, message: str, conversation_id: str | None = None, today: dt.date | None = None
    ) -> ChatResponse:
        self.asked.append((message, conversation_id))
        self.days.append(today)
        response = self.answers[message]
        return response.model_copy(update={"conversation_id": conversation_id or f"c{len(self.asked)}"})


def test_answer_report_asks_the_history_first_in_one_conversation(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import itertools

    from bot import evaluation

    clock = itertools.count(start=1.0, step=0.25)
    monkeypatch.setattr(evaluation.time, "perf_counter", lambda: next(clock))
    (tmp_path / "sources").mkdir()
    (tmp_path / "sources" / FILE).write_text(SOURCE.replace("30/6/2026", "30/6/2027"), "utf-8")
    service = FakeService({"Trước?": _response("X [1].", CITED[:1]), "Trước nữa?": _response("Y [1].", CITED[:1]),
                           "Sau?": _response(ANSWER, CITED),
                           "Ngoài?": _response("Xin lỗi.", [], answered=False)}, tmp_path)  # fmt: skip
    questions = [
        _q(["Bộ Tài chính"], id="f1", history=["Trước?", "Trước nữa?"], question="Sau?"),
        _q(id="o1", answerable=False, question="Ngoài?"),
    ]
    report = answer_report(service, questions)  # type: ignore[arg-type]
    assert service.asked == [("Trước?", None), ("Trước nữa?", "c1"), ("Sau?", "c1"), ("Ngoài?", None)]
    assert [s.outcome for s in report.scores] == ["correct", "refused_out"]
    assert report.latencies_ms == [250.0, 250.0]  # around the question itself, not its history
    # read from the build's sources on disk: there the first citation's text is no longer at its offsets
    assert report.as_dict()["citations_verbatim"] == 0.5
    assert answer_report(service, questions[:1], read_source).as_dict()["citations_verbatim"] == 1.0  # type: ignore[arg-type]


@pytest.mark.parametrize("as_of", [dt.date(2026, 4, 1), None])
def test_answer_report_asks_on_the_question_s_day(tmp_path: Path, as_of: dt.date | None) -> None:
    service = FakeService(
        {"Trước?": _response("X [1].", CITED[:1]), "Sau?": _response(ANSWER, CITED)}, tmp_path
    )
    answer_report(service, [_q(history=["Trước?"], question="Sau?", as_of=as_of)], read_source)  # type: ignore[arg-type]
    assert service.days[-1] == as_of


def test_conversation_rewrite_carries_the_ket_luan_of_the_history(tmp_path: Path) -> None:
    import shutil

    from bot.settings import BotSettings
    from bot.stores import sqlite_stores
    from index.build import build_index
    from index.embedding import HashingEmbedder
    from index.search import SearchQuery, open_index
    from index.settings import IndexSettings
    from tests.conftest import CORPUS

    (tmp_path / "corpus").mkdir()  # the one report that names Kết luận 183: a small index, built fast
    shutil.copy(CORPUS / "000_5d30afc99b18f1f4.txt", tmp_path / "corpus")
    settings = IndexSettings(data_dir=tmp_path, embedding_model="hashing-64")
    build_index(
        [tmp_path / "corpus"], settings.index_dir, HashingEmbedder(64), progress=False, log=lambda _: None
    )
    service = ChatService(
        open_index(settings), sqlite_stores(":memory:"), BotSettings(llm_base_url=None, redis_url=None)
    )
    rewrite = conversation_rewrite(service)
    query, _ = rewrite(
        _q(question="Thế Bộ Nội vụ thì sao?", history=["Kết luận 183 giao Bộ Tư pháp nhiệm vụ gì?"])
    )
    assert isinstance(query, SearchQuery)  # the question as the chat reads it: text, filters, focus
    assert query.filters is not None and query.filters.ket_luan == ["183-KL/TW"]
    assert "Nội vụ" in query.text
    # a Kết luận the index does not hold is no filter (it would match nothing)
    query, _ = rewrite(_q(question="Kết luận 183 và Kết luận 907 giao Bộ Nội vụ việc gì?"))
    assert isinstance(query, SearchQuery)
    assert query.filters is not None and query.filters.ket_luan == ["183-KL/TW"]
    query, _ = rewrite(_q(question="Bộ Nội vụ làm gì?"))
    assert isinstance(query, SearchQuery) and not (query.filters and query.filters.ket_luan)
