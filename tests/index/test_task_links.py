"""A task that a later Kết luận repeats or re-dates is linked to it both ways (index/task_links.py): the same
lead agency and most of the same words, in a Kết luận issued later. Hand-written tasks (tests/task_fixtures.py)
for the rules; a build of 183-KL/TW's press report and a later Kết luận written for the test, end to end."""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path
from typing import Any

import pytest

from index.build import build_index
from index.embedding import HashingEmbedder
from index.layout import current_build
from index.models import Directive
from index.task_links import link_tasks
from index.tasks import TaskBook
from tests.task_fixtures import DIRECTIVES, KL195, KL221, LAW_REVIEW, TRAINING, directive

ROOT = Path(__file__).resolve().parents[2]
PRESS_183 = ROOT / "data" / "corpus" / "000_5d30afc99b18f1f4.txt"
LATER_230 = """BAN CHẤP HÀNH TRUNG ƯƠNG
ĐẢNG CỘNG SẢN VIỆT NAM
Số 230-KL/TW
Hà Nội, ngày 15 tháng 1 năm 2026
KẾT LUẬN
CỦA BỘ CHÍNH TRỊ, BAN BÍ THƯ
VỀ TIẾP TỤC HOÀN THIỆN THỂ CHẾ CHO CHÍNH QUYỀN ĐỊA PHƯƠNG 2 CẤP
Bộ Chính trị, Ban Bí thư kết luận như sau:
1. Bộ Tư pháp khẩn trương hoàn thiện việc rà soát, tổng hợp, lấy ý kiến các bộ, ngành để đề xuất phương án \
hoàn thiện pháp luật về phân cấp, phân quyền, phân định thẩm quyền khi tổ chức mô hình chính quyền địa phương \
2 cấp (hoàn thành trước ngày 31/3/2026).
2. Ban Tổ chức Trung ương theo dõi, đôn đốc việc thực hiện Kết luận này, định kỳ báo cáo Bộ Chính trị.
T/M BỘ CHÍNH TRỊ
"""


def _in_221(base: Directive, **changes: Any) -> Directive:
    """`base` as Kết luận 221 (issued after 183 and 195) gives it, with `changes`."""
    fields: dict[str, Any] = {"action": base.action, "agencies": base.agencies, "deadline": base.deadline}
    fields.update(changes)
    return directive(base.directive_id.replace(base.document_id, KL221), base.passage_id.replace(base.document_id, KL221),
                     fields.pop("action"), fields.pop("agencies"), fields.pop("deadline"), **fields)  # fmt: skip


def _links(directives: list[Directive]) -> dict[str, tuple[list[tuple[str, bool]], list[tuple[str, bool]]]]:
    return {
        d.directive_id: ([(x.directive_id, x.moved) for x in d.earlier], [(x.directive_id, x.moved) for x in d.later])
        for d in link_tasks(directives)
        if d.earlier or d.later
    }  # fmt: skip


def test_a_later_ket_luan_that_moves_a_deadline_links_both_ways() -> None:
    later = _in_221(LAW_REVIEW, deadline=dt.date(2026, 3, 31))
    linked = {d.directive_id: d for d in link_tasks([*DIRECTIVES, later])}
    (back,) = linked[later.directive_id].earlier
    assert (back.directive_id, back.ket_luan, back.deadline, back.moved) == (
        LAW_REVIEW.directive_id, "183-KL/TW", dt.date(2025, 9, 15), True)  # fmt: skip
    assert back.url == LAW_REVIEW.url and back.label == LAW_REVIEW.label
    (forward,) = linked[LAW_REVIEW.directive_id].later
    assert (forward.directive_id, forward.deadline, forward.moved) == (
        later.directive_id,
        dt.date(2026, 3, 31),
        True,
    )
    assert _links([*DIRECTIVES, later]).keys() == {later.directive_id, LAW_REVIEW.directive_id}


