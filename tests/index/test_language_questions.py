"""The written form of typed questions: abbreviations, spoken words, fillers, date windows, cues."""

from __future__ import annotations

import datetime as dt

import pytest

from index.language.questions import cues, normalize_question, quantity, window


@pytest.mark.parametrize(
    ("typed", "written"),
    [
        ("kl 200 yc j vs cq", "kết luận 200 yêu cầu gì với cơ quan"),
        ("KL200 ko dc gì", "kết luận 200 không được gì"),
        ("đc hông", "được không"),
        ("dc hong", "được hong"),  # "hong" without diacritics is a word of its own ("hồng")
        ("ubnd xã nộp bc chừng nào", "Ủy ban nhân dân xã nộp báo cáo khi nào"),
        ("hs tthc của tui", "hồ sơ thủ tục hành chính của tôi"),
        ("ủa anh ơi, t/g nộp là bữa nào ạ", "thời gian nộp là khi nào"),
        ("chung nao xong", "khi nào xong"),
        ("tháng sau có gì", "tháng sau có gì"),  # next month, not "tháng sáu"
        ("tháng sáu có gì", "tháng 6 có gì"),
        ("thang sau co gi", "thang sau co gì"),
        ("Số 221-KL/TW ngày 31/12/2025", "Số 221-KL/TW ngày 31/12/2025"),
        ("ha noi nha nuoc", "ha noi nha nuoc"),  # bare syllables are never taken for fillers
        ("ạ", "ạ"),
    ],
)
def test_written_form(typed: str, written: str) -> None:
    assert normalize_question(typed).text == written


def test_everyday_words_keep_the_users_words_and_add_the_documents() -> None:
    norm = normalize_question("giấy tờ của trường học")
    assert norm.text == "giấy tờ của trường học"
    assert set(norm.added) == {"hồ sơ, văn bản", "cơ sở giáo dục"}
    assert norm.kept == ("giấy tờ", "trường học")
    assert "hồ sơ" in norm.search_text


@pytest.mark.parametrize(
    ("typed", "added"),
    [
        ("trên dặn làm gì", ("yêu cầu",)),  # "dặn" as typed
        ("tren dan lam gi", ("yêu cầu",)),  # typed without diacritics: it may be "dặn"
        ("đang chờ hướng dẫn", ()),  # "dẫn" typed with its diacritics is not "dặn"
    ],
)
def test_a_word_typed_with_diacritics_matches_only_itself(typed: str, added: tuple[str, ...]) -> None:
    assert normalize_question(typed).added == added


@pytest.mark.parametrize(
    ("typed", "read"),
    [
        ("cô là hiệu trưởng, đang công tác ở xã miền núi, trường cô bao giờ phải sắp xếp?",
         "trường cô bao giờ phải sắp xếp?"),
        ("tôi ở huyện cũ, muốn hỏi hạn chót nộp báo cáo", "hạn chót nộp báo cáo"),
        ("em là ai vậy", "em là ai vậy"),  # a question, no introduction
        ("Phóng viên hỏi: kl 300 có mấy nhiệm vụ", "kết luận 300 có mấy nhiệm vụ"),  # a speaker's tag
        ("Bộ Nội vụ là cơ quan nào, phải làm gì", "Bộ Nội vụ là cơ quan nào, phải làm gì"),  # no speaker
    ],
)  # fmt: skip
def test_who_asks_is_set_aside_from_what_is_asked(typed: str, read: str) -> None:
    assert normalize_question(typed).text == read


@pytest.mark.parametrize(
    ("typed", "written"),
    [("kl 300 giao chuyện chi rứa", "kết luận 300 giao việc gì vậy"), ("hạn lúc mô", "hạn lúc nào")],
)
def test_central_words(typed: str, written: str) -> None:
    assert normalize_question(typed).text == written


def test_misused_words_are_replaced() -> None:
    assert normalize_question("khi nào sáp nhập xong").text == "khi nào sắp xếp xong"


TODAY = dt.date(2025, 10, 15)


