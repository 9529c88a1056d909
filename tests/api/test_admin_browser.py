"""The operator console /admin in headless Chromium (Debian's package), driven by Playwright, over a live
loopback app whose data dir is a temporary copy of one shipped text: sign in with the admin key, add a small
Kết luận by drag-and-drop and by the file chooser, watch the job's progress to the end, see the documents
with status and source, replace and remove with the confirmation dialog; a wrong key gets a Vietnamese error;
the page is Vietnamese and loads nothing from outside the service. Screenshots go to test-artifacts/."""

from __future__ import annotations

import re
import shutil
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Dialog, Locator, Page, Route, expect

from api.app import create_app
from bot.stores import sqlite_stores
from index.build import build_index
from index.embedding import HashingEmbedder
from index.settings import IndexSettings
from tests.api import test_widget_browser
from tests.api.conftest import FakeChatService, make_settings, run_server
from tests.api.test_widget_browser import ARTIFACTS, DESKTOP

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = "000_5d30afc99b18f1f4.txt"
ADMIN = "admin-secret-browser"
API_KEY = "api-key-browser"


def _ket_luan(number: int, deadline: str) -> bytes:
    return f"""BAN CHẤP HÀNH TRUNG ƯƠNG
ĐẢNG CỘNG SẢN VIỆT NAM
Số {number}-KL/TW
Hà Nội, ngày 3 tháng 12 năm 2026
KẾT LUẬN
CỦA BỘ CHÍNH TRỊ
VỀ THÍ ĐIỂM SỐ HÓA HỒ SƠ LƯU TRỮ CẤP XÃ
Bộ Chính trị kết luận như sau:
1. Đảng ủy Chính phủ lãnh đạo, chỉ đạo Bộ Nội vụ hoàn thành số hóa hồ sơ lưu trữ của các xã, phường \
trước ngày {deadline}.
2. Ban Tổ chức Trung ương theo dõi, đôn đốc, định kỳ báo cáo Bộ Chính trị.
T/M BỘ CHÍNH TRỊ
""".encode()


browser = test_widget_browser.browser  # the one module-scoped Chromium fixture of the browser suites


class _Source(BaseHTTPRequestHandler):
    """An intranet web server holding Kết luận 996 (allowed by KETLUAN_FETCH_ALLOW in `site`)."""

    def log_message(self, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        body = _ket_luan(996, "30/9/2027") if self.path == "/kl-996.txt" else b"not here"
        self.send_response(200 if self.path == "/kl-996.txt" else 404)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture(scope="module")
def source() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Source)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"127.0.0.1:{server.server_address[1]}"
    server.shutdown()


@pytest.fixture()
def site(tmp_path: Path, source: str) -> Iterator[str]:
    """The whole app, administration on, over a data dir holding one shipped text (hashing embedder)."""
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    shutil.copy(ROOT / "data" / "corpus" / SHIPPED, corpus)
    index = IndexSettings(data_dir=tmp_path, embedding_model="hashing-64", max_document_bytes=100_000,
                          fetch_allow=source)  # fmt: skip
    build_index([corpus], index.index_dir, HashingEmbedder(64), progress=False, log=lambda _: None)
    settings = make_settings(index, admin_keys=ADMIN, api_keys=API_KEY, auth_failures_per_minute=20)
    app = create_app(settings, stores=sqlite_stores(":memory:"),
                     service_factory=lambda index, store, llm: FakeChatService(index))  # fmt: skip
    with run_server(app) as base_url:
        yield base_url


@pytest.fixture()
def page(browser: Browser, site: str) -> Iterator[Page]:
    """A Vietnamese desktop tab; every request that leaves the service is refused and fails the test."""
    context = browser.new_context(viewport=DESKTOP, reduced_motion="reduce", locale="vi-VN")
    context.set_default_timeout(15_000)
    outside: list[str] = []

    def refuse(route: Route) -> None:
        outside.append(route.request.url)
        route.abort()

    context.route(re.compile(r"^(?!" + re.escape(site) + r"/)(?!data:|blob:)"), refuse)
    tab = context.new_page()
    errors: list[str] = []
    tab.on("pageerror", lambda exc: errors.append(str(exc)))
    yield tab
    context.close()
    assert outside == [], f"the console loaded from outside the service: {outside}"
    assert errors == [], f"JavaScript errors on the page: {errors}"


def _sign_in(page: Page, site: str, key: str) -> None:
    page.goto(site + "/admin")
    page.get_by_label("Khóa quản trị").fill(key)
    page.get_by_role("button", name="Đăng nhập").click()


def _row(page: Page, text: str) -> Locator:
    return page.locator("#documents tr").filter(has_text=text)


