"""The HTML pages and widget assets served by api/web.py, without a browser (see test_widget_browser.py)."""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Callable, Iterator
from html.parser import HTMLParser
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from api import web
from api.app import create_app
from api.settings import Settings
from index.errors import NotFound
from index.models import Document, Passage, Source
from index.search import MAX_QUERY_CHARS, SearchIndex
from tests.api.conftest import make_settings


class FakeDocuments:
    """A DocumentSource over a few hand-made documents."""

    def __init__(self, documents: list[Document], passages: list[Passage]) -> None:
        self.documents = {d.document_id: d for d in documents}
        self._passages = passages

    def document(self, document_id: str) -> Document:
        try:
            return self.documents[document_id]
        except KeyError:
            raise NotFound(document_id) from None

    def passages_of(self, document_id: str) -> list[Passage]:
        self.document(document_id)
        return [p for p in self._passages if p.document_id == document_id]


def pages_app(source: Any) -> FastAPI:
    app = FastAPI()
    app.include_router(web.router)
    app.dependency_overrides[web.web_index] = lambda: source
    return app


@pytest.fixture(scope="module")
def client(kl_index: SearchIndex) -> Iterator[TestClient]:
    with TestClient(pages_app(kl_index)) as c:
        yield c


class Elements(HTMLParser):
    """Every start tag with its attributes, in order, and the page's text."""

    def __init__(self, html: str) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data: str) -> None:
        self.text.append(data)

    def ids(self) -> list[str]:
        return [a["id"] for _, a in self.tags if a.get("id")]

    def find(self, tag: str, **attrs: str) -> list[dict[str, str | None]]:
        return [a for t, a in self.tags if t == tag and all(a.get(k) == v for k, v in attrs.items())]


def test_documents_page_groups_the_texts_of_each_ket_luan_newest_first(
    client: TestClient, kl_index: SearchIndex
) -> None:
    response = client.get("/documents")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    html = response.text
    links = re.findall(r'href="/documents/([^"#?]+)"', html)
    assert set(kl_index.documents) <= set(links)  # every text is reachable
    slugs = [link for link in links if re.fullmatch(r"kl-\d+", link)]
    assert slugs == ["kl-221", "kl-195", "kl-183", "kl-179"]  # one entry a Kết luận, newest first
    groups = {g.slug: g for g in web.groups_of(kl_index)}
    assert [t.document.document_id for t in groups["kl-221"].official] == ["kl221-9045a8"]
    assert [(t.order, t.of) for t in groups["kl-179"].press] == [(1, 2), (2, 2)]  # as the labels number them
    assert "Bản tin 1/2" in html and "Bản tin 2/2" in html and "Văn bản chính thức" in html
    subtitles = re.findall(r'<p class="doc-sub">(.*?)</p>', html, re.S)
    assert len(subtitles) == 4 and len(set(subtitles)) == 4, subtitles  # 195 and 221 share a title
    for document in kl_index.documents.values():
        assert document.issued is not None
        assert document.issued.strftime("%d/%m/%Y") in html
        if document.signer:
            assert document.signer in html
        assert document.source_file not in html  # a file name is no source for a reader
    assert "Dữ liệu cập nhật ngày" in html


@pytest.mark.parametrize(
    ("path", "location"),
    [
        ("/documents/221", "/documents/kl-221"),
        ("/documents/KL221", "/documents/kl-221"),
        ("/documents/221-KL-TW", "/documents/kl-221"),
        ("/documents/KL-183?hl=1-2", "/documents/kl-183?hl=1-2"),
        ("/documents/179", "/documents/kl-179"),
    ],
)
def test_readable_ids_redirect(client: TestClient, path: str, location: str) -> None:
    response = client.get(path, follow_redirects=False)
    assert response.status_code == 308
    assert response.headers["location"] == location


@pytest.mark.parametrize(("slug", "shown"), [("kl-221", "kl221-9045a8"), ("kl-179", "kl179-731941")])
def test_a_ket_luan_page_shows_its_main_text_and_names_the_others(
    client: TestClient, kl_index: SearchIndex, slug: str, shown: str
) -> None:
    response = client.get(f"/documents/{slug}")
    assert response.status_code == 200
    page = Elements(response.text)
    ids = [a["id"] for a in page.find("div") if "passage" in (a.get("class") or "").split()]
    assert ids == [p.passage_id for p in kl_index.passages_of(shown)]
    siblings = {
        d for d in kl_index.documents if kl_index.documents[d].ket_luan == kl_index.documents[shown].ket_luan
    }
    for other in siblings - {shown}:
        assert f'href="/documents/{other}"' in response.text
    assert client.get("/documents/kl-999").status_code == 404


def test_a_deep_link_marks_the_quoted_sentence(client: TestClient, kl_index: SearchIndex) -> None:
    passage = kl_index.passages_of("kl183-621b55")[4]
    start = passage.source.start + 10
    response = client.get(f"/documents/kl183-621b55?hl={start}-{start + 40}")
    marked = re.findall(r'<mark class="quoted">(.*?)</mark>', response.text, re.S)
    assert marked == [passage.text[10:50]]
    for hl in ("9-1", "abc", "0-99999999", "-5-3"):
        assert "<mark" not in client.get(f"/documents/kl183-621b55?hl={hl}").text, hl


