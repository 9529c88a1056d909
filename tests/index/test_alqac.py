"""index/language/exam.py and index/alqac.py: exam task wording stripped, pointer choices dropped, clauses
pooled into articles, folds, and a cross-validation that chooses constants without the held-out fold."""

from __future__ import annotations

import numpy as np
import pytest

from index.alqac import (
    Signals,
    Weights,
    article_key,
    cross_validate,
    folds,
    pool_articles,
    rank_articles,
    rank_of,
)
from index.language.exam import exam_query, is_pointer_choice, strip_task_wording
from index.models import Passage, Source

STRIP = [
    # verdict cue at the end, with its comma, "là", a full stop, capitals
    ("Hợp đồng lữ hành phải lập thành văn bản, đúng hay sai?", "Hợp đồng lữ hành phải lập thành văn bản"),
    ("Hợp đồng lữ hành phải lập thành văn bản. Đúng hay sai?", "Hợp đồng lữ hành phải lập thành văn bản"),
    ("Thời hạn tạm trú tối đa là 02 năm là đúng hay sai? ", "Thời hạn tạm trú tối đa là 02 năm"),
    ("Vợ chồng bình đẳng với nhau, nhận định trên đúng hay sai?", "Vợ chồng bình đẳng với nhau"),
    ("Người nước ngoài được đăng ký tạm trú, có đúng không?", "Người nước ngoài được đăng ký tạm trú"),
    ("Người nước ngoài được đăng ký tạm trú phải không", "Người nước ngoài được đăng ký tạm trú"),
    ("dung hay sai: tre em duoc hoc mien phi", "tre em duoc hoc mien phi"),  # typed without diacritics
    ("Nhận định sau đúng hay sai: Trẻ em được học miễn phí.", "Trẻ em được học miễn phí."),
    # "đúng" inside the statement stays
    ("Khai báo đúng sự thật là nghĩa vụ của công dân", "Khai báo đúng sự thật là nghĩa vụ của công dân"),
    # instructions of a multiple-choice stem
    ("Hành vi nào sau đây bị cấm? Chọn câu trả lời đúng nhất.", "Hành vi nào bị cấm?"),
    ("Điều kiện nào dưới đây là bắt buộc?", "Điều kiện nào là bắt buộc?"),
    # short answer: as is
    ("Thời hiệu khởi kiện là bao lâu?", "Thời hiệu khởi kiện là bao lâu?"),
    # nothing but the task wording: the question is kept rather than searched empty
    ("Đúng hay sai?", "Đúng hay sai?"),
]


@pytest.mark.parametrize(("question", "expected"), STRIP)
def test_task_wording_is_stripped(question: str, expected: str) -> None:
    assert strip_task_wording(question) == expected


POINTERS = [
    ("Cả A, B, C đều đúng", True),
    ("Cả 3 phương án trên.", True),
    ("Cả A và B đều sai", True),
    ("Tất cả các đáp án trên", True),
    ("Không có đáp án nào đúng", True),
    ("Cả 3 đáp án A, B, C.", True),
    ("ca a, b deu dung", True),
    ("Cả vợ và chồng có quyền ngang nhau trong việc định đoạt tài sản chung", False),
    ("Không mắc bệnh truyền nhiễm, không sử dụng chất ma túy.", False),
    ("Ngân sách nhà nước", False),
]


@pytest.mark.parametrize(("choice", "pointer"), POINTERS)
def test_pointer_choices_are_recognised(choice: str, pointer: bool) -> None:
    assert is_pointer_choice(choice) is pointer


def test_exam_query_keeps_choices_that_say_something_once() -> None:
    q = exam_query("Nguồn tài chính nào sau đây được dùng?",
                   {"A": "Ngân sách nhà nước.", "B": "Nguồn tài trợ", "C": "Ngân sách nhà nước", "D": "Cả A, B, C đều đúng"})  # fmt: skip
    assert q.stem == "Nguồn tài chính nào được dùng?"
    assert q.choices == ("Ngân sách nhà nước", "Nguồn tài trợ")
    assert exam_query("Thời hiệu là bao lâu?").choices == ()


def _law(text: str, context: str, pid: str = "p") -> Passage:
    return Passage(passage_id=pid, document_id="luat", document_title="Luật", label="Luật", text=text,
                   source=Source(file="luat.txt", start=0, end=len(text)), url="/", context=context)  # fmt: skip


