"""Rules of the extractive answers that need no index: what counts as the fact asked, what a quote keeps."""

from __future__ import annotations

import pytest

from bot.extractive import _NAMED, _gap, _has_quantity
from bot.quoting import trim
from index.textnorm import normalize


@pytest.mark.parametrize(
    ("text", "noun", "expected"),
    [
        ("Bố trí 500 triệu đồng cho việc sắp xếp", "dong", True),
        ("kinh phí 2 tỷ đồng", "dong", True),
        ("Giao 3 đồng chí Ủy viên Bộ Chính trị theo dõi", "dong", False),  # people, not money
        ("giảm 30% đầu mối", "dong", False),  # a share, not an amount
        ("hoàn thành trong 2 tháng", "thoi gian", True),
        ("sẽ họp 1 tháng/lần", "thoi gian", True),
        ("trước ngày 31/8/2025", "thoi gian", False),
        ("giảm 30% đầu mối", "phan tram", True),
        ("sẽ họp 1 tháng/lần để đánh giá", "lan", True),  # "họp mấy lần": how often
        ("báo cáo hằng tháng", "lan", True),
        ("đã họp 3 lần", "lan", True),
        ("trước ngày 31/8/2025", "lan", False),
    ],
)
def test_an_amount_is_an_amount_of_what_was_asked(text: str, noun: str, expected: bool) -> None:
    assert _has_quantity(text, noun) is expected


def test_a_named_standard_in_quotation_marks_survives_trimming() -> None:
    sentence = (
        "Triển khai nghiêm túc việc tiếp tục rà soát, đầu tư đầy đủ và đưa ra các giải pháp quyết liệt hơn nữa "
        "đối với các điều kiện cần thiết, nhất là chữ ký số, chứng thư số, nhân sự hỗ trợ số hóa dữ liệu "
        '"đúng-đủ-sạch-sống"; khả năng chia sẻ, sử dụng lại dữ liệu số hóa đồng bộ, liên thông; phần mềm ứng '
        "dụng cung cấp dịch vụ công và phần mềm tác nghiệp (hộ tịch, đất đai, đăng ký kinh doanh, thuế…) để vận "
        "hành hiệu quả Trung tâm Phục vụ hành chính công cấp xã."
    )
    focus = [("phan mem", 2.0), ("trung tam", 1.0), ("du lieu", 1.0)]
    assert "đúng-đủ-sạch-sống" not in trim(sentence, focus, 30)  # the trimmed quote alone drops it …
    kept = trim(sentence, focus, 30, _NAMED.findall(sentence))
    assert "đúng-đủ-sạch-sống" in kept  # … the quoted name is kept
    assert all(piece.strip(" …") in sentence for piece in kept.split(" … "))  # still verbatim pieces


@pytest.mark.parametrize(
    ("typed", "written"),
    [("đánh gía", "đánh giá"), ("Gìơ", "Giờ"), ("gì", "gì"), ("gìn giữ", "gìn giữ"), ("hoà", "hòa")],
)
def test_a_tone_typed_on_the_i_of_gi_moves_to_its_vowel(typed: str, written: str) -> None:
    assert normalize(typed) == written


def test_a_year_before_a_comma_is_no_amount_of_money() -> None:
    assert not _has_quantity("từ ngày 18 đến 24/7/2025, đồng thời biểu dương", "dong")
    assert _has_quantity("hỗ trợ 1.500.000 đồng mỗi người", "dong")


@pytest.mark.parametrize(
    ("action", "topic"),
    [
        ("Hoàn thiện mô hình tổ chức và hoạt động của bộ máy", "hoàn thiện mô hình tổ chức và hoạt động"),
        ("phối hợp Bộ Y tế, Bộ Giáo dục và Đào tạo và Bộ Nội vụ khẩn trương sắp xếp", "phối hợp Bộ Y tế"),
        ("Bộ Nội vụ chủ trì rà soát", "Bộ Nội vụ chủ trì rà soát"),
    ],
)
def test_a_suggested_question_names_a_task_by_a_whole_phrase(action: str, topic: str) -> None:
    from bot.suggestions import _topic

    assert _topic(action) == topic


@pytest.mark.parametrize(
    ("scores", "gap"),
    [([10.0, 2.0, 1.0], 0.8), ([4.0, 4.0], 0.0), ([5.0], 1.0), ([], 0.0), ([0.0, 0.0], 0.0)],
)
def test_the_lexical_gap_is_the_best_scores_lead_as_a_share_of_it(scores: list[float], gap: float) -> None:
    assert _gap(scores) == pytest.approx(gap)