def test_search_finds_titles_and_text_without_accents(client: TestClient, kl_index: SearchIndex) -> None:
    response = client.get("/documents", params={"q": "TRAM Y TE"})
    assert response.status_code == 200
    hits = re.findall(r'<a class="hit-label" href="([^"]+)">.*?<mark>(.*?)</mark>', response.text, re.S)
    assert hits and all(m.lower() == "trạm y tế" for _, m in hits), hits
    href = hits[0][0].replace("&amp;", "&")
    found = re.fullmatch(r"/documents/([^?]+)\?hl=(\d+)-(\d+)#(.+)", href)
    assert found, href
    text = kl_index.source_text(kl_index.document(found.group(1)).source_file)
    assert text[int(found.group(2)) : int(found.group(3))].lower() == "trạm y tế"
    titles = client.get("/documents", params={"q": "chuyen manh cap co so"}).text
    assert 'class="hit-titles"' in titles and "kl183-621b55" in titles
    nothing = client.get("/documents", params={"q": "không-có-từ-này-đâu"})
    assert nothing.status_code == 200 and "Không có văn bản hay đoạn nào" in nothing.text


def test_outlet_and_link_of_a_press_report_come_from_sources_json(
    tmp_path: Any, kl_index: SearchIndex
) -> None:
    (tmp_path / "sources.json").write_text(json.dumps({
        "003_a134ef8411e6adba.txt": {"outlet": "Báo Mẫu", "url": "https://bao-mau.example.vn/kl-179"},
        "002_b7aa1c61d36e9fd3.txt": {"outlet": "Tạp chí Thử", "url": "javascript:alert(1)"},
    }), "utf-8")  # fmt: skip

    class WithCorpus(FakeDocuments):
        manifest = SimpleNamespace(corpora=[str(tmp_path)], built_at="2026-01-02T03:04:05+00:00")

    source = WithCorpus(list(kl_index.documents.values()), kl_index.passages)
    with TestClient(pages_app(source)) as c:
        html = c.get("/documents").text
        assert "Báo Mẫu" in html and 'href="https://bao-mau.example.vn/kl-179"' in html
        assert "Tạp chí Thử" in html and "javascript:" not in html
        assert "02/01/2026" in html
        page = c.get("/documents/kl179-f0e277").text
        assert "Bản tin báo chí — Báo Mẫu" in page and "Xem bài gốc" in page


@pytest.mark.parametrize(
    ("contact", "href"),
    [("hoidap@tinh.example.vn", "mailto:hoidap@tinh.example.vn"), ("0243 123 456", "tel:0243123456"),
     ("https://tinh.example.vn/lien-he", "https://tinh.example.vn/lien-he"), ("Phòng 12", None)],
)  # fmt: skip
def test_operator_name_and_contact_on_every_page(
    api_settings: Settings, kl_settings: Any, contact: str, href: str | None
) -> None:
    settings = make_settings(kl_settings, operator_name="Văn phòng Tỉnh ủy", operator_contact=contact)
    app = pages_app(None)
    app.state.settings = settings
    with TestClient(app) as c:
        html = c.get("/").text
        assert "Văn phòng Tỉnh ủy" in html and contact in html
        assert (f'href="{href}"' in html) == (href is not None)
    app.state.settings = api_settings
    with TestClient(app) as c:
        assert "Đơn vị vận hành" not in c.get("/").text


def test_source_text_is_served_as_plain_text(client: TestClient, kl_index: SearchIndex) -> None:
    response = client.get("/documents/kl183-621b55/van-ban.txt")
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/plain")
    assert response.text == kl_index.source_text("000_5d30afc99b18f1f4.txt")
    assert client.get("/documents/nope/van-ban.txt").status_code == 404


def test_document_page_anchors_every_passage_in_reading_order(
    client: TestClient, kl_index: SearchIndex
) -> None:
    document = kl_index.document("kl183-621b55")
    response = client.get("/documents/kl183-621b55")
    assert response.status_code == 200
    page = Elements(response.text)
    passages = kl_index.passages_of(document.document_id)
    sections = [a["id"] for a in page.find("div") if "passage" in (a.get("class") or "").split()]
    assert sections == [p.passage_id for p in passages]
    assert len(set(page.ids())) == len(page.ids()), "ids must be unique"
    text = "".join(page.text)
    for p in passages:
        assert p.label in text
        assert p.text in text
    for fact in ("183-KL/TW", "01/08/2025", "Trần Cẩm Tú", "428-BC/BTCTW", "Bản tin báo chí"):
        assert fact in text
    assert page.find("a", href="/documents/kl183-621b55/van-ban.txt")
    # cleaned passages only: the web page leftovers around the article are in the source, not on the page
    raw = kl_index.source_text(document.source_file)
    for leftover in ("Có thể bạn quan tâm", "(Ảnh: "):
        assert leftover in raw
        assert leftover not in text
    assert page.find("script", src=None) == [], "no inline scripts"
    assert any((a.get("src") or "").startswith("/static/document.js") for a in page.find("script"))


