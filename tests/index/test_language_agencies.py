"""Agency names: aliases, abbreviations, "ủy"/"uỷ" and unaccented forms, collectives, spans in a text."""

from __future__ import annotations

import pytest

from index.language import agencies


@pytest.mark.parametrize(
    ("written", "canonical"),
    [
        ("Đảng ủy CP", "Đảng ủy Chính phủ"),
        ("dang uy chinh phu", "Đảng ủy Chính phủ"),
        ("Đảng uỷ Chính phủ", "Đảng ủy Chính phủ"),
        ("BTCTW", "Ban Tổ chức Trung ương"),
        ("UBKTTW", "Ủy ban Kiểm tra Trung ương"),
        ("Uỷ ban Kiểm tra Trung ương", "Ủy ban Kiểm tra Trung ương"),
        ("MTTQ", "Mặt trận Tổ quốc Việt Nam"),
        ("UBND cấp xã", "Ủy ban nhân dân cấp xã"),
        ("HĐND", "Hội đồng nhân dân"),
        ("bo noi vu", "Bộ Nội vụ"),
        ("các tỉnh uỷ, thành uỷ", "Các tỉnh ủy, thành ủy"),
    ],
)
def test_resolve(written: str, canonical: str) -> None:
    found = agencies.resolve(written)
    assert found is not None and found.name == canonical


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "Các tỉnh uỷ, thành uỷ phối hợp Bộ Y tế, Bộ Giáo dục và Đào tạo và Bộ Nội vụ khẩn trương",
            [("Các tỉnh uỷ, thành uỷ", "Các tỉnh ủy, thành ủy"), ("Bộ Y tế", "Bộ Y tế"),
             ("Bộ Giáo dục và Đào tạo", "Bộ Giáo dục và Đào tạo"), ("Bộ Nội vụ", "Bộ Nội vụ")],
        ),
        ("Giao các bộ, ban, ngành và địa phương:",
         [("các bộ, ban, ngành", "Các bộ, ngành"), ("địa phương", "Các địa phương")]),
        ("dang uy CP phai lam j", [("dang uy CP", "Đảng ủy Chính phủ")]),
        # an abbreviation counts only in capitals; "ủy ban kiểm tra các cấp" is not the central one
        ("ubnd xã", []),
        ("Ủy ban Kiểm tra Trung ương chỉ đạo ủy ban kiểm tra các cấp",
         [("Ủy ban Kiểm tra Trung ương", "Ủy ban Kiểm tra Trung ương"),
          ("ủy ban kiểm tra các cấp", "Ủy ban kiểm tra các cấp")]),
        # the longest alias wins: the Party committee, not the Government inside its name
        ("Giao Đảng ủy Chính phủ, Chính phủ tiếp tục",
         [("Đảng ủy Chính phủ", "Đảng ủy Chính phủ"), ("Chính phủ", "Chính phủ")]),
        # a ministry the table does not list is still found, by its capitalised name
        ("Bộ Kế hoạch và Đầu tư chủ trì", [("Bộ Kế hoạch và Đầu tư", "Bộ Kế hoạch và Đầu tư")]),
        ("Không có cơ quan nào ở đây", []),
    ],
)  # fmt: skip
def test_find_gives_spans_of_the_text(text: str, expected: list[tuple[str, str]]) -> None:
    found = agencies.find(text)
    assert [(text[m.start : m.end], m.agency.name) for m in found] == expected


def test_find_spans_hold_in_decomposed_text() -> None:
    import unicodedata

    text = unicodedata.normalize("NFD", "Giao Bộ Tư pháp khẩn trương")
    (mention,) = agencies.find(text)
    assert mention.agency.name == "Bộ Tư pháp"
    assert unicodedata.normalize("NFC", text[mention.start : mention.end]) == "Bộ Tư pháp"


@pytest.mark.parametrize(("name", "level"), [("Bộ Nội vụ", "trung ương"), ("Ủy ban nhân dân cấp xã", "xã"),
                                             ("Các tỉnh ủy, thành ủy", "tỉnh")])  # fmt: skip
def test_levels(name: str, level: str) -> None:
    found = agencies.resolve(name)
    assert found is not None and found.level == level


def test_issuers_are_marked() -> None:
    assert [a.name for a in agencies.known() if a.issuer] == ["Bộ Chính trị", "Ban Bí thư",
                                                              "Ban Chấp hành Trung ương Đảng"]  # fmt: skip


def test_suggest_names_the_closest() -> None:
    assert "Bộ Nội vụ" in agencies.suggest("Bo Noi Vuu")


@pytest.mark.parametrize(
    ("text", "names"),
    [
        ("chính quyền địa phương 2 cấp họp bao lâu một lần", []),  # a compound noun, not an addressee
        ("ngân sách địa phương", []),
        ("kiến nghị của địa phương", ["Các địa phương"]),
        ("các địa phương phải làm gì", ["Các địa phương"]),
    ],
)
def test_a_bare_collective_inside_a_compound_names_no_agency(text: str, names: list[str]) -> None:
    assert [m.agency.name for m in agencies.find(text)] == names
