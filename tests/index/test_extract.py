"""Tasks and references extracted from Kết luận written in the house style of the series (synthetic texts)."""

from __future__ import annotations

import datetime as dt
import json
import shutil
from pathlib import Path

import pytest

from index.build import _read_corpora, build_index
from index.embedding import HashingEmbedder
from index.extract import extract
from index.layout import current_build
from index.models import Directive
from index.settings import IndexSettings
from index.structure import parse_document

DATA = Path(__file__).with_name("data")


def _extract(*names: str) -> tuple[list[Directive], dict[str, str]]:
    folder = DATA
    parsed, texts = _read_corpora([folder])
    wanted = set(names)
    passages = [p for d in parsed for p in d.passages if p.source.file in wanted]
    return extract(passages, texts, {}).directives, texts


def _by_action(directives: list[Directive], start: str) -> Directive:
    (found,) = [d for d in directives if d.action.startswith(start)]
    return found


def test_official_text() -> None:
    directives, texts = _extract("ket_luan_official.txt")
    # acknowledgement, praise, agreement with the report and the issuer's own meetings assign nothing
    assert not [
        d for d in directives if d.label.endswith(("mục 1, đoạn 1", "mục 1, đoạn 2", "mục 6, đoạn 1"))
    ]

    lead = _by_action(directives, "khẩn trương hoàn thiện quy định")
    assert (lead.agencies, lead.partners, lead.verb) == (["Bộ Y tế"], ["Bộ Tài chính"], "giao")
    assert (lead.deadline, lead.deadline_precision) == (dt.date(2026, 4, 30), "day")
    assert lead.deadline_text == "trước ngày 30/4/2026"
    assert "hoàn thành" not in lead.action, "the closing deadline phrase is not part of the action"

    # items under "(1) Bộ Xây dựng phối hợp với …:" are that ministry's; the deadline after the last item
    # applies to each
    items = [d for d in directives if d.label.endswith(("ý (1)(i)", "ý (1)(ii)"))]
    assert len(items) == 2
    for item in items:
        assert (item.agencies, item.partners, item.implicit_agency) == (
            ["Bộ Xây dựng"],
            ["Các địa phương"],
            True,
        )
        assert (item.deadline, item.deadline_precision) == (dt.date(2026, 6, 30), "month")

    subject = _by_action(directives, "phối hợp Bộ Nội vụ sắp xếp")
    assert (subject.agencies, subject.partners) == (["Các tỉnh ủy, thành ủy"], ["Bộ Nội vụ"])
    assert (subject.deadline, subject.deadline_precision) == (dt.date(2026, 6, 30), "month")
    follow = _by_action(directives, "Chủ trì tổ chức tập huấn")
    assert (follow.agencies, follow.implicit_agency, follow.deadline) == (
        ["Các tỉnh ủy, thành ủy"],
        True,
        None,
    )

    chair = _by_action(directives, "tổng hợp tình hình")
    assert (chair.agencies, chair.partners) == (["Ban Tổ chức Trung ương"], ["Đảng ủy Chính phủ"])
    monthly = _by_action(directives, "gửi báo cáo về Ban Tổ chức Trung ương")
    assert (monthly.agencies, monthly.deadline, monthly.recurring) == (
        ["Các tỉnh ủy, thành ủy"],
        None,
        "monthly",
    )
    assert monthly.deadline_text == "chậm nhất trước ngày 20 hằng tháng"

    for d in directives:
        assert texts[d.source.file][d.source.start : d.source.end] == d.action
        assert d.ket_luan == "999-KL/TW" and d.issued == dt.date(2026, 3, 10)


def test_two_press_reports_of_one_ket_luan() -> None:
    directives, texts = _extract("ket_luan_press_a.txt", "ket_luan_press_b.txt")
    police = [d for d in directives if d.agencies == ["Bộ Công an"]]
    assert len(police) == 1, "the task both reports tell is one directive"
    (other,) = police[0].also_in
    assert other.startswith("kl998-") and other != police[0].passage_id
    (also,) = police[0].also_sources
    assert texts[also.file][also.start : also.end].startswith("hoàn thiện, làm sạch cơ sở dữ liệu")
    # "Chỉ đạo Bộ X: A; B (bảo đảm hoàn thành trước …); C" — parts with different deadlines are three tasks
    science = [d for d in directives if d.agencies == ["Bộ Khoa học và Công nghệ"]]
    assert [d.deadline for d in science] == [None, dt.date(2026, 4, 15), None]
    assert not [d for d in directives if "phê bình" in d.action]
    assert [d.agencies for d in directives if d.action.startswith("bố trí đủ cán bộ")] == [["Các địa phương"]]


