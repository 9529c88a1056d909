"""bot/citations.py against the contract of API.md: markers, renumbering, verbatim offsets, the citation gate,
the support check of generated sentences and the answer builder — over a made-up Kết luận (tests/handmade)."""

from __future__ import annotations

import datetime as dt
import logging

import pytest

from bot.citations import (
    CitedAnswerBuilder,
    check_markers,
    claim_terms,
    expand_groups,
    gate,
    markers,
    next_boundary,
    renumber,
    sentences,
    support_problems,
    supported,
    verbatim,
)
from bot.models import Citation
from index.models import Source
from tests.contract import contract_problems
from tests.handmade import FILE, LINES, citation, passage, read_source

P = [passage(i) for i in range(len(LINES))]


# --- marker groups and renumbering ----------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "expanded"),
    [
        ("a [1, 2].", "a [1][2]."),
        ("a [1,2] b [3 ; 4]", "a [1][2] b [3][4]"),
        ("a [1-3].", "a [1][2][3]."),
        ("a [2–4].", "a [2][3][4]."),
        ("a [3-1].", "a [3][1]."),  # not a range upwards: the two markers as written
        ("a [1-12].", "a [1][12]."),  # a range over 10 wide is two markers, not twelve
        ("a [1-11].", "a [1][2][3][4][5][6][7][8][9][10][11]."),
        ("a [1-1].", "a [1][1]."),
        ("a [1, 2-3].", "a [1][2][3]."),
        ("a [1].", "a [1]."),
        ("năm 2025 [12]", "năm 2025 [12]"),
    ],
)
def test_marker_groups_become_single_markers(text: str, expanded: str) -> None:
    assert expand_groups(text) == expanded


def test_markers_lists_every_marker_in_order() -> None:
    assert markers("a [2] b [10][2] c [x] [1000]") == [2, 10, 2]


@pytest.mark.parametrize(
    ("answer", "sources", "text", "cited"),
    [
        # renumbered by first use, 1-based
        ("A [2]. B [1].", [1, 2], "A [1]. B [2].", [2, 1]),
        # unknown markers dropped, never shown; space before punctuation closed
        ("A [1] [7]. B [0].", [1], "A [1]. B.", [1]),
        # groups and ranges
        ("A [1, 3]. B [2-3].", [1, 2, 3], "A [1][2]. B [3][2].", [1, 3, 2]),
        # the same passage listed twice gets one number, repeats collapse
        ("A [1][2]. B [2].", [4, 4], "A [1]. B [1].", [4]),
        ("A [1][1][1].", [1], "A [1].", [1]),
        ("Không có.", [1, 2], "Không có.", []),
        ("  A  [1]  b .  ", [3], "A [1] b.", [3]),
    ],
)
def test_renumber_keeps_the_contract(answer: str, sources: list[int], text: str, cited: list[int]) -> None:
    got, citations = renumber(answer, [P[i] for i in sources])
    assert got == text
    assert [c.passage_id for c in citations] == [P[i].passage_id for i in cited]
    assert [c.n for c in citations] == list(range(1, len(cited) + 1))
    assert contract_problems(got, citations, read_source) == []
    assert all(c.text == P[i].text and c.source == P[i].source for c, i in zip(citations, cited, strict=True))


def test_renumber_logs_the_dropped_markers(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="bot.citations"):
        renumber("A [1] [5] [3] [5].", [P[1]])
    assert caplog.messages == ["dropped citation markers with no source: [3, 5] (sources: 1)"]
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="bot.citations"):
        renumber("A [1].", [P[1]])
    assert caplog.text == ""


@pytest.mark.parametrize(
    ("answer", "ns", "ok"),
    [
        ("A [1]. B [2].", [1, 2], True),
        ("A [1].", [1, 2], False),  # a citation never used
        ("A [1]. B [2].", [1], False),  # a marker with no citation
        ("A [1].", [1, 1], False),  # two citations with one number
        ("Không.", [], True),
    ],
)
def test_check_markers(answer: str, ns: list[int], ok: bool) -> None:
    assert check_markers(answer, [citation(1, n) for n in ns]) is ok