@pytest.mark.parametrize(
    ("text", "context", "key"),
    [
        ("1. Công dân có quyền tự do cư trú.", "Chương I\nĐiều 4. Quyền tự do cư trú", "luat.txt#4"),
        ("Điều 12a. Nơi cư trú của người", "Chương II", "luat.txt#12a"),
        ("a) người chưa thành niên;", "Điều 7. Hành vi bị cấm\n2. Các trường hợp sau:", "luat.txt#7"),
        ("a) khác;", "Bộ luật Dân sự. Điều 28. Quyền thay đổi tên 1. Như tại Điều 16.", "luat.txt#28"),
        ("Luật này quy định về cư trú.", "", "p"),
        (
            "Theo Điều 5. thì",
            "Chương I",
            "p",
        ),  # a reference inside a passage is not its article  # outside any article: a unit of its own
    ],
)
def test_article_key(text: str, context: str, key: str) -> None:
    assert article_key(_law(text, context)) == key


def test_pooling_adds_a_share_of_the_next_best_clauses() -> None:
    keys = ["a", "a", "a", "b", "c"]
    scores = np.array([0.5, 0.4, 0.3, 0.6, 0.1])
    assert pool_articles(keys, scores, share=0.0) == pytest.approx({"a": 0.5, "b": 0.6, "c": 0.1})
    pooled = pool_articles(keys, scores, share=0.5)
    assert pooled == pytest.approx({"a": 0.5 + 0.5 * 0.7, "b": 0.6, "c": 0.1})
    assert pool_articles(keys, scores, share=1.0, depth=1)["a"] == pytest.approx(0.9)


def _signals(dense: list[float], lexical: list[float]) -> Signals:
    return Signals(rows=np.arange(len(dense)), dense=np.array(dense), lexical=np.array(lexical))


def test_rank_articles_weighs_signals_and_choices() -> None:
    keys = ["x", "y", "z"]
    stem = _signals([0.3, 0.2, 0.1], [0.1, 0.3, 0.2])
    assert rank_articles(keys, stem, [], Weights(dense=1.0))[0] == "x"
    assert rank_articles(keys, stem, [], Weights(dense=0.0))[0] == "y"
    choice = _signals([0.0, 0.0, 1.0], [0.0, 0.0, 1.0])
    assert (
        rank_articles(keys, stem, [choice], Weights(dense=0.5))[0] != "z"
    )  # choices weigh nothing by default
    assert rank_articles(keys, stem, [choice], Weights(dense=0.5, choices=1.0))[0] == "z"
    assert rank_of(["x", "y", "z"], {"z"}) == 3 and rank_of(["x", "y", "z"], {"q"}) is None


@pytest.mark.parametrize(("n", "k"), [(100, 5), (7, 3), (10, 10)])
def test_folds_partition_the_questions(n: int, k: int) -> None:
    parts = folds(n, k, seed=1)
    assert sorted(i for part in parts for i in part) == list(range(n))
    assert max(map(len, parts)) - min(map(len, parts)) <= 1
    assert parts == folds(n, k, seed=1) and (k == n or parts != folds(n, k, seed=2))


@pytest.mark.parametrize(("n", "k"), [(5, 1), (3, 4)])
def test_folds_refuse_impossible_splits(n: int, k: int) -> None:
    with pytest.raises(ValueError):
        folds(n, k)


def test_cross_validation_chooses_on_the_training_folds_only() -> None:
    # weights A rank every question right except the first fold's, where only B does: in sample A wins
    # (more questions), and the first fold's held-out score uses A — B is never chosen by peeking at it.
    n, k = 20, 4
    first = set(folds(n, k)[0])
    a, b = Weights(dense=0.1), Weights(dense=0.9)

    def rank(i: int, w: Weights) -> list[str]:
        right = (w == a) != (i in first)
        return ["gold"] if right else ["other"]

    cv = cross_validate(rank, [{"gold"}] * n, [a, b], k=k)
    assert cv.in_sample_weights == a and cv.in_sample.mrr10 == pytest.approx(0.75)
    assert cv.fold_weights == [a] * k
    assert cv.held_out.mrr10 == pytest.approx(0.75)
