"""The HTML pages and widget assets served by api/web.py, without a browser (see test_widget_browser.py)."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Iterator
from html.parser import HTMLParser
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from api import web
from api.app import create_app
from api.settings import Settings
from index.errors import NotFound
from index.models import Document, Passage, Source
from index.search import SearchIndex


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


def test_documents_page_lists_every_document_newest_first(client: TestClient, kl_index: SearchIndex) -> None:
    response = client.get("/documents")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    html = response.text
    links = re.findall(r'href="/documents/([^"#]+)"', html)
    assert sorted(links) == sorted(kl_index.documents)
    issued = [kl_index.documents[d].issued for d in links]
    assert issued == sorted(issued, key=lambda d: d or dt.date.min, reverse=True)
    for document in kl_index.documents.values():
        assert document.title in html
        assert document.issued is not None
        assert document.issued.strftime("%d/%m/%Y") in html
        if document.signer:
            assert document.signer in html


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
    for fact in ("183-KL/TW", "01/08/2025", "Trần Cẩm Tú", "428-BC/BTCTW", document.source_file):
        assert fact in text
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
    assert "/*__WIDGET_CSS__*/" not in body
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
