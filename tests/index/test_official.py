"""One Kết luận told by its official text and a press report: where both say the same, retrieval cites the
official text (index/official.py, SearchIndex.search_hits); what only the report says stays the report's;
a filter that leaves only the report keeps the report. Hashing embedder over 221's official text and a
press report of it written for the test."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from bot.service import ChatService
from bot.settings import BotSettings
from bot.stores import sqlite_stores
from index.build import build_index
from index.embedding import HashingEmbedder
from index.models import Document, Passage, Source
from index.official import official_twins
from index.search import SearchFilters, SearchIndex, open_index
from index.settings import IndexSettings

ROOT = Path(__file__).resolve().parents[2]
OFFICIAL_221 = ROOT / "data" / "corpus" / "001_32125652a63c81a5.txt"
SAME = (
    "Giao Đảng ủy Chính phủ lãnh đạo, chỉ đạo các bộ, ngành tiếp tục phối hợp với Bộ Tư pháp và các cơ quan "
    "liên quan khẩn trương rà soát toàn bộ hệ thống văn bản quy phạm pháp luật theo từng ngành, từng lĩnh vực."
)
ONLY_IN_THE_REPORT = "Phóng viên ghi nhận nhiều địa phương đã tổ chức hội nghị quán triệt kết luận ngay trong tuần đầu tháng 12."
PRESS_221 = f"""Bộ Chính trị, Ban Bí thư kết luận về hoạt động của bộ máy chính quyền địa phương 2 cấp

Thay mặt Bộ Chính trị, Thường trực Ban Bí thư Trần Cẩm Tú ký ban hành Kết luận số 221-KL/TW, ngày 28/11/2025 \
của Bộ Chính trị, Ban Bí thư về tình hình, kết quả hoạt động của bộ máy hệ thống chính trị và chính quyền \
địa phương 2 cấp.

Kết luận nêu rõ:

{SAME}

{ONLY_IN_THE_REPORT}
"""
QUESTION = "Ai rà soát toàn bộ hệ thống văn bản quy phạm pháp luật theo từng ngành, từng lĩnh vực?"


@pytest.fixture(scope="module")
def index(tmp_path_factory: pytest.TempPathFactory) -> SearchIndex:
    data = tmp_path_factory.mktemp("official")
    corpus = data / "corpus"
    corpus.mkdir()
    shutil.copy(OFFICIAL_221, corpus / "001_official_221.txt")
    (corpus / "002_press_221.txt").write_text(PRESS_221, "utf-8")
    settings = IndexSettings(data_dir=data, embedding_model="hashing-64")
    build_index([corpus], settings.index_dir, HashingEmbedder(64), progress=False, log=lambda _: None)
    return open_index(settings, HashingEmbedder(64))


def _official(index: SearchIndex, passage: Passage) -> bool:
    return index.document(passage.document_id).official


def test_the_corpus_holds_both_texts_of_221(index: SearchIndex) -> None:
    kinds = {d.official for d in index.documents.values() if d.ket_luan == "221-KL/TW"}
    assert kinds == {True, False}
    report = next(p for p in index.passages if not _official(index, p) and "rà soát toàn bộ" in p.text)
    assert SAME in report.text  # the report's own passage exists and could be cited


def test_what_both_say_is_cited_from_the_official_text(index: SearchIndex) -> None:
    hits = index.search_hits(QUESTION, k=5)
    top = hits[0].passage
    assert _official(index, top) and "rà soát toàn bộ hệ thống văn bản" in top.text
    assert top.label.startswith("Kết luận 221-KL/TW") and "bản tin" not in top.label
    assert not any("rà soát toàn bộ" in h.passage.text and not _official(index, h.passage) for h in hits)
    assert len({h.index for h in hits}) == len(hits)  # the official passage is not listed twice


def test_what_only_the_report_says_stays_the_reports(index: SearchIndex) -> None:
    top = index.search(
        "Phóng viên ghi nhận địa phương tổ chức hội nghị quán triệt trong tuần đầu tháng 12", k=3
    )[0]
    assert not _official(index, top) and ONLY_IN_THE_REPORT in top.text


def test_a_filter_that_leaves_only_the_report_cites_the_report(index: SearchIndex) -> None:
    press = next(d.document_id for d in index.documents.values() if not d.official)
    hits = index.search_hits(QUESTION, k=3, filters=SearchFilters(document_id=[press]))
    assert hits and hits[0].passage.document_id == press and SAME in hits[0].passage.text


def test_the_answer_cites_the_official_text(index: SearchIndex) -> None:
    service = ChatService(index, sqlite_stores(":memory:"), BotSettings(llm_base_url=None, redis_url=None))
    response = service.answer(QUESTION)
    assert response.answered and response.citations
    cited = [c for c in response.citations if "rà soát toàn bộ" in c.text]
    assert cited and all(index.document(c.document_id).official for c in cited)


def _passage(row: int, document_id: str, text: str, kind: str = "paragraph") -> Passage:
    return Passage(passage_id=f"p{row}", document_id=document_id, document_title="", ket_luan="221-KL/TW",
                   label="", text=text, source=Source(file="f", start=0, end=1), url="", kind=kind)  # type: ignore[arg-type]  # fmt: skip


@pytest.mark.parametrize(
    ("report", "kind", "twin"),
    [
        (SAME, "paragraph", True),  # one sentence of the official point
        (SAME.replace("Đảng ủy", "ĐẢNG UỶ").replace(",", " ,"), "item", True),  # case, tone mark, spaces
        (SAME.replace("khẩn trương ", ""), "paragraph", False),  # a word left out: not the same sentence
        (SAME + " " + SAME, "paragraph", True),
        (SAME.replace("Bộ Tư pháp", "Bộ Nội vụ"), "paragraph", False),  # another agency
        (ONLY_IN_THE_REPORT, "paragraph", False),
        (SAME + " " + ONLY_IN_THE_REPORT, "paragraph", False),  # and something the official text does not say
        ("Kết luận nêu rõ:", "paragraph", False),  # too short to match safely
        ("Thay mặt Bộ Chính trị, Thường trực Ban Bí thư ký", "signature", False),
        (SAME.split(" theo ")[0] + " theo kế hoạch riêng của Bộ Tư pháp và báo cáo kết quả hằng quý.", "paragraph", False),
    ],
)  # fmt: skip
def test_official_twins(report: str, kind: str, twin: bool) -> None:
    official_text = OFFICIAL_221.read_text("utf-8").splitlines()[15]  # point 3
    passages = [_passage(0, "official", official_text), _passage(1, "press", report, kind)]
    documents = {
        "official": Document(document_id="official", title="", ket_luan="221-KL/TW", source_file="a", official=True),
        "press": Document(document_id="press", title="", ket_luan="221-KL/TW", source_file="b"),
    }  # fmt: skip
    assert official_twins(passages, documents) == ({1: 0} if twin else {})