def _watch_job(page: Page) -> None:
    """Record every label and progress value the job box shows (window.jobTrail), for the assertions."""
    page.evaluate(
        """() => {
          window.jobTrail = [];
          const note = () => window.jobTrail.push([document.getElementById("job-label").textContent,
                                                   document.getElementById("job-progress").value]);
          new MutationObserver(note).observe(document.getElementById("job"),
                                             {subtree: true, childList: true, characterData: true, attributes: true});
        }"""
    )


def _job_finished(page: Page, done: str = "Xong: văn bản đã được tra cứu.") -> list[list[object]]:
    # the trail, not the label: a label left from the change before must not count as this one's end
    page.wait_for_function(
        "done => window.jobTrail.some(([label]) => label === done)", arg=done, timeout=30_000
    )
    expect(page.locator("#job-label")).to_have_text(done)
    expect(page.locator("#job-error")).to_be_hidden()
    assert page.locator("#job-progress").evaluate("p => p.value") == 1
    trail: list[list[object]] = page.evaluate("window.jobTrail")
    return trail


def _drop(page: Page, name: str, data: bytes) -> None:
    transfer = page.evaluate_handle(
        """([name, text]) => {
          const dt = new DataTransfer();
          dt.items.add(new File([text], name, {type: "text/plain"}));
          return dt;
        }""",
        [name, data.decode()],
    )
    page.dispatch_event("#drop", "dragenter", {"dataTransfer": transfer})
    expect(page.locator("#drop")).to_have_class(re.compile(r"\bover\b"))
    page.dispatch_event("#drop", "drop", {"dataTransfer": transfer})


def test_a_wrong_key_gets_a_vietnamese_error_and_no_console(page: Page, site: str) -> None:
    _sign_in(page, site, "not-the-key")
    error = page.get_by_role("alert")
    expect(error).to_be_visible()
    expect(error).to_have_text(re.compile(r"Khóa không đúng"))
    expect(page.locator("#console")).to_be_hidden()
    expect(page.get_by_label("Khóa quản trị")).to_have_value("")
    _sign_in(page, site, API_KEY)  # an API key opens nothing either
    expect(page.get_by_role("alert")).to_be_visible()
    expect(page.locator("#console")).to_be_hidden()


