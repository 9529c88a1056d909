"""Documents in: content sniffing, text extraction, URL fetching with its SSRF guard (against a loopback
HTTP server), and the library's add / replace / remove jobs over a small corpus (hashing embedder)."""

from __future__ import annotations

import io
import json
import shutil
import threading
import time
import zipfile
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from index.embedding import HashingEmbedder
from index.errors import BadDocument, DocumentTooLarge, NotFound, UnsupportedMedia
from index.fetch import check_url, fetch
from index.ingest import extract, reflow, sniff
from index.layout import current_build, load_documents, load_passages
from index.library import Library
from index.settings import IndexSettings

ROOT = Path(__file__).resolve().parents[2]
OFFICIAL_221 = ROOT / "data" / "corpus" / "001_32125652a63c81a5.txt"
PRESS_183 = ROOT / "data" / "corpus" / "000_5d30afc99b18f1f4.txt"


def _docx(paragraphs: list[str]) -> bytes:
    import docx

    document = docx.Document()
    for p in paragraphs:
        document.add_paragraph(p)
    out = io.BytesIO()
    document.save(out)
    return out.getvalue()


# --- sniffing and extraction ------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("data", "kind"),
    [
        (b"%PDF-1.7\n...", "pdf"),
        ("Kết luận số 1".encode(), "text"),
        (b"\xef\xbb\xbfplain text with a BOM", "text"),
        (b"<!DOCTYPE html><html><body><p>x</p></body></html>", "html"),
        (b"<div><p>a fragment</p></div>", "html"),
    ],
)
def test_sniff_by_content(data: bytes, kind: str) -> None:
    assert sniff(data) == kind


def test_sniff_knows_docx_by_its_parts_not_its_name() -> None:
    assert sniff(_docx(["Một đoạn."])) == "docx"


@pytest.mark.parametrize(
    "data",
    [
        b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR",  # an image
        b"MZ\x90\x00\x03\x00\x00\x00",  # a Windows program
        "chữ Việt".encode("utf-16"),  # not UTF-8
        b"\xff\xfe\xfa\xfb latin garbage \xe9\xe8",
    ],
)
def test_sniff_refuses_what_it_cannot_read(data: bytes) -> None:
    with pytest.raises(UnsupportedMedia):
        sniff(data)


def test_sniff_refuses_a_zip_that_is_not_docx() -> None:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as z:
        z.writestr("notes.txt", "x")
    with pytest.raises(UnsupportedMedia):
        sniff(out.getvalue())


@pytest.mark.parametrize(
    ("data", "kind"),
    [
        (b"%PDF-1.4\n1 0 obj << /Type /Catalog >> garbage without pages\n%%EOF", "pdf"),
        (b"%PDF-1.4\n" + bytes(range(256)) * 4, "pdf"),
    ],
)
def test_damaged_pdf_is_a_clear_error(data: bytes, kind: str) -> None:
    with pytest.raises(BadDocument) as info:
        extract(data, kind)  # type: ignore[arg-type]
    assert "PDF" in info.value.message


def test_damaged_docx_is_a_clear_error() -> None:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as z:
        z.writestr("word/document.xml", "<not xml")
    data = out.getvalue()
    assert sniff(data) == "docx"
    with pytest.raises(BadDocument) as info:
        extract(data, "docx")
    assert "DOCX" in info.value.message


def test_docx_and_html_text() -> None:
    assert extract(_docx(["Đoạn một.", "Đoạn hai."]), "docx").text == "Đoạn một.\nĐoạn hai."
    page = (
        "<html><head><title>t</title></head><body><nav>Trang chủ | Tin tức</nav><article><h1>Kết luận</h1>"
        + "".join(f"<p>Đoạn văn thứ {i} của bài viết về Kết luận của Bộ Chính trị.</p>" for i in range(8))
        + "</article><footer>Bản quyền</footer></body></html>"
    )
    text = extract(page.encode(), "html").text
    assert "Đoạn văn thứ 7" in text and "Bản quyền" not in text and "Trang chủ" not in text


