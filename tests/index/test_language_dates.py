"""Dates and deadlines in the fixed forms of the Kết luận: precision, recurrence, year from the document."""

from __future__ import annotations

import datetime as dt
import unicodedata

import pytest

from index.language.dates import find_dates, find_deadlines, recurring_day

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
        ("tháng 1/2026", None, [("tháng 1/2026", D(2026, 1, 31), "month", None)]),
        ("tháng 11 năm 2025", None, [("tháng 11 năm 2025", D(2025, 11, 30), "month", None)]),
        ("tháng 13/2025", None, [("tháng 13/2025", None, "month", None)]),
        ("tuần thứ 2 của tháng 3 năm 2026", None, [("tuần thứ 2 của tháng 3 năm 2026", D(2026, 3, 14), "week", None)]),
        ("tuần thứ 1 tháng 10/2025", None, [("tuần thứ 1 tháng 10/2025", D(2025, 10, 7), "week", None)]),
        ("tuần thứ tư tháng 10/2025", None, [("tuần thứ tư tháng 10/2025", D(2025, 10, 28), "week", None)]),
        ("tuần đầu tháng 10,", 2026, [("tuần đầu tháng 10", D(2026, 10, 7), "week", None)]),
        ("tuần cuối tháng 10,", 2026, [("tuần cuối tháng 10", D(2026, 10, 31), "week", None)]),
        ("tuần đầu tháng 10,", None, [("tuần đầu tháng 10", None, "week", None)]),
        ("quý 2/2026", None, [("quý 2/2026", D(2026, 6, 30), "month", None)]),
        ("quý III năm 2025", None, [("quý III năm 2025", D(2025, 9, 30), "month", None)]),
        ("quý I/2026", None, [("quý I/2026", D(2026, 3, 31), "month", None)]),
        ("6 tháng cuối năm 2025", None, [("6 tháng cuối năm 2025", D(2025, 12, 31), "month", None)]),
        ("sáu tháng đầu năm 2026", None, [("sáu tháng đầu năm 2026", D(2026, 6, 30), "month", None)]),
        ("đầu năm 2026", None, [("đầu năm 2026", D(2026, 3, 31), "month", None)]),
        ("cuối năm 2025", None, [("cuối năm 2025", D(2025, 12, 31), "year", None)]),
        ("ngày 20 của tháng cuối hằng quý", None, [("ngày 20 của tháng cuối hằng quý", None, "day", "quarterly")]),
        ("ngày 5/3/2026 và ngày 15-3", 2026,
         [("ngày 5/3/2026", D(2026, 3, 5), "day", None), ("ngày 15-3", D(2026, 3, 15), "day", None)]),
    ],
)  # fmt: skip
def test_find_dates(text: str, default_year: int | None, expected: list[tuple[object, ...]]) -> None:
    found = find_dates(text, default_year)
    assert [(m.text, m.date, m.precision, m.recurring) for m in found] == expected
    assert all(text[m.start : m.end] == m.text for m in found)


@pytest.mark.parametrize(
    ("text", "default_year", "first", "last"),
    [
        ("từ ngày 1/7 đến ngày 31/7/2025", 2025, D(2025, 7, 1), D(2025, 7, 31)),
        ("từ ngày 1-31/7/2025", 2025, D(2025, 7, 1), D(2025, 7, 31)),
        ("từ ngày 18 đến 24/7/2025", 2025, D(2025, 7, 18), D(2025, 7, 24)),
        ("từ ngày 15-10-2025 đến ngày 20-10-2025", 2025, D(2025, 10, 15), D(2025, 10, 20)),
        # a year written in the range wins over the document's; each day keeps its own
        ("từ ngày 1/7 đến ngày 31/7/2025", 2024, D(2025, 7, 1), D(2025, 7, 31)),
        ("từ ngày 1/7 đến ngày 31/7/2025", None, D(2025, 7, 1), D(2025, 7, 31)),
        ("từ ngày 1/7/2025 đến ngày 31/7", None, D(2025, 7, 1), D(2025, 7, 31)),
        ("từ ngày 15/12/2025 đến ngày 15/1/2026", None, D(2025, 12, 15), D(2026, 1, 15)),
        ("từ ngày 1/7 đến ngày 31/7", 2026, D(2026, 7, 1), D(2026, 7, 31)),
        ("từ ngày 1/7 đến ngày 31/7", None, None, None),
    ],
)
def test_ranges(text: str, default_year: int | None, first: dt.date | None, last: dt.date | None) -> None:
    (mention,) = find_dates(text, default_year)
    assert (mention.first, mention.date, mention.precision, mention.text) == (first, last, "day", text)


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