# --- verbatim offsets -----------------------------------------------------------------------------
def test_a_citation_at_its_offsets_is_verbatim() -> None:
    assert all(verbatim(p, read_source) for p in P)


@pytest.mark.parametrize("shift", [(1, 1), (-1, -1), (0, -1), (0, 1)])
def test_shifted_offsets_are_not_verbatim(shift: tuple[int, int]) -> None:
    p = P[2]
    moved = Source(file=FILE, start=p.source.start + shift[0], end=p.source.end + shift[1])
    assert not verbatim(p.model_copy(update={"source": moved}), read_source)


def test_changed_text_unknown_file_and_unreadable_source_are_not_verbatim() -> None:
    p = P[2]
    assert not verbatim(p.model_copy(update={"text": p.text.replace("15/9", "16/9")}), read_source)
    assert not verbatim(
        p.model_copy(update={"source": Source(file="other.txt", start=0, end=3)}), read_source
    )

    def broken(file: str) -> str:
        raise OSError("disk gone")

    assert not verbatim(p, broken)


# --- the gate -------------------------------------------------------------------------------------
def test_gate_passes_a_well_formed_answer() -> None:
    assert gate("A [1]. B [2] [1].", [citation(1, 1), citation(2, 2)], read_source) == []
    assert gate("Xin lỗi.", [], read_source, answered=False) == []


def _bad(c: Citation, **update: object) -> Citation:
    return c.model_copy(update=update)


@pytest.mark.parametrize(
    ("answer", "citations", "problem"),
    [
        ("A [1]. B [2].", [citation(1, 1)], "[2] has no citation"),
        ("A [1].", [citation(1, 1), citation(2, 2)], "citation 2 is not used"),
        ("A [2].", [citation(1, 2)], "not numbered 1..1"),
        ("A [1] [3].", [citation(1, 1), citation(2, 3)], "not numbered 1..2"),
        ("A [1].", [citation(1, 1), citation(2, 1)], "not numbered 1..2"),
        ("A [1].", [_bad(citation(1, 1), text=LINES[1] + " ")], "citation 1 (kl901.p1) is not verbatim"),
        ("A.", [], "an answer with no citation"),
        ("A [1].", [citation(1, 1).model_copy(update={"n": 0})], "not numbered 1..1: [0]"),
    ],
)
def test_gate_names_what_breaks_the_contract(answer: str, citations: list[Citation], problem: str) -> None:
    problems = gate(answer, citations, read_source)
    assert any(problem in p for p in problems), problems
    unanswered = [p for p in problems if p != "an answer with no citation"]
    if citations:
        unanswered.append("a reply that answers nothing has citations")
    assert gate(answer, citations, read_source, answered=False) == unanswered


def test_gate_refuses_citations_on_a_reply_that_answers_nothing() -> None:
    # API.md: `answered` false → `citations` is empty, even when the citations themselves are sound
    assert gate("A [1].", [citation(1, 1)], read_source) == []
    assert gate("A [1].", [citation(1, 1)], read_source, answered=False) == [
        "a reply that answers nothing has citations"
    ]


def test_gate_lists_each_problem_once() -> None:
    c2 = _bad(citation(2, 2), source=Source(file=FILE, start=0, end=5))
    assert gate("A [1] [3].", [citation(1, 1), c2], read_source) == [
        "[3] has no citation",
        "citation 2 is not used",
        "citation 2 (kl901.p2) is not verbatim at its offsets",
    ]
    assert gate("A [2].", [], read_source) == ["[2] has no citation", "an answer with no citation"]
    assert gate("A [2].", [citation(1, 2)], read_source) == ["citations are not numbered 1..1: [2]"]


