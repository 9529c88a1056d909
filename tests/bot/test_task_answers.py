"""Answers built on task data: an agency's tasks, one task's deadline, windows, comparisons, references.

The directives here are written by hand over real passages of the shipped corpus (a fake at the seam: the
extraction has its own tests), so each test pins what the answer does with a given task list.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import replace

import pytest

from bot.catalog import catalogue, folded_words, task_passage, task_passages
from bot.extractive import ExtractiveAnswerer, _parts
from bot.followup import resolve
from bot.models import Turn
from bot.overview import Overview
from bot.question import Lexicon, analyze
from bot.tasks_answers import TaskAnswers
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


def test_agencies_named_in_other_words_still_own_the_deadline(kl_index: SearchIndex) -> None:
    # the question says "bộ, ngành và các địa phương", the text "các bộ, ngành, địa phương phải …"
    answerer = ExtractiveAnswerer(kl_index)
    message = "Bộ, ngành và các địa phương phải giải quyết dứt điểm hồ sơ thủ tục hành chính tồn đọng trước ngày nào vậy?"
    draft = answerer.answer(answerer.analyze(message))
    assert draft.answered
    assert "15/10/2025" in draft.answer.splitlines()[0]


def test_a_ket_luan_number_outside_the_corpus_is_refused_by_its_number(kl_index: SearchIndex) -> None:
    answerer = ExtractiveAnswerer(kl_index)
    draft = answerer.answer(answerer.analyze("Kết luận 160 ngày ban hành là bao giờ"))
    assert not draft.answered
    assert "160-KL/TW" in draft.answer


def test_an_agencys_task_about_the_topic_asked_comes_first_and_whole(kl_index: SearchIndex) -> None:
    answerer = ExtractiveAnswerer(kl_index)
    message = "Theo kết luận 179, Đảng ủy Chính phủ phải chỉ đạo những gì liên quan đến dịch vụ công?"
    draft = answerer.answer(answerer.analyze(message))
    assert draft.answered
    items = [line for line in draft.answer.splitlines() if line.startswith("- ")]
    assert "dịch vụ công" in items[0] and "Cổng Dịch vụ công quốc gia" in items[0]


def test_the_report_a_ket_luan_answers_comes_with_its_date_and_issuer(kl_index: SearchIndex) -> None:
    answerer = ExtractiveAnswerer(kl_index)
    draft = answerer.answer(
        answerer.analyze("Kết luận 183 được ban hành dựa trên báo cáo nào của cơ quan nào?")
    )
    assert draft.answered
    assert "Báo cáo số 428-BC/BTCTW, ngày 31/7/2025 của Ban Tổ chức Trung ương" in draft.answer


def test_an_agency_asked_by_the_short_name_of_its_standing_body_gets_that_bodys_tasks(
    kl_index: SearchIndex,
) -> None:
    answerer = ExtractiveAnswerer(kl_index)
    draft = answerer.answer(answerer.analyze("Ban Chỉ đạo Nghị quyết 57 có những nhiệm vụ gì theo kl 195"))
    assert draft.answered
    assert draft.answer.startswith("Thường trực Ban Chỉ đạo Nghị quyết 57")
    assert "bí mật nhà nước" in draft.answer


def test_a_topic_through_the_series_quotes_each_ket_luan_on_it_newest_first(kl_index: SearchIndex) -> None:
    answerer = ExtractiveAnswerer(kl_index)
    draft = answerer.answer(answerer.analyze("các kết luận đã nói những gì về chuyển đổi số?"))
    assert draft.answered
    items = [line for line in draft.answer.splitlines() if line.startswith("- ")]
    numbers = [re.search(r"Kết luận (\d+)-KL/TW", line).group(1) for line in items]  # type: ignore[union-attr]
    assert len(numbers) >= 2 and numbers == sorted(numbers, key=int, reverse=True)
    assert all("chuyển đổi số" in line for line in items)


def test_the_series_subject_alone_asks_what_each_ket_luan_is_about(kl_index: SearchIndex) -> None:
    answerer = ExtractiveAnswerer(kl_index)
    draft = answerer.answer(
        answerer.analyze("mấy kết luận về chính quyền địa phương 2 cấp, mỗi cái nói chuyện gì")
    )
    assert draft.answered
    assert all(f"Kết luận {n}-KL/TW" in draft.answer for n in (179, 183, 195, 221))


def test_a_comparison_of_two_clauses_quotes_each_ket_luans_own(kl_index: SearchIndex) -> None:
    answerer = ExtractiveAnswerer(kl_index)
    message = (
        "Hạn sắp xếp trường học, trạm y tế cấp xã trong Kết luận 221 khác gì với hạn xử lý hồ sơ thủ tục "
        "hành chính tồn đọng trong Kết luận 195?"
    )
    draft = answerer.answer(answerer.analyze(message))
    assert draft.answered
    assert "31/12/2025" in draft.answer and "15-10-2025" in draft.answer
    assert {c.ket_luan for c in draft.sources} == {"221-KL/TW", "195-KL/TW"}


@pytest.mark.parametrize(
    ("text", "parts"),
    [
        ("so sánh hạn A trong KL 195 với hạn B trong KL 221",
         {"195-KL/TW": "so sánh hạn A trong", "221-KL/TW": "với hạn B trong"}),
        ("so sánh KL 195 về việc A với KL 221 về việc B",
         {"195-KL/TW": "về việc A với", "221-KL/TW": "về việc B"}),
        ("KL 195 và KL 221 khác nhau thế nào", {}),  # no words of their own
    ],
)  # fmt: skip
def test_the_words_of_a_comparison_that_go_with_each_number(text: str, parts: dict[str, str]) -> None:
    assert _parts(text, ["195-KL/TW", "221-KL/TW"]) == parts


def _quoted(kl_index: SearchIndex, needle: str) -> Turn:
    """A previous turn whose answer quoted the passage holding `needle`."""
    passage = next(p for p in kl_index.passages if needle in p.text)
    return Turn(message_id="1", question="…", answer=f"“{needle}” [1]", answered=True,
                passage_ids=[passage.passage_id])  # fmt: skip


def test_a_follow_up_on_a_document_named_in_the_quoted_passage(kl_index: SearchIndex) -> None:
    answerer = ExtractiveAnswerer(kl_index)
    history = [_quoted(kl_index, "Kết luận số 192-KL/TW")]
    question = resolve("Kết luận được nhắc đến trong đoạn trên ban hành ngày nào?", history, answerer.analyze)
    draft = answerer.answer(question)
    assert draft.answered
    assert "192-KL/TW" in draft.answer and "19/9/2025" in draft.answer
    assert "56-KH/BCĐ" not in draft.answer  # a Kết luận was asked for, not the plan the same passage names


def test_a_follow_up_deadline_of_the_quoted_passage(kl_index: SearchIndex) -> None:
    answerer = ExtractiveAnswerer(kl_index)
    history = [_quoted(kl_index, "hồ sơ thủ tục hành chính tồn đọng")]
    draft = answerer.answer(resolve("vậy hạn chót là bữa nào?", history, answerer.analyze))
    assert draft.answered
    assert "15/10/2025" in draft.answer.splitlines()[0]


def test_a_summary_has_a_line_for_every_muc_and_shows_the_monthly_report(kl_index: SearchIndex) -> None:
    draft = Overview(kl_index, catalogue(kl_index)).summary("183-KL/TW")
    lines = draft.answer.splitlines()
    assert [n for n in range(1, 10) if any(line.startswith(f"- Mục {n}:") for line in lines)] == list(
        range(1, 10)
    )
    assert any("25 hằng tháng" in line for line in lines)


@pytest.mark.parametrize(
    "message", ["thời hạn của kl 221 và kl 195 khác gì nhau", "so sánh hạn kl 195 với kl 221"]
)
def test_comparing_the_deadlines_of_two_ket_luan_lists_each_ones_deadlines(
    kl_index: SearchIndex, message: str
) -> None:
    answerer = ExtractiveAnswerer(kl_index)
    draft = answerer.answer(answerer.analyze(message))
    assert draft.answered
    assert (
        "Các hạn trong Kết luận 195-KL/TW" in draft.answer
        and "Các hạn trong Kết luận 221-KL/TW" in draft.answer
    )
    assert "15/10/2025" in draft.answer and "31/12/2025" in draft.answer


@pytest.mark.parametrize(
    "message",
    [
        "183 có nhắc quy định nào ra ngày 2/1/2020 không, số hiệu là gì",
        "quyết định ngày 2/1/2020 trong kl 183 là số mấy",
    ],
)
def test_a_document_named_by_its_kind_and_day_is_found_among_those_cited(
    kl_index: SearchIndex, message: str
) -> None:
    answerer = ExtractiveAnswerer(kl_index)
    draft = answerer.answer(answerer.analyze(message))
    assert draft.answered
    assert "214-QĐ/TW" in draft.answer.splitlines()[0]


def test_the_ban_chi_dao_of_a_cited_plan_is_asked_of_the_plan(kl_index: SearchIndex) -> None:
    answerer = ExtractiveAnswerer(kl_index)
    draft = answerer.answer(
        answerer.analyze("Kế hoạch 02-KH/BCĐTW mà kl 183 nhắc là của Ban Chỉ đạo nào, ra ngày nào?")
    )
    assert draft.answered
    assert "19/6/2025" in draft.answer.splitlines()[0] and "chuyển đổi số" in draft.answer.splitlines()[0]


@pytest.mark.parametrize(
    ("message", "listed"),
    [("sau kết luận 183 còn những kết luận nào, mỗi cái nói gì", {"195", "221"}),
     ("trước kl 195 đã có mấy kết luận, từng cái về gì", {"179", "183"})],
)  # fmt: skip
def test_the_series_after_or_before_one_ket_luan(
    kl_index: SearchIndex, message: str, listed: set[str]
) -> None:
    answerer = ExtractiveAnswerer(kl_index)
    draft = answerer.answer(answerer.analyze(message))
    items = [line for line in draft.answer.splitlines() if line.startswith("- ")]
    assert {re.search(r"Kết luận (\d+)-KL/TW", line).group(1) for line in items} == listed  # type: ignore[union-attr]


@pytest.mark.parametrize(
    "message",
    ["Đại hội XIV của Đảng khai mạc vào hôm nào vậy", "đại hội đảng toàn quốc lần 14 khai mạc khi nào"],
)
def test_the_date_of_an_event_the_texts_name_but_do_not_date_is_refused(
    kl_index: SearchIndex, message: str
) -> None:
    # the passages name the Đại hội and give deadlines of other things: none of them is its date
    answerer = ExtractiveAnswerer(kl_index)
    assert not answerer.answer(answerer.analyze(message)).answered


def test_a_task_told_by_two_reports_cites_the_one_that_states_its_deadline(kl_index: SearchIndex) -> None:
    # 179-KL/TW is told by two press reports; only the short one gives "trước ngày 30/7/2025" for this task
    d = next(d for d in kl_index.tasks.directives if d.deadline_text and d.also_in
             and d.deadline_text not in kl_index.passage(d.passage_id).text)  # fmt: skip
    passages = task_passages(kl_index, d)
    assert passages[0].passage_id == d.passage_id  # the action is quoted from there
    assert d.deadline_text in passages[-1].text  # and the deadline from here
    assert task_passage(kl_index, d) == passages[-1]


def test_an_agency_with_few_tasks_has_each_quoted_whole(kl_index: SearchIndex) -> None:
    answerer = ExtractiveAnswerer(kl_index)
    draft = answerer.answer(answerer.analyze("kết luận 179 giao Đảng ủy Chính phủ những việc gì"))
    assert draft.answered
    tasks = [
        d
        for d in kl_index.tasks.directives
        if d.ket_luan == "179-KL/TW" and "Đảng ủy Chính phủ" in d.agencies
    ]
    assert 2 <= len(tasks) <= 4
    for d in tasks:
        if len(d.action.split()) <= 90:
            assert d.action.rstrip(".") in draft.answer


def test_an_agency_compared_across_two_ket_luan_shows_the_tasks_that_name_it(kl_index: SearchIndex) -> None:
    answerer = ExtractiveAnswerer(kl_index)
    draft = answerer.answer(
        answerer.analyze("việc của Ban Tổ chức Trung ương ở kl 183 với kl 221 có gì khác")
    )
    assert draft.answered and draft.kind == "compare"
    # 183 has the others send their reports to it by the 25th of every month
    assert any(
        "25 hằng tháng" in line and "gửi báo cáo về Ban Tổ chức Trung ương" in line
        for line in draft.answer.splitlines()
    )


def test_the_deadline_of_each_of_two_things_asked_in_one_message(kl_index: SearchIndex) -> None:
    answerer = ExtractiveAnswerer(kl_index)
    message = (
        "việc giải quyết hồ sơ thủ tục tồn đọng và việc sắp xếp trạm y tế xã, mỗi việc hạn chót khi nào?"
    )
    draft = answerer.answer(answerer.analyze(message))
    assert draft.answered
    assert "15-10-2025" in draft.answer and "31/12/2025" in draft.answer


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


def test_a_comparison_names_no_report_a_ket_luan_does_not_give(kl_index: SearchIndex) -> None:
    draft = Overview(kl_index, catalogue(kl_index)).compare(["195-KL/TW", "221-KL/TW"])
    side = next(line for line in draft.answer.splitlines() if line.startswith("- Kết luận 195-KL/TW:"))
    assert "Báo cáo" not in side and "—" not in side  # the press report of 195 gives no report number
    assert "căn cứ Báo cáo số 565-BC/BTCTW" in draft.answer


def test_documents_a_ket_luan_cites_asked_with_a_pause_before_the_question_word(
    kl_index: SearchIndex,
) -> None:
    answerer = ExtractiveAnswerer(kl_index)
    draft = answerer.answer(answerer.analyze("kl 183 có dẫn mấy quy định về cán bộ, số hiệu gì"))
    assert draft.answered
    assert "89-QĐ/TW" in draft.answer and "214-QĐ/TW" in draft.answer


def test_comparing_report_deadlines_puts_the_report_tasks_first_monthly_ones_too(
    kl_index: SearchIndex,
) -> None:
    answerer = ExtractiveAnswerer(kl_index)
    draft = answerer.answer(answerer.analyze("hạn gửi báo cáo trong kl 179 và kl 183 khác nhau ra sao"))
    lines = draft.answer.splitlines()
    after_183 = lines[
        next(i for i, line in enumerate(lines) if line.startswith("Các hạn trong Kết luận 183-KL/TW")) + 1
    ]
    assert "25 hằng tháng" in after_183 and "báo cáo" in after_183


def test_the_central_front_is_the_party_committee_that_holds_its_tasks(kl_index: SearchIndex) -> None:
    answerer = ExtractiveAnswerer(kl_index)
    draft = answerer.answer(answerer.analyze("MTTQ trung ương được giao những việc gì trong kl 195"))
    assert draft.answered
    assert draft.answer.startswith("Đảng ủy Mặt trận Tổ quốc, các đoàn thể Trung ương")


def test_a_few_tasks_falling_due_are_quoted_whole(kl_index: SearchIndex) -> None:
    answerer = ExtractiveAnswerer(kl_index)
    today = dt.date(2025, 12, 1)
    draft = answerer.answer(answerer.analyze("việc gì sắp tới hạn", today), None, today)
    assert draft.answered
    assert "trạm y tế cấp xã" in draft.answer  # far into its clause, not cut away


def test_kl_n_giao_x_lam_gi_gets_xs_few_tasks_whatever_else_the_message_says(kl_index: SearchIndex) -> None:
    answerer = ExtractiveAnswerer(kl_index)
    message = "nhà tui ở vùng sâu mạng chập chờn, kết luận 179 giao Bộ Khoa học Công nghệ làm gì vậy?"
    draft = answerer.answer(answerer.analyze(message))
    assert draft.answered and draft.answer.startswith("Bộ Khoa học và Công nghệ được giao 2 nhiệm vụ")


def test_an_agency_named_outside_a_task_question_gets_no_task_list(kl_index: SearchIndex) -> None:
    answerer = ExtractiveAnswerer(kl_index)
    for message in ["Bộ Y tế thu hồi lô thuốc nào vì lý do gì?", "kl 179 phê bình địa phương nào chậm trễ"]:
        draft = answerer.answer(answerer.analyze(message))
        assert "được giao" not in draft.answer.splitlines()[0]


def test_the_report_is_cited_from_the_ket_luans_own_sentence(kl_index: SearchIndex) -> None:
    answerer = ExtractiveAnswerer(kl_index)
    draft = answerer.answer(answerer.analyze("kl 221 được ban hành sau khi nghe báo cáo nào"))
    assert draft.answered
    assert draft.sources[0].kind != "metadata" and "565-BC/BTCTW" in draft.sources[0].text


@pytest.mark.parametrize(
    ("message", "number"),
    [
        ("kết luận ra hồi cuối tháng 11 yêu cầu những gì", "221-KL/TW"),
        ("kl tháng 9 năm 2025 giao bộ tư pháp việc gì", "195-KL/TW"),
    ],
)
def test_a_ket_luan_named_by_the_month_it_came_out(kl_index: SearchIndex, message: str, number: str) -> None:
    answerer = ExtractiveAnswerer(kl_index)
    question = answerer.analyze(message)
    assert question.ket_luan == (number,) and question.window is None