@pytest.mark.parametrize(
    ("ocr", "flowed"),
    [
        ("Bộ Chính trị yêu cầu các\ncấp uỷ khẩn trương.\n\nĐoạn hai.", "Bộ Chính trị yêu cầu các cấp uỷ khẩn trương.\nĐoạn hai."),
        ("kết luận như sau:\n1. Thống nhất với\nBáo cáo.\n2. Yêu cầu:\n- Bộ Nội vụ", "kết luận như sau:\n1. Thống nhất với Báo cáo.\n2. Yêu cầu:\n- Bộ Nội vụ"),
    ],
)  # fmt: skip
def test_reflow_joins_wrapped_lines_and_keeps_items(ocr: str, flowed: str) -> None:
    assert reflow(ocr) == flowed


# --- URLs ---------------------------------------------------------------------------------------------
ARTICLE = (
    "<html><body><article><h1>Tin</h1>"
    + "".join(f"<p>Đoạn {i}: Bộ Chính trị yêu cầu hoàn thành nhiệm vụ.</p>" for i in range(6))
    + "</article></body></html>"
).encode()


class _Handler(BaseHTTPRequestHandler):
    def log_message(self, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        port = self.server.server_address[1]
        routes = {
            "/article": (200, {"Content-Type": "text/html; charset=utf-8"}, ARTICLE),
            "/hop": (302, {"Location": "/article"}, b""),
            "/to-loopback": (302, {"Location": f"http://127.0.0.1:{port}/article"}, b""),
            "/big": (200, {"Content-Type": "text/plain"}, b"x" * 5000),
            "/missing": (404, {}, b"no"),
        }
        if self.path == "/slow":
            self.send_response(200)
            self.send_header("Content-Length", "100")
            self.end_headers()
            self.wfile.write(b"x")
            self.wfile.flush()
            time.sleep(2)  # the server is slow on purpose; the client must give up first
            return
        status, headers, body = routes.get(self.path, (404, {}, b""))
        self.send_response(status)
        for k, v in headers.items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture(scope="module")
def web() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"localhost:{server.server_address[1]}"
    server.shutdown()


def test_fetch_follows_a_redirect_and_reads_the_page(web: str) -> None:
    fetched = fetch(f"http://{web}/hop", max_bytes=100_000, allow={web})
    assert fetched.url.endswith("/article") and fetched.data == ARTICLE


@pytest.mark.parametrize(
    ("path", "error", "reason"),
    [
        ("/to-loopback", BadDocument, "private or local"),  # a redirect to a private address is re-checked
        ("/big", DocumentTooLarge, "larger than"),
        ("/missing", BadDocument, "HTTP 404"),
        ("/slow", BadDocument, "within"),
    ],
)
def test_fetch_refuses_with_a_reason(web: str, path: str, error: type[Exception], reason: str) -> None:
    with pytest.raises(error) as info:
        fetch(f"http://{web}{path}", max_bytes=1000, timeout=0.5, allow={web})
    assert reason in str(info.value)


@pytest.mark.parametrize(
    "url",
    [
        "file:///etc/passwd",
        "ftp://example.org/x.pdf",
        "http://127.0.0.1/",
        "http://localhost:8000/",
        "http://10.1.2.3/x",
        "http://192.168.1.1/",
        "http://169.254.169.254/latest/meta-data/",  # cloud metadata
        "http://[::1]/",
        "http://0.0.0.0/",
        "http:///no-host",
    ],
)
def test_check_url_refuses_non_http_and_private_addresses(url: str) -> None:
    with pytest.raises(BadDocument):
        check_url(url)


def test_check_url_accepts_a_public_address() -> None:
    check_url("https://example.org/kl.pdf", resolver=lambda host, port: ["93.184.215.14"])


def test_check_url_refuses_a_name_that_resolves_privately() -> None:
    with pytest.raises(BadDocument, match="private"):
        check_url(
            "https://intranet.example/kl.pdf", resolver=lambda host, port: ["93.184.215.14", "10.0.0.7"]
        )


# --- the library ----------------------------------------------------------------------------------------
@pytest.fixture()
def library(tmp_path: Path) -> Library:
    """A data dir with two shipped texts indexed (hashing-64), and a library over it."""
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    shutil.copy(PRESS_183, corpus)
    shutil.copy(ROOT / "data" / "corpus" / "002_b7aa1c61d36e9fd3.txt", corpus)
    settings = IndexSettings(data_dir=tmp_path, embedding_model="hashing-64", max_document_bytes=200_000)
    from index.build import build_index

    build_index([corpus], settings.index_dir, HashingEmbedder(64), progress=False, log=lambda _: None)
    return Library(settings, lambda: HashingEmbedder(64))


def _indexed(library: Library) -> dict[str, object]:
    return {d.document_id: d for d in load_documents(current_build(library.settings.index_dir))}


def test_add_keeps_the_original_indexes_it_and_logs_who(library: Library) -> None:
    data = OFFICIAL_221.read_bytes()
    upload = library.accept(data, "kl221.txt")
    job = library.submit_add(upload, "key:abc")
    assert job.state == "queued" and job.document_id.startswith("kl221-")
    done = library.run(job.job_id)
    assert (done.state, done.progress, done.error) == ("done", 1.0, None)
    assert (library.originals / f"{upload.sha256}.txt").read_bytes() == data
    docs = _indexed(library)
    assert job.document_id in docs
    passages = [
        p
        for p in load_passages(current_build(library.settings.index_dir))
        if p.document_id == job.document_id
    ]
    assert passages and all(p.url.startswith(f"/documents/{job.document_id}#") for p in passages)
    audit = [json.loads(line) for line in (library.admin / "audit.jsonl").read_text("utf-8").splitlines()]
    assert [a["action"] for a in audit] == ["add", "add.done"] and {a["actor"] for a in audit} == {"key:abc"}


def test_the_same_bytes_again_are_the_same_document(library: Library) -> None:
    first = library.submit_add(library.accept(OFFICIAL_221.read_bytes(), "a.txt"), "key:1")
    library.run(first.job_id)
    build = current_build(library.settings.index_dir)
    again = library.submit_add(library.accept(OFFICIAL_221.read_bytes(), "b.txt"), "key:1")
    assert again.document_id == first.document_id and again.state == "done"
    assert current_build(library.settings.index_dir) == build  # nothing rebuilt
    shipped = library.submit_add(library.accept(PRESS_183.read_bytes(), "183.txt"), "key:1")
    assert shipped.state == "done" and shipped.document_id in _indexed(library)


def test_only_the_changed_passages_are_embedded(library: Library) -> None:
    counted = HashingEmbedder(64)
    seen: list[int] = []
    original = counted.embed_passages
    counted.embed_passages = lambda texts: (seen.append(len(texts)), original(texts))[1]  # type: ignore[method-assign]
    library._embedder = lambda: counted
    job = library.submit_add(library.accept(OFFICIAL_221.read_bytes(), "kl221.txt"), "key:1")
    assert library.run(job.job_id).state == "done"
    added = _indexed(library)[job.document_id].passage_count  # type: ignore[attr-defined]
    assert sum(seen) == added


def test_a_text_without_a_ket_luan_number_is_a_plain_document(library: Library) -> None:
    text = "Hướng dẫn sử dụng hệ thống\nNgười dùng đặt câu hỏi bằng tiếng Việt và nhận câu trả lời có trích dẫn.\n"
    job = library.submit_add(library.accept(text.encode(), "Hướng dẫn.txt"), "key:1")
    assert library.run(job.job_id).state == "done"
    doc = _indexed(library)[job.document_id]
    assert doc.ket_luan is None and doc.kind == "text"  # type: ignore[attr-defined]
    assert job.document_id.startswith("huong-dan-")


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"%PDF-1.4\n1 0 obj << /Type /Catalog >> garbage\n%%EOF", "PDF"),
        (b"   \n\n  ", "empty"),
    ],
)
def test_a_failed_job_keeps_the_corpus_and_the_served_build(
    library: Library, data: bytes, reason: str
) -> None:
    build = current_build(library.settings.index_dir)
    corpus = sorted(p.name for p in library.settings.corpus_dir.iterdir())
    try:
        job = library.submit_add(library.accept(data, "broken.pdf"), "key:1")
    except BadDocument as exc:  # refused at once (an empty body): nothing queued
        assert reason in exc.message
        return
    failed = library.run(job.job_id)
    assert failed.state == "failed" and reason in (failed.error or "")
    assert current_build(library.settings.index_dir) == build
    assert sorted(p.name for p in library.settings.corpus_dir.iterdir()) == corpus