# --- sentences --------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "parts"),
    [
        ("Một [1]. Hai [2].", ["Một [1].", "Hai [2]."]),
        ("Một [1].  Hai.", ["Một [1].", "Hai."]),
        ("Một. [1] Hai.", ["Một. [1]", "Hai."]),  # markers after the stop belong to the sentence
        ("Một [1]!\nHai?", ["Một [1]!", "Hai?"]),
        ("Dòng một\n\n\nDòng hai", ["Dòng một", "Dòng hai"]),
        ("Văn bản nêu: “Việc A. Việc B.” [1]. Tiếp.", ["Văn bản nêu: “Việc A. Việc B.” [1].", "Tiếp."]),
        ("1. Việc một [1]\n2. Việc hai [2]", ["1. Việc một [1]", "2. Việc hai [2]"]),
        ("a. Việc một\nđ. Việc hai", ["a. Việc một", "đ. Việc hai"]),
        ("Hạn 30.6.2026 [1]. Tiếp", ["Hạn 30.6.2026 [1].", "Tiếp"]),
        ("Hết.", ["Hết."]),
        ("  ", []),
        ("Một [1] [2].\tHai", ["Một [1] [2].", "Hai"]),
        ("“Lồng “trong”. Còn.” Hết. Sau", ["“Lồng “trong”. Còn.” Hết.", "Sau"]),
        ("Đóng” thừa. Sau", ["Đóng” thừa.", "Sau"]),
        ("Phụ lục X có hai mục [1].", ["Phụ lục X có hai mục [1]."]),
        ("Mục A.X đã xong. Sau", ["Mục A.X đã xong.", "Sau"]),
        ("Một. Xong.", ["Một.", "Xong."]),
        ("Một.[1] Hai.", ["Một.[1]", "Hai."]),
        ("Một\nHai\n1. Việc một [1]", ["Một", "Hai", "1. Việc một [1]"]),
    ],
)
def test_sentences_split_on_stops_and_lines_not_inside_quotes(text: str, parts: list[str]) -> None:
    assert sentences(text) == parts


def test_next_boundary_gives_the_end_and_the_next_start() -> None:
    assert next_boundary("Một [1].  Hai") == (8, 10)
    assert next_boundary("Một\n\nHai") == (3, 5)
    assert next_boundary("Một [1].") is None  # nothing after it yet: more markers may follow
    assert next_boundary("A. B. C", 2) == (5, 6)
    assert next_boundary("x? y") == (2, 3)


# --- claim terms ----------------------------------------------------------------------------------
def test_claim_terms_drop_function_words_markers_numbers_and_single_letters() -> None:
    assert claim_terms("Bộ Tài chính là cơ quan chủ trì [1] năm 2026, y tế.") == ["quan", "chu", "te"]


# --- the support check ------------------------------------------------------------------------------
SUPPORTED = [
    (1, "Bộ Tài chính chủ trì hoàn thiện quy chế quản lý quỹ đất công trước ngày 30/6/2026 [1]."),
    (1, "Quy chế quản lý quỹ đất công phải hoàn thành trước ngày 30 tháng 6 năm 2026 [1]."),
    (1, "Hạn hoàn thiện quy chế quản lý quỹ đất công là 30-06-2026 [1]."),
    (1, "Hạn hoàn thiện quy chế quản lý quỹ đất công là ngày 30/6 [1]."),  # the year from the passage
    (1, "Bộ Nội vụ phối hợp hoàn thiện quy chế quản lý quỹ đất công [1]."),
    (2, "Các tỉnh ủy, thành ủy phối hợp với Bộ Y tế rà soát mạng lưới bệnh viện tuyến huyện [1]."),
    (2, "Tỉnh ủy rà soát mạng lưới bệnh viện tuyến huyện trong tháng 9/2026 [1]."),
    (3, "Không cần lập ban chỉ đạo mới [1]."),
    (3, "Đảng ủy Chính phủ gửi báo cáo kết quả chậm nhất ngày 20 hằng tháng [1]."),
    (4, "Kết luận 901-KL/TW thay thế Kết luận số 850-KL/TW [1]."),
    (4, "Tổng số 120 đơn vị phải hoàn thành trong năm 2026 [1]."),
    (0, "Bộ Chính trị ban hành Kết luận về quản lý quỹ đất công ngày 5/3/2026 [1]."),
    (5, "Ban Bí thư yêu cầu hỗ trợ 902 hộ dân tái định cư ven biển [1]."),
    (2, "Phối hợp với Bộ Y tế, các tỉnh ủy rà soát mạng lưới bệnh viện tuyến huyện [1]."),
    (
        6,
        "Bộ Tài chính chủ trì bố trí kinh phí mua thuốc [1].",
    ),  # a partner in one clause, the lead in the next
    (6, "Bộ Tài chính phối hợp rà soát danh mục thuốc [1]."),
    (1, "Quy chế quản lý quỹ đất công hoàn thành trước ngày 30/6/2026, giao từ ngày 5/3/2026 [1]."),
    # a fact alone, with no content word
    (1, "Trước ngày 30/6/2026 [1]."),
    (4, "Là 120 [1]."),
    (1, "Bộ Tài chính [1]."),
    # a year against a passage that also writes a day no calendar holds ("ngày 20 hằng tháng")
    (3, "Đảng ủy Chính phủ gửi báo cáo kết quả trong năm 2026 [1]."),
    # "Ban hành" (to issue) is a verb, not an agency the passage must name
    (1, "Ban hành quy chế quản lý quỹ đất công trước ngày 30/6/2026 [1]."),
    # three content words of five in the passage is enough
    (1, "Quản lý quỹ sân bay [1]."),
]