@pytest.mark.parametrize(
    ("later", "links"),
    [
        # the same deadline again: repeated, not moved
        (_in_221(LAW_REVIEW), {"earlier": [(LAW_REVIEW.directive_id, False)]}),
        # a deadline where there was none, or none where there was one: repeated, nothing to compare
        (_in_221(LAW_REVIEW, deadline=None), {"earlier": [(LAW_REVIEW.directive_id, False)]}),
        # a few words changed is still the task
        (_in_221(TRAINING, action=TRAINING.action.replace("Khẩn trương tiếp tục", "Hoàn thành"),
                 deadline=dt.date(2025, 12, 31)), {"earlier": [(TRAINING.directive_id, True)]}),
        # another lead agency (Bộ Nội vụ's task given to Bộ Tư pháp) is another task
        (_in_221(TRAINING, agencies=["Bộ Tư pháp"]), {}),
        # the same agency with another action
        (_in_221(LAW_REVIEW, action="kiểm tra việc cấp phiếu lý lịch tư pháp tại các xã, phường"), {}),
    ],
)  # fmt: skip
def test_same_agency_and_most_of_the_words_make_the_same_task(
    later: Directive, links: dict[str, Any]
) -> None:
    found = _links([*DIRECTIVES, later])
    assert found.get(later.directive_id, ([], [])) == (links.get("earlier", []), [])


def test_only_a_later_ket_luan_links_and_not_the_same_one() -> None:
    same_day = directive(f"{KL195}.m9.d1.t1", f"{KL195}.m9.d1", LAW_REVIEW.action, ["Bộ Tư pháp"],
                         issued=LAW_REVIEW.issued)  # fmt: skip
    again_in_183 = LAW_REVIEW.model_copy(update={"directive_id": LAW_REVIEW.directive_id + "b"})
    assert _links([LAW_REVIEW, same_day, again_in_183]) == {}
    older = directive(f"{KL195}.m9.d1.t1", f"{KL195}.m9.d1", LAW_REVIEW.action, ["Bộ Tư pháp"],
                      issued=dt.date(2025, 7, 1))  # fmt: skip
    assert _links([LAW_REVIEW, older])[LAW_REVIEW.directive_id] == ([(older.directive_id, False)], [])


def test_each_earlier_ket_luan_gives_its_closest_task_only() -> None:
    close = _in_221(LAW_REVIEW, deadline=dt.date(2026, 3, 31))
    looser = LAW_REVIEW.model_copy(update={"directive_id": LAW_REVIEW.directive_id + "b",
                                           "action": LAW_REVIEW.action + " và báo cáo Bộ Chính trị kết quả"})  # fmt: skip
    found = _links([LAW_REVIEW, looser, close])
    assert found[close.directive_id][0] == [(LAW_REVIEW.directive_id, True)]
    assert looser.directive_id not in found


def test_the_build_links_a_later_ket_luan_to_the_task_it_re_dates(tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    shutil.copy(PRESS_183, corpus)
    (corpus / "010_kl230.txt").write_text(LATER_230, "utf-8")
    build_index([corpus], tmp_path / "index", HashingEmbedder(64), progress=False, log=lambda _: None)
    book = TaskBook.load(current_build(tmp_path / "index"))
    (later,) = [d for d in book.directives if d.ket_luan == "230-KL/TW" and d.earlier]
    assert later.agencies == ["Bộ Tư pháp"] and later.deadline == dt.date(2026, 3, 31)
    (earlier,) = later.earlier
    assert (earlier.ket_luan, earlier.deadline, earlier.deadline_text, earlier.moved) == (
        "183-KL/TW", dt.date(2025, 8, 31), "trước ngày 31/8/2025", True)  # fmt: skip
    first = next(d for d in book.directives if d.directive_id == earlier.directive_id)
    assert [x.directive_id for x in first.later] == [later.directive_id]
    others = [d for d in book.directives if d.directive_id not in (later.directive_id, first.directive_id)]
    assert not any(d.earlier or d.later for d in others)


def test_the_shipped_corpus_has_no_task_repeated_by_a_later_ket_luan(tmp_path: Path) -> None:
    """179, 183, 195 and 221 share themes and agencies but no task: nothing is linked by a loose likeness."""
    shutil.copytree(ROOT / "data" / "corpus", tmp_path / "corpus")
    build_index(
        [tmp_path / "corpus"], tmp_path / "index", HashingEmbedder(64), progress=False, log=lambda _: None
    )
    book = TaskBook.load(current_build(tmp_path / "index"))
    assert len({d.ket_luan for d in book.directives}) == 4
    assert not any(d.earlier or d.later for d in book.directives)
