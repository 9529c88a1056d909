"""Dates and deadlines in the fixed forms of the Kết luận: precision, recurrence, year from the document."""

from __future__ import annotations

import datetime as dt

import pytest

from index.language.dates import find_dates, find_deadlines

D = dt.date


@pytest.mark.parametrize(
    ("text", "default_year", "expected"),
    [
        ("ngày 31 tháng 8 năm 2025", None, [("ngày 31 tháng 8 năm 2025", D(2025, 8, 31), "day", None)]),
        ("15-10-2025", None, [("15-10-2025", D(2025, 10, 15), "day", None)]),
        ("ngày 04/7/2025 của", None, [("ngày 04/7/2025", D(2025, 7, 4), "day", None)]),
        ("Ngày 26-9, Ủy viên", 2025, [("Ngày 26-9", D(2025, 9, 26), "day", None)]),
        ("Ngày 26-9, Ủy viên", None, [("Ngày 26-9", None, "day", None)]),
        ("trong tháng 10/2025", None, [("tháng 10/2025", D(2025, 10, 31), "month", None)]),
        ("vào tháng 11-2025", None, [("tháng 11-2025", D(2025, 11, 30), "month", None)]),
        ("tuần đầu tháng 10-2025", None, [("tuần đầu tháng 10-2025", D(2025, 10, 7), "week", None)]),
        ("tuần cuối tháng 2/2026", None, [("tuần cuối tháng 2/2026", D(2026, 2, 28), "week", None)]),
        ("quý IV/2025", None, [("quý IV/2025", D(2025, 12, 31), "month", None)]),
        ("trong năm 2025", None, [("năm 2025", D(2025, 12, 31), "year", None)]),
        ("6 tháng đầu năm 2026", None, [("6 tháng đầu năm 2026", D(2026, 6, 30), "month", None)]),
        ("ngày 25 hằng tháng", None, [("ngày 25 hằng tháng", None, "day", "monthly")]),
        ("ngày 25 hàng tháng", None, [("ngày 25 hàng tháng", None, "day", "monthly")]),
        ("nhiệm kỳ 2025-2030", None, []),
        ("30 ngày làm việc", None, []),
        ("ngày 31/2/2025", None, [("ngày 31/2/2025", None, "day", None)]),
    ],
)
def test_find_dates(text: str, default_year: int | None, expected: list[tuple[object, ...]]) -> None:
    found = find_dates(text, default_year)
    assert [(m.text, m.date, m.precision, m.recurring) for m in found] == expected
    assert all(text[m.start : m.end] == m.text for m in found)


@pytest.mark.parametrize(
    ("text", "first", "last"),
    [
        ("từ ngày 1/7 đến ngày 31/7/2025", D(2025, 7, 1), D(2025, 7, 31)),
        ("từ ngày 1-31/7/2025", D(2025, 7, 1), D(2025, 7, 31)),
        ("từ ngày 18 đến 24/7/2025", D(2025, 7, 18), D(2025, 7, 24)),
        ("từ ngày 15-10-2025 đến ngày 20-10-2025", D(2025, 10, 15), D(2025, 10, 20)),
    ],
)
def test_ranges(text: str, first: dt.date, last: dt.date) -> None:
    (mention,) = find_dates(text, 2025)
    assert (mention.first, mention.date) == (first, last)


ISSUED = D(2025, 9, 26)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("(hoàn thành trước ngày 31/8/2025).", [("trước ngày 31/8/2025", D(2025, 8, 31), "day", None)]),
        ("gửi báo cáo chậm nhất trước ngày 25 hằng tháng.",
         [("chậm nhất trước ngày 25 hằng tháng", None, "day", "monthly")]),
        ("hoàn thành trong năm 2025.", [("trong năm 2025", D(2025, 12, 31), "year", None)]),
        ("quyết định trong tuần đầu tháng 10-2025:", [("trong tuần đầu tháng 10-2025", D(2025, 10, 7), "week", None)]),
        ("hồ sơ tồn đọng trước ngày 15-10-2025;", [("trước ngày 15-10-2025", D(2025, 10, 15), "day", None)]),
        # a day without a year: the issue year, or the next when that is already past
        ("hoàn thành trước ngày 30-10.", [("trước ngày 30-10", D(2025, 10, 30), "day", None)]),
        ("hoàn thành trước ngày 30-6.", [("trước ngày 30-6", D(2026, 6, 30), "day", None)]),
        ("hoàn thành dứt điểm trong quý IV/2025", [("trong quý IV/2025", D(2025, 12, 31), "month", None)]),
        # dates that are not deadlines: a meeting, a document's date, a period
        ("Tại phiên họp ngày 28/11/2025, sau khi nghe", []),
        ("Kế hoạch số 56-KH/BCĐ, ngày 4/7/2025 của Ban Chỉ đạo", []),
        ("kết quả từ ngày 1/7 đến ngày 31/7/2025", []),
    ],
)  # fmt: skip
def test_find_deadlines(text: str, expected: list[tuple[object, ...]]) -> None:
    found = find_deadlines(text, ISSUED)
    assert [(d.text, d.date, d.precision, d.recurring) for d in found] == expected
    assert all(text[d.start : d.end] == d.text for d in found)


@pytest.mark.parametrize(
    ("text", "phrase"),
    [("(hoàn thành trước ngày 31/8/2025)", "hoàn thành trước ngày 31/8/2025"),
     ("phải hoàn thành dứt điểm trước ngày 31/12/2025.", "phải hoàn thành dứt điểm trước ngày 31/12/2025"),
     ("gửi báo cáo chậm nhất trước ngày 25 hằng tháng", "chậm nhất trước ngày 25 hằng tháng")],
)  # fmt: skip
def test_lead_covers_the_words_that_introduce_a_deadline(text: str, phrase: str) -> None:
    (deadline,) = find_deadlines(text, ISSUED)
    assert text[deadline.lead : deadline.end] == phrase