@pytest.mark.parametrize(("i", "sentence"), SUPPORTED)
def test_a_sentence_the_passage_says_is_supported(i: int, sentence: str) -> None:
    assert support_problems(sentence, [P[i]]) == []
    assert supported(sentence, [P[i]])


UNSUPPORTED = [
    # an agency the passage does not name, known or not
    (1, "Bộ Tư pháp chủ trì hoàn thiện quy chế quản lý quỹ đất công [1].", "agency 'Bộ Tư pháp'"),
    (1, "Bộ Quốc phòng chủ trì hoàn thiện quy chế quản lý quỹ đất công [1].", "agency 'Bộ Quốc phòng'"),
    (1, "Ủy ban Dân tộc hoàn thiện quy chế quản lý quỹ đất công [1].", "agency 'Ủy ban Dân tộc'"),
    # the issuer named first does not excuse the agency named after it
    (1, "Bộ Chính trị giao Bộ Tư pháp hoàn thiện quy chế quản lý quỹ đất công [1].", "agency 'Bộ Tư pháp'"),
    # the passage's task given to the agency that only works with others
    (
        2,
        "Bộ Y tế chủ trì rà soát mạng lưới bệnh viện tuyến huyện [1].",
        "agency 'Bộ Y tế' only works with others",
    ),
    (
        1,
        "Bộ Nội vụ chủ trì hoàn thiện quy chế quản lý quỹ đất công [1].",
        "agency 'Bộ Nội vụ' only works with",
    ),
    # the lead claimed once is a claim, even when the sentence also names the agency as a partner
    (
        2,
        "Bộ Y tế chủ trì rà soát mạng lưới bệnh viện tuyến huyện, các tỉnh ủy phối hợp Bộ Y tế [1].",
        "agency 'Bộ Y tế' only works with others",
    ),
    # negation the passage does not have
    (1, "Không cần hoàn thiện quy chế quản lý quỹ đất công [1].", "negation 'không cần'"),
    (1, "Bộ Tài chính không phải hoàn thiện quy chế quản lý quỹ đất công [1].", "negation 'không phải'"),
    (2, "Việc rà soát mạng lưới bệnh viện tuyến huyện chưa cần làm [1].", "negation 'chưa cần'"),
    (3, "Đảng ủy Chính phủ không gửi báo cáo kết quả [1].", "negation 'không gửi'"),
    (2, "Các tỉnh ủy chẳng rà soát mạng lưới bệnh viện [1].", "negation 'chẳng rà'"),
    # dates, compared as dates
    (1, "Quy chế quản lý quỹ đất công phải xong trước ngày 30/7/2026 [1].", "date 'ngày 30/7/2026'"),
    (1, "Quy chế quản lý quỹ đất công phải xong trước ngày 30/6/2027 [1].", "date 'ngày 30/6/2027'"),
    (
        1,
        "Quy chế quản lý quỹ đất công phải xong trước ngày 29 tháng 6 năm 2026 [1].",
        "date 'ngày 29 tháng 6",
    ),
    (
        1,
        "Quy chế quản lý quỹ đất công phải xong trước ngày 6/30/2026 [1].",
        "'6/30/2026' is not a calendar date",
    ),
    (2, "Rà soát mạng lưới bệnh viện tuyến huyện trong tháng 10/2026 [1].", "date 'tháng 10/2026'"),
    (4, "Tổng số 120 đơn vị phải hoàn thành trong năm 2027 [1].", "date 'năm 2027'"),
    # numbers and Kết luận numbers
    (4, "Tổng số 150 đơn vị phải hoàn thành trong tháng 11/2026 [1].", "number 150"),
    (5, "Kết luận 902 yêu cầu hỗ trợ hộ dân tái định cư tại khu vực ven biển [1].", "Kết luận 902"),
    (5, "Theo 902-KL/TW, hỗ trợ hộ dân tái định cư tại khu vực ven biển [1].", "Kết luận 902"),
    (5, "KL902 yêu cầu hỗ trợ hộ dân tái định cư tại khu vực ven biển [1].", "Kết luận 902"),
    # no fact, a question, words the passage does not have
    (1, "Đó là những việc này [1].", "states no fact"),
    (1, "[1]", "states no fact"),
    (1, "Khi nào phải hoàn thiện quy chế quản lý quỹ đất công? [1]", "asks a question"),
    (1, "Bộ Tài chính xây dựng sân bay quốc tế mới [1].", "only 0 of 6 content words are in the passage"),
    (1, "Quản lý sân bay biển [1].", "only 2 of 5 content words are in the passage"),
]