@pytest.mark.parametrize(
    ("text", "issued", "expected"),
    [
        ("hoàn thành trước ngày 31/8/2025.", None, [("trước ngày 31/8/2025", D(2025, 8, 31))]),
        ("hoàn thành trước ngày 30-10.", None, [("trước ngày 30-10", None)]),
        # the issue day itself is not past: the same year
        ("hoàn thành trước ngày 26-9.", ISSUED, [("trước ngày 26-9", D(2025, 9, 26))]),
        ("hoàn thành trước ngày 25-9.", ISSUED, [("trước ngày 25-9", D(2026, 9, 25))]),
        # a period or a dated event before a deadline does not hide it
        ("kết quả từ ngày 1/7 đến ngày 31/7/2025; hoàn thành trước ngày 31/8/2025.", ISSUED,
         [("trước ngày 31/8/2025", D(2025, 8, 31))]),
        ("Tại phiên họp ngày 28/11/2025, giao hoàn thành trước ngày 31/12/2025.", ISSUED,
         [("trước ngày 31/12/2025", D(2025, 12, 31))]),
        ("báo cáo trước ngày 15/10/2025 và hoàn thành trong tháng 12/2025.", ISSUED,
         [("trước ngày 15/10/2025", D(2025, 10, 15)), ("trong tháng 12/2025", D(2025, 12, 31))]),
    ],
)  # fmt: skip
def test_deadlines_take_their_year_from_the_issue_date(
    text: str, issued: dt.date | None, expected: list[tuple[object, ...]]
) -> None:
    assert [(d.text, d.date) for d in find_deadlines(text, issued)] == expected


@pytest.mark.parametrize(
    "text",
    [
        "phải hoàn thành dứt điểm trước ngày 31/12/2025.",
        "Ngày 26-9, giao hoàn thành trong tuần đầu tháng 10-2025.",
    ],
)
def test_decomposed_text_gives_its_own_spans_and_the_same_dates(text: str) -> None:
    decomposed = unicodedata.normalize("NFD", text)
    assert len(decomposed) > len(text)
    for found, expected in [(find_dates(decomposed, 2025), find_dates(text, 2025)),
                            (find_deadlines(decomposed, ISSUED), find_deadlines(text, ISSUED))]:  # fmt: skip
        assert [(m.date, m.precision) for m in found] == [(m.date, m.precision) for m in expected]
        assert [unicodedata.normalize("NFC", decomposed[m.start : m.end]) for m in found] == [
            m.text for m in expected
        ]
        assert all(decomposed[m.start : m.end] == m.text for m in found)
    (deadline,) = find_deadlines(decomposed, ISSUED)[-1:]
    (nfc_deadline,) = find_deadlines(text, ISSUED)[-1:]
    assert (
        unicodedata.normalize("NFC", decomposed[deadline.lead : deadline.end])
        == text[nfc_deadline.lead : nfc_deadline.end]
    )


@pytest.mark.parametrize(
    ("text", "day"),
    [
        ("gửi báo cáo chậm nhất trước ngày 25 hằng tháng.", 25),
        ("báo cáo vào ngày 20 của tháng cuối hằng quý", 20),
        ("ngày 1 mỗi tháng", 1),
        ("ngày 31 hằng tháng", 31),
        ("ngày 0 hằng tháng", None),
        ("ngày 32 hằng tháng", None),
        ("hoàn thành trước ngày 31/8/2025, sau đó báo cáo ngày 5 hằng tháng", 5),
        ("hoàn thành trước ngày 31/8/2025.", None),
        ("", None),
    ],
)
def test_recurring_day(text: str, day: int | None) -> None:
    assert recurring_day(text) == day
