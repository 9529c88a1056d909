"""Answers built on task data: an agency's tasks, one task's deadline, windows, comparisons, references.

The directives here are written by hand over real passages of the shipped corpus (a fake at the seam: the
extraction has its own tests), so each test pins what the answer does with a given task list.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import replace

import pytest

from bot.catalog import catalogue
from bot.extractive import ExtractiveAnswerer
from bot.overview import Overview
from bot.question import Lexicon, analyze
from bot.tasks_answers import TaskAnswers, folded_words
from index.models import Directive, Reference, Source
from index.search import SearchIndex
from index.tasks import TaskBook
from index.textnorm import fold, normalize, words


def _directive(index: SearchIndex, pid: str, action_start: str, agencies: list[str], *, partners: list[str] = (),  # type: ignore[assignment]
               deadline: dt.date | None = None, text: str | None = None, recurring: str | None = None) -> Directive:  # fmt: skip
    p = index.passage(pid)
    at = p.text.index(action_start)
    action = p.text[at : at + 120].rsplit(" ", 1)[0]
    return Directive(
        directive_id=f"{pid}.t1", ket_luan=p.ket_luan or "", document_id=p.document_id, issued=p.issued,
        agencies=agencies, partners=list(partners), action=action,
        source=Source(file=p.source.file, start=p.source.start + at, end=p.source.start + at + len(action)),
        deadline=deadline, deadline_precision="day" if deadline else None, deadline_text=text,
        recurring=recurring, passage_id=pid, label=p.label, url=p.url,
    )  # fmt: skip


@pytest.fixture(scope="module")
def book(kl_index: SearchIndex) -> TaskBook:
    d = _directive
    return TaskBook(
        [
            d(kl_index, "kl183-621b55.m3.d1", "tiếp tục lãnh đạo", ["Đảng ủy Chính phủ"],
              deadline=dt.date(2025, 8, 31), text="trước ngày 31/8/2025"),
            d(kl_index, "kl183-621b55.m3.d4.2", "khẩn trương hoàn thiện", ["Bộ Tư pháp"],
              deadline=dt.date(2025, 8, 31), text="trước ngày 31/8/2025"),
            d(kl_index, "kl183-621b55.m9.d1", "Bộ Chính trị", ["Đảng ủy Chính phủ"],
              text="chậm nhất trước ngày 25 hằng tháng", recurring="monthly"),
            d(kl_index, "kl195-843053.d5", "Yêu cầu", ["Các bộ, ngành"], partners=["Bộ Tư pháp"],
              deadline=dt.date(2025, 10, 15), text="trước ngày 15-10-2025"),
        ],
        [Reference(kind="Kết luận", number="192-KL/TW", issued=dt.date(2025, 9, 19),
                   mentioned_in=["kl195-843053.d5"], mention="Kết luận số 192-KL/TW")],
    )  # fmt: skip


@pytest.fixture(scope="module")
def answers(kl_index: SearchIndex, book: TaskBook) -> TaskAnswers:
    found = TaskAnswers(kl_index, catalogue(kl_index))
    found.book = book
    return found


@pytest.fixture(scope="module")
def lexicon(kl_index: SearchIndex) -> Lexicon:
    answerer = ExtractiveAnswerer(kl_index)
    return answerer.reader.lexicon


def _markers_cover_sources(text: str, sources: int) -> bool:
    return {int(n) for n in re.findall(r"\[(\d+)\]", text)} == set(range(1, sources + 1))


def test_an_agencys_tasks_newest_first_each_with_role_deadline_and_citation(
    answers: TaskAnswers, lexicon: Lexicon
) -> None:
    draft = answers.agency(analyze("bo tu phap co nhung nhiem vu gi", lexicon))
    assert draft is not None and draft.answered
    lines = draft.answer.splitlines()
    assert "Bộ Tư pháp" in lines[0] and "chủ trì 1, phối hợp 1" in lines[0]
    assert "mới nhất là Kết luận 195-KL/TW" in lines[0]
    items = [x for x in lines if x.startswith("- ")]
    assert "15/10/2025" in items[0] and "phối hợp" in items[0] and "195-KL/TW" in items[0]
    assert "31/8/2025" in items[1] and "chủ trì" in items[1] and "183-KL/TW" in items[1]
    assert {p.passage_id for p in draft.sources} == {"kl183-621b55.m3.d4.2", "kl195-843053.d5"}
    assert _markers_cover_sources(draft.answer, len(draft.sources))


def test_unknown_agency_gives_no_task_answer(answers: TaskAnswers, lexicon: Lexicon) -> None:
    assert answers.agency(analyze("bộ ngoại giao phải làm gì", lexicon)) is None


def test_a_dated_task_is_chosen_over_a_monthly_report_of_the_same_agency(
    kl_index: SearchIndex, answers: TaskAnswers
) -> None:
    answerer = ExtractiveAnswerer(kl_index)
    answerer.tasks = answers
    question = answerer.analyze(
        "hạn rà soát thể chế và bố trí ngân sách của đảng ủy chính phủ (kết luận 183)"
    )
    hits = answerer.search(question, None)
    draft = answers.deadline(question, hits, answerer.terms(question.topic))
    assert draft is not None
    first = draft.answer.splitlines()[0]
    assert "31/8/2025" in first and "hằng tháng" not in first


def test_windows_overdue_and_upcoming_are_relative_to_the_day_asked(
    answers: TaskAnswers, lexicon: Lexicon
) -> None:
    overdue = answers.window(analyze("việc nào đã quá hạn", lexicon), dt.date(2025, 9, 10))
    assert overdue is not None and overdue.answered
    assert "31/8/2025" in overdue.answer and "15/10/2025" not in overdue.answer
    upcoming = answers.window(analyze("việc nào sắp đến hạn", lexicon), dt.date(2025, 10, 1))
    assert upcoming is not None and upcoming.answered
    assert "15/10/2025" in upcoming.answer and "25 hằng tháng" in upcoming.answer
    assert "31/8/2025" not in upcoming.answer
    month = answers.window(analyze("các việc có hạn trong tháng 8/2025", lexicon), dt.date(2025, 1, 1))
    assert month is not None and month.answer.count("31/8/2025") == 2
    empty = answers.window(analyze("các việc có hạn trong tháng 3/2026", lexicon), dt.date(2025, 1, 1))
    assert empty is not None and not empty.answered and not empty.sources


def test_a_document_the_corpus_mentions_is_answered_from_its_mention(
    answers: TaskAnswers, lexicon: Lexicon
) -> None:
    mentioned = replace(lexicon, referenced=frozenset({"192-kl/tw"}))  # the corpus mentions 192-KL/TW
    draft = answers.reference(analyze("kết luận số 192 ra đời hôm nào", mentioned))
    assert draft is not None and draft.answered
    assert "19/9/2025" in draft.answer
    assert [p.passage_id for p in draft.sources] == ["kl195-843053.d5"]


def test_comparison_names_a_deadline_that_moved(kl_index: SearchIndex, book: TaskBook) -> None:
    old = book.directives[1]
    moved = old.model_copy(update={"directive_id": "x", "ket_luan": "195-KL/TW", "deadline": dt.date(2025, 10, 15),
                                   "deadline_text": "trước ngày 15-10-2025", "passage_id": "kl195-843053.d5"})  # fmt: skip
    kl_index_book = TaskBook([old, moved], [])
    overview = Overview(kl_index, catalogue(kl_index))
    original, kl_index.tasks = kl_index.tasks, kl_index_book
    try:
        draft = overview.compare(["195-KL/TW", "183-KL/TW"])
    finally:
        kl_index.tasks = original
    assert draft.answered
    assert "trước đây trước ngày 31/8/2025" in draft.answer and "nay trước ngày 15/10/2025" in draft.answer
    assert draft.answer.splitlines()[0].startswith(
        "So sánh Kết luận 183-KL/TW (trước) và Kết luận 195-KL/TW (sau)"
    )


def test_a_named_window_comes_before_due_soon(answers: TaskAnswers, lexicon: Lexicon) -> None:
    # "tới hạn" asks what is due; the month named says when: tasks of that month, not the next 30 days
    draft = answers.window(analyze("tháng mười năm 2025 có việc gì tới hạn", lexicon), dt.date(2025, 8, 1))
    assert draft is not None and draft.answered
    assert "15/10/2025" in draft.answer and "31/8/2025" not in draft.answer


@pytest.mark.parametrize(
    ("message", "first"),
    [("kết luận nào ban hành sớm nhất", "179-KL/TW"), ("kết luận mới nhất là kết luận nào", "221-KL/TW")],
)
def test_the_oldest_and_the_newest_ket_luan(kl_index: SearchIndex, message: str, first: str) -> None:
    answerer = ExtractiveAnswerer(kl_index)
    draft = answerer.answer(answerer.analyze(message))
    assert draft.answered
    assert first in draft.answer.splitlines()[0]


def test_an_agency_compared_across_two_ket_luan_shows_its_role_and_partners(
    kl_index: SearchIndex, book: TaskBook
) -> None:
    overview = Overview(kl_index, catalogue(kl_index))
    original, kl_index.tasks = kl_index.tasks, book
    try:
        draft = overview.compare(["195-KL/TW", "183-KL/TW"], "Bộ Tư pháp")
    finally:
        kl_index.tasks = original
    lines = draft.answer.splitlines()
    assert any("chủ trì" in line and "31/8/2025" in line for line in lines)  # 183: it leads
    assert any(
        "phối hợp, cùng Các bộ, ngành" in line and "15/10/2025" in line for line in lines
    )  # 195: it helps


@pytest.mark.parametrize(
    "action",
    [
        "Bộ Tư pháp  chủ trì, phối hợp rà soát",
        "hoà hợp, thuỷ lợi (cách bỏ dấu cũ)",
        "Đảng ủy Chính phủ; UBND tỉnh",
    ],
)
def test_task_actions_are_folded_once_and_as_before(action: str) -> None:
    folded_words.cache_clear()
    assert folded_words(action) == " " + " ".join(words(fold(normalize(action)))) + " "
    folded_words(action)
    assert folded_words.cache_info().hits == 1
