"""Document references and Kết luận numbers however they are written."""

from __future__ import annotations

import datetime as dt

import pytest

from index.language.references import find_references, ket_luan_numbers, ket_luan_spans, normalize_ket_luan


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("183-KL/TW", ["183-KL/TW"]),
        ("Kết Luận số 183- KL/TW, ngày 1/8/2025", ["183-KL/TW"]),
        ("183/KL-TW", ["183-KL/TW"]),
        ("KL 183", ["183-KL/TW"]),
        ("kl183", ["183-KL/TW"]),
        ("kết luận số 183", ["183-KL/TW"]),
        ("ket luan so 5", ["5-KL/TW"]),
        ("Kết luận 183 và 179 khác nhau thế nào?", ["183-KL/TW", "179-KL/TW"]),
        ("KL 195, 221", ["195-KL/TW", "221-KL/TW"]),
        ("dang uy CP phai lam j theo kl 183", ["183-KL/TW"]),
        ("kết luận 2 tháng thực hiện", []),
        ("kết luận 30 ngày thực hiện", []),
        ("kết luận 195 tháng 9 yêu cầu gì", ["195-KL/TW"]),  # issued in September
        ("kết luận 3 tháng triển khai", []),
        ("Kết luận 160 ngày ban hành thế nào", ["160-KL/TW"]),
        ("kết luận 160 ngày nào ký", ["160-KL/TW"]),
        ("kết luận ngày 26-9", []),
        ("Kết luận của Bộ Chính trị", []),
        ("từ ngày 1-31/7/2025", []),
    ],
)
def test_ket_luan_numbers(text: str, expected: list[str]) -> None:
    assert ket_luan_numbers(text) == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("183", "183-KL/TW"), ("0183", "183-KL/TW"), (" 221-KL/TW ", "221-KL/TW"), ("KL 195", "195-KL/TW"),
     ("abc", None), ("", None)],
)  # fmt: skip
def test_normalize_ket_luan(raw: str, expected: str | None) -> None:
    assert normalize_ket_luan(raw) == expected


def test_full_only_wants_the_suffix() -> None:
    assert ket_luan_numbers("theo Kết luận số 12 và 183-KL/TW", full_only=True) == ["183-KL/TW"]


def test_spans_cover_the_mention() -> None:
    text = "Tóm tắt Kết luận số 183-KL/TW nhé"
    ((start, end, number),) = ket_luan_spans(text)
    assert (text[start:end], number) == ("Kết luận số 183-KL/TW", "183-KL/TW")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("hoàn thành các nhiệm vụ nêu tại Kế hoạch số 56-KH/BCĐ, ngày 4/7/2025 của Ban Chỉ đạo Trung ương về",
         [("Kế hoạch số 56-KH/BCĐ, ngày 4/7/2025", "Kế hoạch", "56-KH/BCĐ", dt.date(2025, 7, 4),
           "Ban Chỉ đạo Trung ương")]),
        ("thực hiện nghiêm Kết luận số 192-KL/TW (ngày 19-9-2025) của Bộ Chính trị, Ban Bí thư, nhất là",
         [("Kết luận số 192-KL/TW (ngày 19-9-2025)", "Kết luận", "192-KL/TW", dt.date(2025, 9, 19),
           "Bộ Chính trị, Ban Bí thư")]),
        ("(Báo cáo số 565-BC/BTCTW, ngày 27/11/2025)",
         [("Báo cáo số 565-BC/BTCTW, ngày 27/11/2025", "Báo cáo", "565-BC/BTCTW", dt.date(2025, 11, 27),
           "Ban Tổ chức Trung ương")]),
        ("Quy định số 89-QĐ/TW, ngày 4/8/2017 về khung tiêu chuẩn",
         [("Quy định số 89-QĐ/TW, ngày 4/8/2017", "Quy định", "89-QĐ/TW", dt.date(2017, 8, 4), None)]),
        ("yêu cầu nêu tại Chỉ thị số 45 của Bộ Chính trị;",
         [("Chỉ thị số 45", "Chỉ thị", "45", None, "Bộ Chính trị")]),
        ("tổng kết Nghị quyết 18", [("Nghị quyết 18", "Nghị quyết", "18", None, None)]),
        ("Công văn số 1234-CV/VPTW ngày 2/10/2025", [("Công văn số 1234-CV/VPTW ngày 2/10/2025", "Công văn",
                                                     "1234-CV/VPTW", dt.date(2025, 10, 2), "Văn phòng Trung ương Đảng")]),
        ("tại Hội nghị Trung ương 14 vào tháng 11-2025",
         [("Hội nghị Trung ương 14", "Hội nghị Trung ương 14", "", None, None)]),
        ("Hội nghị Trung ương lần thứ mười lăm", [("Hội nghị Trung ương lần thứ mười lăm", "Hội nghị Trung ương 15", "", None, None)]),
        ("Sau Hội nghị lần thứ 12 khóa XIII,", [("Hội nghị lần thứ 12", "Hội nghị Trung ương 12", "", None, None)]),
        ("theo báo cáo của Ban Tổ chức Trung ương", []),
    ],
)  # fmt: skip
def test_find_references(text: str, expected: list[tuple[object, ...]]) -> None:
    found = find_references(text, 2025)
    assert [(r.text, r.kind, r.number, r.issued, r.issuer) for r in found] == expected
    assert all(text[r.start : r.end] == r.text for r in found)