def test_unknown_document_is_an_html_404(client: TestClient) -> None:
    response = client.get("/documents/nope-000000")
    assert response.status_code == 404
    assert response.headers["content-type"].startswith("text/html")
    assert "Không tìm thấy văn bản" in response.text


HOSTILE = '<script>alert("x")</script><img src=x onerror=alert(1)>'


def test_pages_escape_everything_from_the_corpus() -> None:
    doc = Document(
        document_id="d1",
        title=f"Tiêu đề {HOSTILE}",
        ket_luan="1-KL/TW",
        issued=dt.date(2025, 1, 2),
        signer=HOSTILE,
        source_file="a.txt",
        passage_count=1,
        report=HOSTILE,
    )
    passage = Passage(
        passage_id='d1.m1"><b>x',
        document_id="d1",
        document_title=doc.title,
        label=f"nhãn {HOSTILE}",
        text=f"đoạn {HOSTILE}",
        source=Source(file="a.txt", start=0, end=1),
        url="/documents/d1#x",
    )
    with TestClient(pages_app(FakeDocuments([doc], [passage]))) as c:
        for path in ("/documents", "/documents/d1", "/"):
            html = c.get(path).text
            assert "<script>alert" not in html and "<img src=x" not in html, path
            assert "&lt;script&gt;" in html, path
        page = Elements(c.get("/documents/d1").text)
        assert 'd1.m1"><b>x' in page.ids()
        assert page.find("b") == []


def test_pages_while_the_index_loads() -> None:
    with TestClient(pages_app(None)) as c:
        assert c.get("/").status_code == 200
        for path in ("/documents", "/documents/d1"):
            response = c.get(path)
            assert response.status_code == 503
            assert "đang nạp dữ liệu" in response.text


def test_demo_page_embeds_the_widget_and_explains_the_coverage(
    client: TestClient, kl_index: SearchIndex
) -> None:
    response = client.get("/")
    assert response.status_code == 200
    page = Elements(response.text)
    assert any((a.get("src") or "").startswith("/widget.js") for a in page.find("script"))
    text = "".join(page.text)
    for document in kl_index.documents.values():
        assert document.ket_luan and document.ket_luan in text
    assert "Content-Security-Policy" in response.headers
    # nothing loaded from elsewhere: no CDN, no web fonts
    urls = [a.get(k) or "" for _, a in page.tags for k in ("src", "href") if k in a]
    assert urls and all(u.startswith(("/", "#")) and not u.startswith("//") for u in urls), urls


def test_widget_js_is_served_with_its_css_inlined(client: TestClient) -> None:
    response = client.get("/widget.js")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/javascript")
    body = response.text
    assert "/*__WIDGET_CSS__*/" not in body and "/*__WIDGET_CONFIG__*/" not in body
    assert ".launcher" in body and ":host" in body
    for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(", "new Function"):
        assert sink not in body, f"{sink}: server and user text must only ever reach the DOM as text"
    assert not re.search(r"https?://(?!www\.w3\.org/2000/svg|host)", body), "no external resources"
    etag = response.headers["etag"]
    assert client.get("/widget.js", headers={"If-None-Match": etag}).status_code == 304


ASSETS = [
    ("/static/site.css", "text/css"),
    ("/static/document.js", "text/javascript"),
    ("/static/favicon.svg", "image/svg"),
]


@pytest.mark.parametrize(("path", "kind"), ASSETS)
def test_static_assets(client: TestClient, path: str, kind: str) -> None:
    response = client.get(path)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith(kind)


@pytest.mark.parametrize("path", ["/static/..%2Fweb.py", "/static/nope.js", "/static/.hidden"])
def test_static_refuses_what_is_not_an_asset(client: TestClient, path: str) -> None:
    assert client.get(path).status_code == 404


def test_the_app_includes_the_pages(
    api_settings: Settings, kl_index: SearchIndex, fake_service_factory: Callable[..., Any]
) -> None:
    app = create_app(api_settings, index=kl_index, service_factory=fake_service_factory)
    with TestClient(app) as c:
        assert c.get("/").status_code == 200
        assert c.get("/widget.js").status_code == 200
        assert c.get("/documents").status_code == 200
        response = c.get("/documents/kl221-9045a8")
        assert response.status_code == 200
        assert 'id="kl221-9045a8.' in response.text


def test_the_widget_takes_its_texts_and_limits_from_the_service(client: TestClient) -> None:
    texts = json.loads((Path(__file__).resolve().parents[2] / "prompts" / "widget.json").read_text("utf-8"))
    source = (Path(__file__).resolve().parents[2] / "api" / "static" / "widget.js").read_text("utf-8")
    assert texts["vi"]["thinking"] not in source and "2000" not in source.replace(
        "/2000/svg", ""
    )  # not repeated
    body = client.get("/widget.js").text
    assert json.dumps(texts["vi"]["thinking"], ensure_ascii=False) in body
    assert f'"maxChars": {MAX_QUERY_CHARS}' in body