@pytest.mark.parametrize(("i", "sentence", "problem"), UNSUPPORTED)
def test_a_sentence_the_passage_does_not_say_is_rejected(i: int, sentence: str, problem: str) -> None:
    problems = support_problems(sentence, [P[i]])
    assert any(p.startswith(problem) for p in problems), problems
    assert not supported(sentence, [P[i]])


RESTATED = [
    # (question, sentence, restates?)
    ("Bộ Tài chính phải hoàn thiện quy chế gì?", "Bộ Tài chính phải hoàn thiện quy chế [1].", True),
    ("Bộ Tài chính phải hoàn thiện quy chế gì?", "Bộ Tài chính hoàn thiện quy chế quản lý quỹ đất công [1].", False),
    ("Việc gì phải hoàn thành trước ngày 30/6/2026?", "Việc phải hoàn thành trước ngày 30/6/2026 [1].", True),
    ("Khi nào phải hoàn thiện quy chế quản lý quỹ đất công?", "Hoàn thiện quy chế quản lý quỹ đất công trước ngày 30/6/2026 [1].", False),
    ("Ai hoàn thiện quy chế quản lý quỹ đất công?", "Bộ Tài chính hoàn thiện quy chế quản lý quỹ đất công [1].", False),
    ("Bộ Tài chính hoàn thiện quy chế quản lý quỹ đất công không?", "Bộ Tài chính hoàn thiện quy chế quản lý quỹ đất công [1].", True),
    ("Tổng số đơn vị phải hoàn thành là bao nhiêu?", "Tổng số 120 đơn vị phải hoàn thành [1].", False),
    # the question's day without its year is the passage's year
    ("Việc gì phải hoàn thành trước ngày 30/6?", "Việc phải hoàn thành trước ngày 30/6/2026 [1].", True),
    ("Việc gì phải hoàn thành trước ngày 29/6?", "Việc phải hoàn thành trước ngày 30/6/2026 [1].", False),
    ("Có phải tổng số 120 đơn vị phải hoàn thành?", "Tổng số 120 đơn vị phải hoàn thành [1].", True),
]  # fmt: skip