def test_too_large_is_refused_before_anything_is_kept(library: Library) -> None:
    with pytest.raises(DocumentTooLarge):
        library.accept(b"x" * 200_001, "big.txt")
    assert not library.originals.exists() or not any(library.originals.iterdir())


def test_replace_keeps_the_id_and_remove_drops_it(library: Library) -> None:
    job = library.submit_add(library.accept(OFFICIAL_221.read_bytes(), "kl221.txt"), "key:1")
    library.run(job.job_id)
    changed = OFFICIAL_221.read_text("utf-8").replace("Hà Nội", "Hà Nội (bản sửa)")
    replaced = library.submit_add(
        library.accept(changed.encode(), "kl221-v2.txt"), "key:2", replace=job.document_id
    )
    assert library.run(replaced.job_id).state == "done"
    passages = load_passages(current_build(library.settings.index_dir))
    assert any("bản sửa" in p.text for p in passages if p.document_id == job.document_id)
    assert sum(1 for p in library.settings.corpus_dir.glob("*.txt")) == 3
    shipped = next(d for d in _indexed(library) if d != job.document_id)
    for document_id in (job.document_id, shipped):
        removed = library.submit_remove(document_id, "key:2")
        assert library.run(removed.job_id).state == "done"
        assert document_id not in _indexed(library)
    with pytest.raises(NotFound):
        library.submit_remove(shipped, "key:2")


