"""Cleaning and structure of the shipped corpus, laws and dropped-in documents."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from index.cleaning import clean_lines
from index.loaders import corpus_files, read_text
from index.structure import find_date, find_signer, normalize_ket_luan, parse_document, split_inline
from index.textnorm import fold, has_diacritics, normalize

CORPUS = Path(__file__).resolve().parents[2] / "data" / "corpus"
ALQAC = Path(__file__).resolve().parents[3] / "shared" / "benchmarks" / "alqac2023"
LEFTOVERS = ["Có thể bạn quan tâm", "(Ảnh:", "[Video]", " date 2025-07", "Nguồn tra cứu", "Nơi nhận",
             "Lưu Văn phòng", "Thái Lan", "U23", "khu thương mại tự do", "Tây Ninh"]  # fmt: skip


def _parsed(name: str):
    return parse_document(name, read_text(CORPUS / name))


@pytest.mark.parametrize("path", sorted(CORPUS.glob("*.txt")), ids=lambda p: p.name)
def test_passages_are_verbatim_and_clean(path: Path) -> None:
    text = read_text(path)
    doc = parse_document(path.name, text)
    assert doc.passages, "every Kết luận file yields passages"
    for p in doc.passages:
        assert text[p.source.start : p.source.end] == p.text
        assert p.text == p.text.strip()
        assert p.url == f"/documents/{doc.document.document_id}#{p.passage_id}"
        for junk in LEFTOVERS:
            assert junk not in p.text, (p.passage_id, junk)


@pytest.mark.parametrize(
    ("name", "number", "issued", "report", "official"),
    [
        ("000_5d30afc99b18f1f4.txt", "183-KL/TW", dt.date(2025, 8, 1), "428-BC/BTCTW", False),
        ("001_32125652a63c81a5.txt", "221-KL/TW", dt.date(2025, 11, 28), "565-BC/BTCTW", True),
        ("002_b7aa1c61d36e9fd3.txt", "179-KL/TW", dt.date(2025, 7, 25), None, False),
        ("003_a134ef8411e6adba.txt", "179-KL/TW", dt.date(2025, 7, 25), "427-BC/BTCTW", False),
        ("004_e28c69e39740ef77.txt", "195-KL/TW", dt.date(2025, 9, 26), None, False),
    ],
)
def test_document_metadata(
    name: str, number: str, issued: dt.date, report: str | None, official: bool
) -> None:
    doc = _parsed(name).document
    assert doc.ket_luan == number
    assert doc.issued == issued
    assert doc.signer == "Trần Cẩm Tú"
    assert doc.report == report
    assert doc.official is official
    assert doc.title.startswith(f"Kết luận {number} về ")


def test_numbered_points_items_and_labels() -> None:
    doc = _parsed("000_5d30afc99b18f1f4.txt")
    by_label = {p.label: p for p in doc.passages}
    assert by_label["Kết luận 183-KL/TW, mục 3, đoạn 2"].text.startswith("Chỉ đạo các cơ quan rà soát")
    tu_phap = by_label["Kết luận 183-KL/TW, mục 3, đoạn 4, ý (2)"]
    assert tu_phap.text.startswith("(2) Bộ Tư pháp") and tu_phap.kind == "item"
    nested = by_label["Kết luận 183-KL/TW, mục 3, đoạn 3, ý (1)(i)"]
    assert nested.text.startswith("(i) Khẩn trương") and "Bộ Nội vụ" in nested.context
    assert {p.kind for p in doc.passages} >= {"metadata", "preamble", "paragraph", "item"}
    assert "Kết luận nêu rõ:" not in {p.text for p in doc.passages}


def test_list_after_colon_is_items_not_points() -> None:
    doc = _parsed("004_e28c69e39740ef77.txt")
    items = [p for p in doc.passages if p.kind == "item"]
    assert [p.text[:2] for p in items] == ["1.", "2.", "3."]
    assert items[2].text.startswith("3. Hoàn thiện mô hình")
    assert all(", ý " in p.label and "mục" not in p.label for p in items)


def test_official_text_header_signature_and_recipients() -> None:
    doc = _parsed("001_32125652a63c81a5.txt")
    kinds = {p.kind: p for p in doc.passages}
    assert kinds["metadata"].text.startswith("Số 221-KL/TW")
    assert kinds["signature"].text.endswith("Trần Cẩm Tú")
    assert not any("trực thuộc Trung ương,\n" in p.text or p.text.startswith("- ") for p in doc.passages)


def test_passage_ids_are_stable_across_parses() -> None:
    first = [p.passage_id for p in _parsed("000_5d30afc99b18f1f4.txt").passages]
    second = [p.passage_id for p in _parsed("000_5d30afc99b18f1f4.txt").passages]
    assert first == second and len(set(first)) == len(first)


def test_unrelated_news_after_trailer_is_gone() -> None:
    kept = " ".join(line.text for line in clean_lines(read_text(CORPUS / "003_a134ef8411e6adba.txt")))
    assert "Tô Lâm" not in kept and "Thời sự 24h" not in kept
    assert "trước ngày 30/7/2025" in kept


def test_law_articles_clauses_points() -> None:
    text = read_text(ALQAC / "corpus" / "luat-cu-tru.txt")
    doc = parse_document("luat-cu-tru.txt", text)
    assert doc.document.kind == "law" and doc.document.title == "Luật Cư trú"
    labels = {p.label for p in doc.passages}
    assert "Luật Cư trú, Điều 2, khoản 3" in labels
    assert "Luật Cư trú, Điều 4, khoản 2, điểm a" in labels
    point = next(p for p in doc.passages if p.label == "Luật Cư trú, Điều 4, khoản 2, điểm a")
    assert point.text.startswith("a) ") and "Điều 4." in point.context


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("Kết Luận số 183- KL/TW", "183-KL/TW"), ("số 221-KL/TW", "221-KL/TW"), ("195 - kl / tw", "195-KL/TW"),
     ("Kế hoạch 56-KH/BCĐ", None)],
)  # fmt: skip
def test_normalize_ket_luan(raw: str, expected: str | None) -> None:
    assert normalize_ket_luan(raw) == expected


@pytest.mark.parametrize(
    ("text", "year", "expected"),
    [("Hà Nội, ngày 28 tháng 11 năm 2025", None, dt.date(2025, 11, 28)), ("ngày 1/8/2025 của", None, dt.date(2025, 8, 1)),
     ("Ngày 26-9, Ủy viên", 2025, dt.date(2025, 9, 26)), ("ngày 26-9", None, None), ("ngày 31/2/2025", None, None)],
)  # fmt: skip
def test_find_date(text: str, year: int | None, expected: dt.date | None) -> None:
    assert find_date(text, year) == expected


def test_find_signer() -> None:
    assert find_signer("Thường trực Ban Bí thư Trần Cẩm Tú đã ký") == "Trần Cẩm Tú"
    assert find_signer("T/M BỘ CHÍNH TRỊ\nTrần Cẩm Tú") == "Trần Cẩm Tú"
    assert find_signer("không có ai") is None


def test_split_inline_sequences() -> None:
    text = "Lãnh đạo: (1) Bộ A: (i) việc một; (ii) việc hai. (2) Bộ B làm (3) việc"
    lead, items = split_inline(text, 100)
    assert lead == (100, 109)  # "Lãnh đạo:"
    assert [i.marker for i in items] == ["(1)", "(i)", "(ii)", "(2)", "(3)"]
    assert items[0].start == 110
    # a lone "(2)" inside a sentence is a reference, not a list
    assert split_inline("như quy định tại khoản (2) của Điều này", 0) == (None, [])


@pytest.mark.parametrize(
    ("typed", "clean"),
    [("Đảng uỷ", "Đảng ủy"), ("hoá", "hóa"), ("QUÝ", "QUÝ"), ("thuỷ lợi", "thủy lợi"), ("khoẻ", "khỏe"),
     ("ĐẢNG UỶ", "ĐẢNG ỦY"), ("hoàn thành", "hoàn thành")],
)  # fmt: skip
def test_normalize_tone_placement(typed: str, clean: str) -> None:
    assert normalize(typed) == clean


def test_fold_and_nfd() -> None:
    import unicodedata

    nfd = unicodedata.normalize("NFD", "Bộ Tư pháp Đảng")
    assert fold(nfd) == fold("Bộ Tư pháp Đảng") == "bo tu phap dang"
    assert has_diacritics("Bộ") and not has_diacritics("bo tu phap")


def test_loaders_read_html_docx_markdown(tmp_path: Path) -> None:
    import docx

    (tmp_path / "a.md").write_text("# Tiêu đề\n\nĐoạn một có nội dung.\n", "utf-8")
    (tmp_path / "b.html").write_text(
        "<html><body><nav>Menu trang</nav><article><h1>Thông báo</h1><p>Ủy ban nhân dân xã thông báo lịch tiếp dân"
        " vào thứ Hai hằng tuần tại trụ sở mới của xã.</p><p>Người dân mang theo căn cước công dân.</p></article>"
        "</body></html>",
        "utf-8",
    )
    document = docx.Document()
    document.add_paragraph("Điều 1. Phạm vi")
    document.add_paragraph("Văn bản này quy định về tiếp dân.")
    document.save(str(tmp_path / "c.docx"))
    (tmp_path / "README.md").write_text("not a document", "utf-8")
    files = corpus_files(tmp_path)
    assert [f.name for f in files] == ["a.md", "b.html", "c.docx"]
    assert "lịch tiếp dân" in read_text(tmp_path / "b.html")
    assert read_text(tmp_path / "c.docx").startswith("Điều 1. Phạm vi")
    md = parse_document("a.md", read_text(tmp_path / "a.md"))
    assert md.document.title == "Tiêu đề" and md.passages[0].text == "Đoạn một có nội dung."


def test_loader_reads_pdf(tmp_path: Path) -> None:
    stream = b"BT /F1 12 Tf 72 720 Td (Dieu 1. Pham vi dieu chinh cua van ban nay.) Tj ET"
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R /Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out, offsets = bytearray(b"%PDF-1.4\n"), []
    for number, body in enumerate(objects, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % o for o in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    (tmp_path / "d.pdf").write_bytes(bytes(out))
    assert "Dieu 1. Pham vi dieu chinh" in read_text(tmp_path / "d.pdf")


def test_bad_files_give_one_line_errors(tmp_path: Path) -> None:
    from index.errors import BadCorpus

    (tmp_path / "bad.txt").write_bytes(b"\xff\xfe\x00 not utf-8 \xc3")
    with pytest.raises(BadCorpus, match="not UTF-8"):
        read_text(tmp_path / "bad.txt")
    (tmp_path / "broken.docx").write_bytes(b"PK not really a zip")
    with pytest.raises(BadCorpus, match=r"cannot read \.docx"):
        read_text(tmp_path / "broken.docx")
    with pytest.raises(BadCorpus, match="not found"):
        corpus_files(tmp_path / "missing")