@pytest.mark.parametrize(("question", "sentence", "restates"), RESTATED)
def test_a_restated_question_is_not_support(question: str, sentence: str, restates: bool) -> None:
    i = 4 if "120" in sentence else 1
    assert support_problems(sentence, [P[i]]) == []  # without the question it stands
    assert ("restates the question" in support_problems(sentence, [P[i]], question)) is restates


def test_support_comes_from_any_cited_passage_and_not_from_others() -> None:
    sentence = "Bộ Tài chính hoàn thiện quy chế quản lý quỹ đất công, các tỉnh ủy rà soát bệnh viện tuyến huyện [1][2]."
    assert supported(sentence, [P[1], P[2]])
    assert not supported(sentence, [P[2]])
    assert supported("Quỹ đất công được quản lý theo quy chế ngày 5/3/2026 [1].", [P[1]])  # the issued date
    undated = passage(1, issued=None)
    assert not supported("Quỹ đất công được quản lý theo quy chế ngày 5/3/2026 [1].", [undated])
    other = passage(5, ket_luan=None)
    assert "Kết luận 901 is not the passage's" in support_problems(
        "Kết luận 901 yêu cầu hỗ trợ hộ dân tái định cư tại khu vực ven biển [1].", [other]
    )


def test_an_agency_leads_when_a_cited_passage_gives_it_the_lead_anywhere() -> None:
    # the lead in one clause stands, whatever the agency does in a later one
    led_first = passage(6).model_copy(
        update={
            "text": "6. Bộ Tài chính chủ trì rà soát danh mục thuốc; Bộ Y tế chủ trì, phối hợp với Bộ Tài chính "
            "bố trí kinh phí mua thuốc."
        }
    )
    assert supported("Bộ Tài chính chủ trì rà soát danh mục thuốc [1].", [led_first])
    # mục 6 gives Bộ Y tế the lead, mục 2 names it only as a partner: cited together, in either order
    sentence = "Bộ Y tế chủ trì rà soát danh mục thuốc [1][2]."
    assert support_problems(sentence, [P[6], P[2]]) == []
    assert support_problems(sentence, [P[2], P[6]]) == []
    assert "agency 'Bộ Y tế' only works with others (phối hợp) in the passage" in support_problems(
        "Bộ Y tế chủ trì rà soát danh mục thuốc [1].", [P[2]]
    )


def test_an_agency_the_word_lists_do_not_know_stands_when_the_passage_names_it_whole() -> None:
    named = passage(5).model_copy(
        update={"text": "5. Ủy ban Dân tộc hỗ trợ 902 hộ dân tái định cư tại khu vực ven biển."}
    )
    assert support_problems("Ủy ban Dân tộc hỗ trợ 902 hộ dân tái định cư ven biển [1].", [named]) == []
    # mục 5 says "hộ dân", not "Ủy ban Dân tộc"
    assert "agency 'Ủy ban Dân tộc' is not in the passage" in support_problems(
        "Ủy ban Dân tộc hỗ trợ 902 hộ dân tái định cư ven biển [1].", [P[5]]
    )


def test_dates_the_passage_writes_without_a_day_or_a_year() -> None:
    yearly = passage(4).model_copy(update={"text": "Tổng số 120 đơn vị phải hoàn thành trong năm 2026."})
    assert supported("Tổng số 120 đơn vị phải hoàn thành trong năm 2026 [1].", [yearly])
    assert "date 'tháng 12/2026' is not in the passage" in support_problems(
        "Tổng số 120 đơn vị phải hoàn thành trong tháng 12/2026 [1].", [yearly]
    )
    short = passage(1).model_copy(update={"text": "Quy chế quản lý quỹ đất công hạn ngày 30/6 tới."})
    assert supported("Quy chế quản lý quỹ đất công hạn ngày 30/6/2026 [1].", [short])  # the issue year
    undated = short.model_copy(update={"issued": None})
    assert "date 'ngày 30/6/2026' is not in the passage" in support_problems(
        "Quy chế quản lý quỹ đất công hạn ngày 30/6/2026 [1].", [undated]
    )