def test_add_replace_and_remove_through_the_console(page: Page, site: str) -> None:
    page.goto(site + "/admin")
    assert page.locator("html").get_attribute("lang") == "vi"
    expect(page.get_by_role("heading", name="Quản trị", exact=True)).to_be_visible()
    external = page.evaluate(
        """() => [...document.querySelectorAll("[src],[href]")].map(e => e.getAttribute("src") || e.getAttribute("href"))
                 .filter(u => /^(https?:)?\\/\\//.test(u))"""
    )
    assert external == []

    _sign_in(page, site, ADMIN)
    expect(page.locator("#console")).to_be_visible()
    expect(page.get_by_role("alert")).to_be_hidden()
    expect(page.locator("#login")).to_be_hidden()  # signed in: no key field left on the page
    expect(page.locator("#job")).to_be_hidden()  # no change yet: no empty progress bar
    shipped = _row(page, "183")
    expect(shipped).to_have_count(1)
    expect(shipped.locator(".status")).to_have_text("Đang tra cứu")
    expect(shipped.locator("td").nth(2)).to_have_text(re.compile(r"^Kho văn bản gốc"))

    # add by drag-and-drop: the upload, the job's states and its progress bar up to done
    _watch_job(page)
    _drop(page, "kl-998.txt", _ket_luan(998, "31/12/2026"))
    trail = _job_finished(page)
    labels = [label for label, _ in trail]
    assert labels[0] == "Đang tải lên kl-998.txt…"
    values = [float(str(v)) for _, v in trail]
    assert values == sorted(values) and 0 <= values[0] < 1 and values[-1] == 1
    added = _row(page, "998-KL/TW")
    expect(added).to_have_count(1)
    expect(added.locator(".status")).to_have_text("Đang tra cứu")
    expect(added.locator("td").nth(2)).to_have_text(re.compile(r"^Tệp tải lên · [0-9a-f]{10}$"))
    expect(added.get_by_role("link").first).to_have_attribute("href", re.compile(r"^/documents/kl998-"))

    # add by the file chooser behind the drop zone
    _watch_job(page)
    with page.expect_file_chooser() as chooser:
        page.locator("#drop").click()
    chooser.value.set_files(
        [{"name": "kl-997.txt", "mimeType": "text/plain", "buffer": _ket_luan(997, "1/6/2027")}]
    )
    _job_finished(page)
    expect(_row(page, "997-KL/TW")).to_have_count(1)
    page.screenshot(path=str(ARTIFACTS / "admin-desktop.png"), full_page=True)

    # replace, behind a confirmation that names both; the id stays, the text changes
    dialogs: list[str] = []

    def accept(dialog: Dialog) -> None:
        dialogs.append(dialog.message)
        dialog.accept()

    page.once("dialog", accept)
    document_id = str(added.get_by_role("link").first.get_attribute("href")).rsplit("/", 1)[1]
    _watch_job(page)
    with page.expect_file_chooser() as chooser:
        added.get_by_role("button", name="Thay thế").click()
    chooser.value.set_files(
        [{"name": "kl-998-sua.txt", "mimeType": "text/plain", "buffer": _ket_luan(998, "30/6/2027")}]
    )
    _job_finished(page)
    assert len(dialogs) == 1 and "Thay văn bản" in dialogs[0] and "kl-998-sua.txt" in dialogs[0]
    expect(added).to_have_count(1)
    expect(added.get_by_role("link").first).to_have_attribute("href", f"/documents/{document_id}")
    assert "30/6/2027" in page.request.get(f"{site}/documents/{document_id}").text()

    # remove: a dismissed confirmation removes nothing, an accepted one removes the document
    page.once("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    added.get_by_role("button", name="Gỡ bỏ").click()
    assert len(dialogs) == 2 and dialogs[1].startswith("Gỡ bỏ văn bản")
    expect(added).to_have_count(1)
    _watch_job(page)
    page.once("dialog", accept)
    added.get_by_role("button", name="Gỡ bỏ").click()
    _job_finished(page, "Xong: văn bản đã được gỡ bỏ, không còn được tra cứu.")
    expect(added).to_have_count(0)
    expect(_row(page, "997-KL/TW")).to_have_count(1)
    assert page.request.get(f"{site}/documents/{document_id}").status == 404


def test_a_url_is_fetched_and_a_damaged_file_fails_with_its_reason(
    page: Page, site: str, source: str
) -> None:
    _sign_in(page, site, ADMIN)
    expect(page.locator("#console")).to_be_visible()
    _watch_job(page)
    page.get_by_label("Hoặc tải từ địa chỉ web").fill(f"http://{source}/kl-996.txt")
    page.get_by_role("button", name="Tải về và thêm").click()
    _job_finished(page)
    fetched = _row(page, "996-KL/TW")
    expect(fetched.locator(".status")).to_have_text("Đang tra cứu")
    expect(fetched.locator("td").nth(2).get_by_role("link")).to_have_attribute(
        "href", f"http://{source}/kl-996.txt"
    )

    _watch_job(page)
    page.get_by_label("Hoặc tải từ địa chỉ web").fill("http://169.254.169.254/latest/meta-data/")
    page.get_by_role("button", name="Tải về và thêm").click()
    expect(page.locator("#job-label")).to_have_text("Không thêm được văn bản:")
    expect(page.locator("#job-error")).to_contain_text("private or local")

    _watch_job(page)
    with page.expect_file_chooser() as chooser:
        page.locator("#drop").click()
    chooser.value.set_files([{"name": "hong.pdf", "mimeType": "application/pdf",
                              "buffer": b"%PDF-1.4\n1 0 obj << /Type /Catalog >> garbage\n%%EOF"}])  # fmt: skip
    page.wait_for_function("() => window.jobTrail.some(([label]) => label === 'Không thêm được văn bản:')")
    expect(page.locator("#job-error")).to_contain_text("PDF")
    failed = _row(page, "hong.pdf")
    expect(failed.locator(".status")).to_have_text("Lỗi")
    expect(failed.locator(".error")).to_contain_text("PDF")
    expect(_row(page, "996-KL/TW")).to_have_count(1)  # the index kept serving what it had


def test_a_failed_removal_says_the_removal_failed(page: Page, site: str) -> None:
    _sign_in(page, site, ADMIN)
    expect(page.locator("#console")).to_be_visible()
    shipped = _row(page, "183")
    expect(shipped).to_have_count(1)
    _watch_job(page)
    page.once("dialog", lambda dialog: dialog.accept())
    shipped.get_by_role("button", name="Gỡ bỏ").click()  # the only text: an index of nothing is refused
    page.wait_for_function("() => window.jobTrail.some(([label]) => label === 'Không gỡ bỏ được văn bản:')")
    expect(page.locator("#job-label")).to_have_text("Không gỡ bỏ được văn bản:")
    expect(page.locator("#job-error")).to_contain_text("no .txt")
    labels = [label for label, _ in page.evaluate("window.jobTrail")]
    assert "Không thêm được văn bản:" not in labels
    expect(shipped.locator(".status")).to_have_text("Đang tra cứu")  # still served
