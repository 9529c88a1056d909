"""Browser-facing pages: the demo page, the embeddable widget and its assets, and the HTML document views."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import mimetypes
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Annotated, Any, Protocol

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, Response
from jinja2 import Environment, FileSystemLoader, StrictUndefined

from api.deps import HolderDep
from bot.settings import BotSettings
from index.errors import IndexNotReady, NotFound
from index.models import Document, Passage

STATIC_DIR = Path(__file__).resolve().parent / "static"
TEMPLATE_DIR = Path(__file__).resolve().parent / "templates"
_CSS_PLACEHOLDER = '/*__WIDGET_CSS__*/""'
_STATIC_TYPES = {
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".ico": "image/x-icon",
}
# Our own pages load nothing from elsewhere; the widget on them talks to this same origin.
_PAGE_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; base-uri 'none'; form-action 'self'; object-src 'none'"
)
_PAGE_HEADERS = {
    "Content-Security-Policy": _PAGE_CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "strict-origin-when-cross-origin",
}

router = APIRouter(include_in_schema=False)


class DocumentSource(Protocol):
    """What the pages read from a loaded index (index.search.SearchIndex satisfies it)."""

    documents: dict[str, Document]

    def document(self, document_id: str) -> Document: ...

    def passages_of(self, document_id: str) -> list[Passage]: ...


async def web_index(holder: HolderDep) -> DocumentSource | None:
    """The index the app is serving now, None while it loads (the pages say so). Tests override this."""
    try:
        index: DocumentSource = holder.current().index
    except IndexNotReady:
        return None
    return index


IndexDep = Annotated[DocumentSource | None, Depends(web_index)]


@cache
def _templates() -> Environment:
    env = Environment(
        loader=FileSystemLoader(TEMPLATE_DIR),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["vn_date"] = vn_date
    return env


def vn_date(day: dt.date | None) -> str:
    """2025-08-01 → 01/08/2025, the way Vietnamese documents write dates."""
    return day.strftime("%d/%m/%Y") if day else "—"


def _page(template: str, status_code: int = 200, **context: Any) -> HTMLResponse:
    html = _templates().get_template(template).render(version=_asset_version(), **context)
    return HTMLResponse(html, status_code=status_code, headers=_PAGE_HEADERS)


def render_page(template: str, status_code: int = 200, **context: Any) -> HTMLResponse:
    """A page of this site (base.html's look, its CSP and headers), for the routers of other modules."""
    return _page(template, status_code, **context)


def _newest_first(documents: dict[str, Document]) -> list[Document]:
    def key(d: Document) -> tuple[int, str, str]:
        return (-(d.issued.toordinal() if d.issued else 0), d.ket_luan or "~", d.title)

    return sorted(documents.values(), key=key)


def _not_ready_page() -> HTMLResponse:
    message = "Hệ thống đang nạp dữ liệu văn bản. Vui lòng tải lại trang sau ít phút."
    return _page("message.html", 503, title="Hệ thống đang khởi động", message=message)


# --- pages -----------------------------------------------------------------------------------------
@router.get("/", response_class=HTMLResponse)
def demo_page(index: IndexDep, request: Request) -> HTMLResponse:
    documents = _newest_first(index.documents) if index is not None else []
    # the configured public address, never the request's Host header (a cache in front would keep a
    # snippet that points wherever the first client said)
    settings = getattr(request.app.state, "settings", None)
    public = (
        settings.bot.public_url if settings is not None else BotSettings.model_fields["public_url"].default
    )
    base_url = str(public).rstrip("/") + "/"
    return _page("demo.html", documents=documents, base_url=base_url)


@router.get("/documents", response_class=HTMLResponse)
def documents_page(index: IndexDep) -> HTMLResponse:
    if index is None:
        return _not_ready_page()
    return _page("documents.html", documents=_newest_first(index.documents))


@router.get("/documents/{document_id}", response_class=HTMLResponse)
def document_page(document_id: str, index: IndexDep) -> HTMLResponse:
    if index is None:
        return _not_ready_page()
    try:
        document = index.document(document_id)
        passages = index.passages_of(document_id)
    except NotFound:
        message = "Không có văn bản nào với mã này. Văn bản có thể đã được cập nhật."
        return _page("message.html", 404, title="Không tìm thấy văn bản", message=message)
    return _page("document.html", document=document, passages=passages)


# --- widget and static assets ------------------------------------------------------------------------
@dataclass(frozen=True)
class _Asset:
    body: bytes
    media_type: str
    etag: str


def _asset(body: bytes, media_type: str) -> _Asset:
    return _Asset(body, media_type, '"' + hashlib.sha256(body).hexdigest()[:20] + '"')


@cache
def _widget() -> _Asset:
    """widget.js with widget.css inlined, so one request brings everything and nothing can fail to load."""
    script = (STATIC_DIR / "widget.js").read_text("utf-8")
    css = (STATIC_DIR / "widget.css").read_text("utf-8")
    return _asset(
        script.replace(_CSS_PLACEHOLDER, json.dumps(css, ensure_ascii=False), 1).encode(),
        _STATIC_TYPES[".js"],
    )


@cache
def _static_files() -> dict[str, _Asset]:
    """Every file of the static folder, read once: a requested name is looked up here and never reaches
    the file system, so odd names (NUL bytes, 300 characters, ../) are a plain 404 and cost no memory."""
    assets = {}
    for path in sorted(STATIC_DIR.iterdir()):
        if path.is_file() and not path.name.startswith("."):
            guessed = mimetypes.guess_type(path.name)[0]
            media_type = _STATIC_TYPES.get(path.suffix) or guessed or "application/octet-stream"
            assets[path.name] = _asset(path.read_bytes(), media_type)
    return assets


def _static(name: str) -> _Asset | None:
    return _static_files().get(name)


@cache
def _asset_version() -> str:
    """Changes whenever a static file does: appended to asset URLs so browsers never mix old and new."""
    digest = hashlib.sha256()
    for path in sorted(STATIC_DIR.iterdir()):
        if path.is_file():
            digest.update(path.name.encode() + path.read_bytes())
    return digest.hexdigest()[:10]


def _send(asset: _Asset, request: Request, *, cross_origin: bool = False) -> Response:
    headers = {"ETag": asset.etag, "Cache-Control": "public, max-age=300"}
    headers["X-Content-Type-Options"] = "nosniff"
    if cross_origin:  # any web page may load the widget script
        headers["Cross-Origin-Resource-Policy"] = "cross-origin"
    if request.headers.get("if-none-match") == asset.etag:
        return Response(status_code=304, headers=headers)
    return Response(asset.body, media_type=asset.media_type, headers=headers)


@router.get("/widget.js")
def widget_js(request: Request) -> Response:
    return _send(_widget(), request, cross_origin=True)


@router.get("/static/{name}")
def static_file(name: str, request: Request) -> Response:
    asset = _static(name) if name != "widget.js" else _widget()
    if asset is None:
        return _page("message.html", 404, title="Không tìm thấy", message="Không có tệp này.")
    return _send(asset, request, cross_origin=name == "widget.js")