@pytest.mark.parametrize(
    ("claim", "evidence", "covered"),
    [
        (("day", dt.date(2026, 10, 7)), ("week", dt.date(2026, 10, 7)), True),
        (("day", dt.date(2026, 10, 7)), ("day", dt.date(2026, 10, 7)), True),
        (("day", dt.date(2026, 10, 31)), ("month", dt.date(2026, 10, 31)), False),
        (("month", dt.date(2026, 10, 31)), ("day", dt.date(2026, 10, 7)), True),
        (("month", dt.date(2026, 10, 31)), ("day", dt.date(2025, 10, 7)), False),
        (("month", dt.date(2026, 12, 31)), ("year", dt.date(2026, 12, 31)), False),
        (("year", dt.date(2026, 12, 31)), ("day", dt.date(2026, 1, 2)), True),
        (("year", dt.date(2026, 12, 31)), ("day", dt.date(2027, 1, 2)), False),
        (("day", dt.date(2026, 10, 7)), ("day", None), False),
        (("day", None), ("day", None), False),
        # a date no calendar holds ("ngày 20 hằng tháng") covers nothing and is covered by nothing
        (("year", dt.date(2026, 12, 31)), ("day", None), False),
        (("month", dt.date(2026, 12, 31)), ("day", None), False),
        (("year", None), ("day", dt.date(2026, 1, 2)), False),
        (("month", None), ("day", dt.date(2026, 1, 2)), False),
    ],
)
def test_a_claimed_date_is_covered_by_a_passage_date_within_it(
    claim: tuple[str, dt.date | None], evidence: tuple[str, dt.date | None], covered: bool
) -> None:
    from bot.citations import _covers
    from index.language.dates import DateMention

    claimed = DateMention(0, 0, "", claim[1], claim[0])  # type: ignore[arg-type]
    assert _covers(claimed, evidence[1], evidence[0]) is covered


def test_a_date_without_year_in_a_sentence_takes_the_passage_year() -> None:
    assert supported("Rà soát mạng lưới bệnh viện tuyến huyện xong trước ngày 15/9 [1].", [P[2]])
    late = passage(2, issued=dt.date(2027, 1, 1))
    # the passage writes 15/9/2026; the sentence's 15/9 read in the passage's year 2027 is another day
    assert not supported("Rà soát mạng lưới bệnh viện tuyến huyện xong trước ngày 15/9 [1].", [late])


# --- the builder --------------------------------------------------------------------------------------
def _build(
    text: str, sources: list[int], question: str = "", chunk: int = 0
) -> tuple[str, list[Citation], list[str], CitedAnswerBuilder]:
    builder = CitedAnswerBuilder([P[i] for i in sources], question)
    pieces: list[str] = []
    if chunk:
        for start in range(0, len(text), chunk):
            pieces += builder.feed(text[start : start + chunk])
    else:
        pieces += builder.feed(text)
    pieces += builder.close()
    answer, citations = builder.result()
    return answer, citations, pieces, builder  # fmt: skip


LLM_TEXT = (
    "Bộ Tài chính chủ trì hoàn thiện quy chế quản lý quỹ đất công trước ngày 30/6/2026 [2].\n"
    "- Các tỉnh ủy, thành ủy phối hợp Bộ Y tế rà soát mạng lưới bệnh viện tuyến huyện [3, 2]. "
    "Bộ Quốc phòng chủ trì việc này [3]. Câu này không có nguồn. Việc khác [9].\n\n"
    "Không cần lập ban chỉ đạo mới [1-1]."
)