@pytest.mark.parametrize(
    ("folded", "expected"),
    [
        ("viec phai xong trong thang 11/2025", (dt.date(2025, 11, 1), dt.date(2025, 11, 30))),
        ("han truoc ngay 30/9/2025", (None, dt.date(2025, 9, 30))),
        ("tu ngay 1/9/2025 den ngay 15/9/2025", (dt.date(2025, 9, 1), dt.date(2025, 9, 15))),
        ("trong quy iii/2025", (dt.date(2025, 7, 1), dt.date(2025, 9, 30))),
        ("trong quy 4 nam 2026", (dt.date(2026, 10, 1), dt.date(2026, 12, 31))),
        ("nam 2026 co gi", (dt.date(2026, 1, 1), dt.date(2026, 12, 31))),
        ("thang nay", (dt.date(2025, 10, 1), dt.date(2025, 10, 31))),
        ("thang toi", (dt.date(2025, 11, 1), dt.date(2025, 11, 30))),
        ("tuan sau", (dt.date(2025, 10, 20), dt.date(2025, 10, 26))),
        ("thang 2", (dt.date(2025, 2, 1), dt.date(2025, 2, 28))),
        ("thang muoi nam 2025 co viec gi", (dt.date(2025, 10, 1), dt.date(2025, 10, 31))),  # months as words
        ("han trong thang chap", (dt.date(2025, 12, 1), dt.date(2025, 12, 31))),
        ("thang muoi mot/2026", (dt.date(2026, 11, 1), dt.date(2026, 11, 30))),
        ("thang sau nam 2026", (dt.date(2026, 6, 1), dt.date(2026, 6, 30))),  # "tháng Sáu" before a year
        ("viec thang sau", (dt.date(2025, 11, 1), dt.date(2025, 11, 30))),  # otherwise "next month"
        ("thang hai nam nay", (dt.date(2025, 2, 1), dt.date(2025, 2, 28))),
        ("tu gio toi cuoi nam 2025", (TODAY, dt.date(2025, 12, 31))),
        (
            "tu nay den het nam 2024",
            (None, dt.date(2024, 12, 31)),
        ),  # a past year: its tasks, not an empty span
        ("vai tuan toi co viec gi", None),  # a stretch from today: an upcoming question, not next week
        ("3 thang toi", None),
        ("ai ky van ban", None),
        ("ngay 31/2/2025", None),  # no such day
    ],
)
def test_date_windows(folded: str, expected: tuple[dt.date | None, dt.date | None] | None) -> None:
    found = window(folded, TODAY)
    if expected is None:
        assert found is None or found == (None, None)
    else:
        assert found == expected


@pytest.mark.parametrize(
    ("folded", "present", "absent"),
    [
        ("kl 200 va kl 201 khac gi nhau", {"compare"}, {"summary"}),
        ("nhung viec da tre han", {"overdue", "window_ask"}, {"upcoming"}),
        ("co viec nao sap het han khong", {"upcoming"}, {"overdue"}),
        ("xin chao", {"greeting"}, {"tasks"}),
        ("nguoi ky van ban la ai", {"signer"}, {"date"}),
    ],
)
def test_cues(folded: str, present: set[str], absent: set[str]) -> None:
    found = cues(folded)
    assert present <= found
    assert not (absent & found)


@pytest.mark.parametrize(
    "folded", ["ho so ton dong con trong han khong", "viec do het han chua", "con kip khong", "tre roi ha"]
)
def test_asking_whether_a_deadline_has_passed_is_a_deadline_question(folded: str) -> None:
    assert "deadline" in cues(folded)


@pytest.mark.parametrize(
    ("folded", "counted"),
    [
        ("tong kinh phi sap xep bo may nam 2025 la bao nhieu", "dong"),  # "bộ máy năm 2025" counts no years
        ("mat bao nhieu nam", "nam"),
        ("hop bao lau mot lan", "thoi gian"),
        ("hop voi tan suat nao", "thoi gian"),
        ("may thang nua thi xong", None),
        ("ai ky", None),
    ],
)
def test_what_a_quantity_question_counts(folded: str, counted: str | None) -> None:
    assert quantity(folded) == counted


@pytest.mark.parametrize(
    ("folded", "counted"),
    [
        ("xa toi gui kien nghi len may lan roi, khi nao phai giai quyet xong", None),  # told in passing
        ("da may nam roi", "nam"),  # asked
    ],
)
def test_a_count_told_in_passing_is_not_asked(folded: str, counted: str | None) -> None:
    assert quantity(folded) == counted