_HEAD = "Thường trực Ban Bí thư ký ban hành Kết luận số 997-KL/TW, ngày 5/1/2026 của Bộ Chính trị, Ban Bí thư.\n\n"


@pytest.mark.parametrize(
    ("sentence", "agencies", "partners", "deadline"),
    [
        ("Bộ Chính trị, Ban Bí thư biểu dương Bộ Nội vụ đã hoàn thành tốt nhiệm vụ được giao.", None, None, None),
        ("Bộ Chính trị, Ban Bí thư nghiêm túc phê bình các địa phương chậm kiện toàn nhân sự.", None, None, None),
        ("Đảng ủy Quốc hội chỉ đạo Bộ Tư pháp chủ trì, phối hợp với Bộ Công an rà soát các luật có liên quan.",
         ["Bộ Tư pháp"], ["Bộ Công an"], None),
        ("Yêu cầu Đảng uỷ Chính phủ chỉ đạo các bộ, ngành rà soát thủ tục hành chính trong quý I/2026.",
         ["Đảng ủy Chính phủ"], [], dt.date(2026, 3, 31)),
        ("Ủy ban Kiểm tra Trung ương có trách nhiệm giám sát việc thực hiện kết luận này.",
         ["Ủy ban Kiểm tra Trung ương"], [], None),
        ("Các bộ, ngành, địa phương phải hoàn thành việc số hóa hồ sơ trước ngày 15-5-2026.",
         ["Các bộ, ngành", "Các địa phương"], [], dt.date(2026, 5, 15)),
        ("Giao UBND các tỉnh, thành phố khẩn trương bàn giao trụ sở dôi dư trước ngày 28-2.",
         ["Ủy ban nhân dân cấp tỉnh"], [], dt.date(2026, 2, 28)),
    ],
)  # fmt: skip
def test_one_sentence(sentence: str, agencies: list[str] | None, partners: list[str] | None,
                      deadline: dt.date | None) -> None:  # fmt: skip
    text = _HEAD + sentence + "\n"
    doc = parse_document("one.txt", text)
    directives = extract(doc.passages, {"one.txt": text}, {}).directives
    if agencies is None:
        assert directives == []
        return
    (d,) = directives
    assert (d.agencies, d.partners, d.deadline) == (agencies, partners, deadline)
    assert text[d.source.start : d.source.end] == d.action


def test_build_writes_reuses_and_keeps_ids(tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    for name in ("ket_luan_official.txt", "ket_luan_press_a.txt", "ket_luan_press_b.txt"):
        shutil.copy(DATA / name, corpus / name)
    settings = IndexSettings(data_dir=tmp_path, embedding_model="hashing-64")
    logs: list[str] = []

    def build() -> tuple[list[dict[str, object]], list[dict[str, object]]]:
        logs.clear()
        build_index([corpus], settings.index_dir, HashingEmbedder(64), progress=False, log=logs.append)
        b = current_build(settings.index_dir)
        rows = [json.loads(x) for x in (b / "directives.jsonl").read_text("utf-8").splitlines()]
        refs = [json.loads(x) for x in (b / "references.jsonl").read_text("utf-8").splitlines()]
        return rows, refs

    first, refs = build()
    assert first and any(r["number"] == "700-BC/BTCTW" for r in refs)
    assert any("(0 passages reused)" in line for line in logs)
    again, _ = build()
    assert again == first, "an unchanged corpus gives the same tasks with the same ids"
    assert not any("(0 passages reused)" in line for line in logs)

    # one paragraph changes: the others keep their ids and tasks
    path = corpus / "ket_luan_official.txt"
    path.write_text(path.read_text("utf-8").replace("30/4/2026", "15/5/2026"), "utf-8")
    changed, _ = build()
    before = {r["directive_id"]: r for r in first}
    after = {r["directive_id"]: r for r in changed}
    assert set(before) == set(after)
    moved = [i for i in before if before[i] != after[i]]
    assert len(moved) >= 1 and all(
        after[i]["deadline"] == "2026-05-15" for i in moved if i.endswith("m2.d1.t1")
    )
    assert all(before[i]["action"] == after[i]["action"] for i in before)