@pytest.mark.parametrize("chunk", [0, 1, 3, 7, 40])
def test_builder_keeps_supported_cited_sentences_the_same_streamed_or_whole(chunk: int) -> None:
    answer, citations, pieces, builder = _build(LLM_TEXT, [3, 1, 2], chunk=chunk)
    assert "".join(pieces) == answer
    assert answer == (
        "Bộ Tài chính chủ trì hoàn thiện quy chế quản lý quỹ đất công trước ngày 30/6/2026 [1].\n"
        "- Các tỉnh ủy, thành ủy phối hợp Bộ Y tế rà soát mạng lưới bệnh viện tuyến huyện [2][1].\n"
        "Không cần lập ban chỉ đạo mới [3]."
    )
    assert [c.passage_id for c in citations] == ["kl901.p1", "kl901.p2", "kl901.p3"]
    assert contract_problems(answer, citations, read_source) == []
    assert builder.dropped_markers == [9]
    assert [s[:14] for s in builder.dropped_sentences] == ["Bộ Quốc phòng ", "Câu này không ", "Việc khác ."]


def test_builder_drops_the_question_echoed_with_a_marker_and_the_no_answer_token() -> None:
    question = "Bộ Tài chính phải hoàn thiện quy chế gì?"
    answer, citations, _, _ = _build(f"{question} [1] KHÔNG_ĐỦ_THÔNG_TIN", [1], question)
    assert (answer, citations) == ("", [])
    answer, citations, _, _ = _build("Bộ Tài chính phải hoàn thiện quy chế [1].", [1], question)
    assert (answer, citations) == ("", [])
    answer, _, _, _ = _build("KHONG_DU_THONG_TIN", [1], question)
    assert answer == ""


def test_builder_spaces_and_line_breaks() -> None:
    text = "Không cần lập ban chỉ đạo mới [1] .  Đảng ủy Chính phủ gửi báo cáo kết quả [1][1].\n\n\nHết [7]."
    answer, citations, pieces, _ = _build(text, [3])
    assert answer == "Không cần lập ban chỉ đạo mới [1]. Đảng ủy Chính phủ gửi báo cáo kết quả [1]."
    assert pieces == ["Không cần lập ban chỉ đạo mới [1].", " Đảng ủy Chính phủ gửi báo cáo kết quả [1]."]
    assert len(citations) == 1
    text = "Không cần lập ban chỉ đạo mới [1].\n\nĐảng ủy Chính phủ gửi báo cáo kết quả [1]."
    assert (
        _build(text, [3])[0]
        == "Không cần lập ban chỉ đạo mới [1].\nĐảng ủy Chính phủ gửi báo cáo kết quả [1]."
    )


def test_builder_logs_dropped_markers_once_at_the_end(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="bot.citations"):
        _build("Không cần lập ban chỉ đạo mới [1][4][4].", [3])
    assert caplog.messages == ["dropped citation markers with no source: [4] (sources: 1)"]


def test_builder_logs_each_dropped_sentence(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="bot.citations"):
        _build("Bộ Quốc phòng lập ban chỉ đạo mới [1]. Câu không nguồn.", [3])
    assert caplog.messages == [
        "dropped an LLM sentence without support: Bộ Quốc phòng lập ban chỉ đạo mới [1].",
        "dropped an LLM sentence without citation: Câu không nguồn.",
    ]


def test_builder_returns_each_piece_as_soon_as_it_is_whole() -> None:
    builder = CitedAnswerBuilder([P[3]])
    assert builder.feed("Không cần lập ban chỉ đạo mới. ") == []  # a marker may still follow
    assert builder.feed("[1] Đảng ủy Chính phủ gửi báo cáo kết quả [1]") == [
        "Không cần lập ban chỉ đạo mới. [1]"
    ]
    assert builder.feed("\n") == [" Đảng ủy Chính phủ gửi báo cáo kết quả [1]"]  # a line end closes it
    assert builder.feed("Đảng ủy Chính phủ gửi  báo cáo kết quả [1]") == []
    assert builder.close() == ["\nĐảng ủy Chính phủ gửi báo cáo kết quả [1]"]
    assert builder.close() == []
    assert builder.dropped_sentences == [] and builder.feed("") == []


def test_builder_keeps_no_blank_line_before_the_first_piece() -> None:
    answer, _, pieces, _ = _build("\n\nKhông cần lập ban chỉ đạo mới [1].\n\nHết [1].", [3])
    assert pieces == ["Không cần lập ban chỉ đạo mới [1]."]
    assert answer == "Không cần lập ban chỉ đạo mới [1]."