def test_first_change_copies_the_shipped_corpus(tmp_path: Path) -> None:
    settings = IndexSettings(data_dir=tmp_path, embedding_model="hashing-64")
    library = Library(settings, lambda: HashingEmbedder(64))
    job = library.submit_add(
        library.accept("Ghi chú\nMột văn bản ngắn để thử.\n".encode(), "note.txt"), "cli:root"
    )
    assert library.run(job.job_id).state == "done"
    shipped = sorted(p.name for p in (ROOT / "data" / "corpus").glob("*.txt"))
    assert set(shipped) < {p.name for p in settings.corpus_dir.glob("*.txt")}
    assert len(_indexed(library)) == len(shipped) + 1


def test_an_interrupted_job_reads_as_failed(library: Library) -> None:
    job = library.submit_add(library.accept(OFFICIAL_221.read_bytes(), "kl221.txt"), "key:1")
    library._save(job.model_copy(update={"state": "running", "pid": 2**22 + 12345}))
    assert library.job(job.job_id).state == "failed"


def test_the_document_list_says_where_each_text_came_from(library: Library, web: str) -> None:
    library.settings = library.settings.model_copy(update={"fetch_allow": web})
    fetched = library.submit_add(library.accept_url(f"http://{web}/article"), "key:1")
    uploaded = library.submit_add(library.accept(OFFICIAL_221.read_bytes(), "kl221.txt"), "key:1")
    for job in (fetched, uploaded):
        assert library.run(job.job_id).state == "done"
    listed = {d["document_id"]: d for d in library.documents(_indexed(library))}  # type: ignore[arg-type]
    assert listed[fetched.document_id]["origin"] == "url"
    assert listed[fetched.document_id]["source_url"] == f"http://{web}/article"
    assert listed[uploaded.document_id]["origin"] == "upload"
    shipped = set(listed) - {fetched.document_id, uploaded.document_id}
    assert len(shipped) == 2 and {listed[d]["origin"] for d in shipped} == {"shipped"}
