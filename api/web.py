"""Browser-facing pages: the demo page, the embeddable widget and its assets, and the HTML document views."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import mimetypes
import re
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Annotated, Any, Protocol
from urllib.parse import urlsplit

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from jinja2 import Environment, FileSystemLoader, StrictUndefined

import prompts
from api.deps import HolderDep
from bot.settings import BotSettings
from index.errors import IndexNotReady, NotFound
from index.language.agencies import aligned_fold
from index.models import Document, Passage
from index.search import MAX_QUERY_CHARS

STATIC_DIR = Path(__file__).resolve().parent / "static"
TEMPLATE_DIR = Path(__file__).resolve().parent / "templates"
_CSS_PLACEHOLDER = '/*__WIDGET_CSS__*/""'
_CONFIG_PLACEHOLDER = "/*__WIDGET_CONFIG__*/{}"
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
    env.filters["deep_link"] = deep_link
    return env


def deep_link(url: str, start: int, end: int) -> str:
    """A passage link (/documents/ID#PASSAGE) that also marks the span START-END of its source file."""
    path, _, fragment = url.partition("#")
    return f"{path}?hl={start}-{end}" + (f"#{fragment}" if fragment else "")


def vn_date(day: dt.date | None) -> str:
    """2025-08-01 → 01/08/2025, the way Vietnamese documents write dates."""
    return day.strftime("%d/%m/%Y") if day else "—"


@dataclass(frozen=True)
class Operator:
    """Who runs the service and how to reach them (settings), for every page's footer."""

    name: str
    contact: str
    href: str | None


def operator_of(request: Request | None) -> Operator | None:
    settings = getattr(request.app.state, "settings", None) if request is not None else None
    if settings is None or not (settings.api.operator_name or settings.api.operator_contact):
        return None
    contact = settings.api.operator_contact.strip()
    href = None
    if re.fullmatch(r"[^@\s]+@[^@\s]+\.[^@\s]+", contact):
        href = "mailto:" + contact
    elif re.fullmatch(r"\+?[\d .()-]{6,}", contact):
        href = "tel:" + re.sub(r"[^\d+]", "", contact)
    elif urlsplit(contact).scheme in ("http", "https"):
        href = contact
    return Operator(settings.api.operator_name.strip(), contact, href)


def _page(
    template: str, status_code: int = 200, request: Request | None = None, **context: Any
) -> HTMLResponse:
    html = (
        _templates()
        .get_template(template)
        .render(version=_asset_version(), operator=operator_of(request), **context)
    )
    return HTMLResponse(html, status_code=status_code, headers=_PAGE_HEADERS)


def render_page(
    template: str, status_code: int = 200, request: Request | None = None, **context: Any
) -> HTMLResponse:
    """A page of this site (base.html's look, its CSP and headers), for the routers of other modules."""
    return _page(template, status_code, request, **context)


def _newest_first(documents: dict[str, Document]) -> list[Document]:
    def key(d: Document) -> tuple[int, str, str]:
        return (-(d.issued.toordinal() if d.issued else 0), d.ket_luan or "~", d.title)

    return sorted(documents.values(), key=key)


# --- one Kết luận, several texts -------------------------------------------------------------------------
@dataclass(frozen=True)
class Text:
    """One text of a Kết luận: the official one or a press report (numbered as the citation labels number
    them, with the outlet and the article's address when the corpus folder's sources.json names them)."""

    document: Document
    order: int | None = None
    of: int = 1
    outlet: str | None = None
    url: str | None = None


@dataclass(frozen=True)
class Group:
    """Every text the service holds of one Kết luận (or one document that is not a Kết luận)."""

    slug: str | None
    ket_luan: str | None
    issued: dt.date | None
    official: list[Text] = field(default_factory=list)
    press: list[Text] = field(default_factory=list)

    @property
    def texts(self) -> list[Text]:
        return self.official + self.press

    @property
    def primary(self) -> Document:
        """The text a reader gets at /documents/kl-N: the official one, else the fullest report."""
        return (self.official or sorted(self.press, key=lambda t: -t.document.passage_count))[0].document

    @property
    def subject(self) -> str:
        """What it is about, without the number the heading already gives ("Về tình hình, …")."""
        title = self.primary.title
        if self.ket_luan and title.startswith(f"Kết luận {self.ket_luan}"):
            title = title[len(f"Kết luận {self.ket_luan}") :].strip()
        return title[:1].upper() + title[1:]


def slug_of(ket_luan: str | None) -> str | None:
    """'221-KL/TW' → 'kl-221', the readable id of a Kết luận's page."""
    found = re.match(r"\s*(\d+)", ket_luan or "")
    return f"kl-{int(found.group(1))}" if found else None


_ALIAS = re.compile(r"(?:kl|ket-?luan)?[-_ ]?0*(\d{1,4})(?:-kl(?:-tw)?)?", re.IGNORECASE)


def _outlets(index: DocumentSource) -> dict[str, dict[str, str]]:
    """file → {"outlet", "url"} from sources.json in the corpus folders (optional; see docs/http.md)."""
    manifest = getattr(index, "manifest", None)
    found: dict[str, dict[str, str]] = {}
    for folder in getattr(manifest, "corpora", []) or []:
        found.update(_read_outlets(Path(folder) / "sources.json"))
    return found


def _read_outlets(path: Path) -> dict[str, dict[str, str]]:
    try:
        raw = json.loads(path.read_text("utf-8"))
    except (OSError, ValueError):
        return {}
    out: dict[str, dict[str, str]] = {}
    for name, entry in raw.items() if isinstance(raw, dict) else []:
        if not isinstance(entry, dict):
            continue
        url = str(entry.get("url") or "")
        out[str(name)] = {
            "outlet": str(entry.get("outlet") or "")[:120],
            "url": url if urlsplit(url).scheme in ("http", "https") else "",
        }
    return out


def groups_of(index: DocumentSource) -> list[Group]:
    """The documents grouped by Kết luận, newest first; official text before press reports."""
    outlets = _outlets(index)
    by_key: dict[str, list[Document]] = {}
    for d in _newest_first(index.documents):
        by_key.setdefault(d.ket_luan or f"~{d.document_id}", []).append(d)

    def text(d: Document, order: int | None, of: int) -> Text:
        meta = outlets.get(d.source_file, {})
        return Text(d, order, of, meta.get("outlet") or None, meta.get("url") or None)

    groups = []
    for docs in by_key.values():
        # numbered as index/build.py numbers their citation labels ("bản tin 1/2"): by file, among all texts
        every = sorted(docs, key=lambda d: d.source_file)
        numbered = len(docs) > 1 and docs[0].ket_luan is not None
        groups.append(
            Group(
                slug=slug_of(docs[0].ket_luan),
                ket_luan=docs[0].ket_luan,
                issued=next((d.issued for d in docs if d.issued), None),
                official=[text(d, None, 1) for d in every if d.official],
                press=[
                    text(d, i + 1 if numbered else None, len(every))
                    for i, d in enumerate(every)
                    if not d.official
                ],
            )
        )
    return groups


def _group_of(groups: list[Group], document_id: str) -> Group | None:
    return next((g for g in groups if any(t.document.document_id == document_id for t in g.texts)), None)


def _updated(index: DocumentSource) -> dt.date | None:
    """The day the index the pages show was built (the corpus's last update as the service sees it)."""
    built = getattr(getattr(index, "manifest", None), "built_at", None)
    try:
        return dt.datetime.fromisoformat(built).date() if isinstance(built, str) else None
    except ValueError:
        return None


# --- search over titles and text ---------------------------------------------------------------------------
@dataclass(frozen=True)
class Hit:
    passage: Passage
    before: str
    match: str
    after: str
    href: str


MAX_HITS = 30
_SNIPPET = 90


def search_documents(index: DocumentSource, query: str) -> tuple[list[Document], list[Hit]]:
    """Documents whose title holds the query and passages whose text does (accent- and case-insensitive)."""
    needle = aligned_fold(" ".join(query.split()))[0]
    if not needle:
        return [], []
    titles = [d for d in _newest_first(index.documents) if needle in aligned_fold(d.title)[0]]
    hits: list[Hit] = []
    for d in _newest_first(index.documents):
        for p in index.passages_of(d.document_id):
            folded, where = aligned_fold(p.text)
            at = folded.find(needle)
            if at < 0:
                continue
            start, end = where[at], where[at + len(needle) - 1] + 1
            lo = max(0, start - _SNIPPET)
            hi = min(len(p.text), end + _SNIPPET)
            href = f"/documents/{d.document_id}?hl={p.source.start + start}-{p.source.start + end}#{p.passage_id}"
            hits.append(Hit(p, ("…" if lo else "") + p.text[lo:start], p.text[start:end],
                            p.text[end:hi] + ("…" if hi < len(p.text) else ""), href))  # fmt: skip
            if len(hits) >= MAX_HITS:
                return titles, hits
    return titles, hits


def _marked(passages: list[Passage], hl: str | None) -> dict[str, tuple[str, str, str]]:
    """?hl=START-END (offsets into the source file, as passages and tasks give them) → the passage holding
    that span, split into the text before, the marked sentence and the text after."""
    found = re.fullmatch(r"(\d{1,9})-(\d{1,9})", hl or "")
    if not found:
        return {}
    start, end = int(found.group(1)), int(found.group(2))
    for p in passages:
        if p.source.start <= start < end <= p.source.end:
            a, b = start - p.source.start, end - p.source.start
            return {p.passage_id: (p.text[:a], p.text[a:b], p.text[b:])}
    return {}


def _not_ready_page(request: Request | None = None) -> HTMLResponse:
    message = "Hệ thống đang nạp dữ liệu văn bản. Vui lòng tải lại trang sau ít phút."
    return _page("message.html", 503, request, title="Hệ thống đang khởi động", message=message)


# --- pages -----------------------------------------------------------------------------------------
@router.get("/", response_class=HTMLResponse)
def demo_page(index: IndexDep, request: Request) -> HTMLResponse:
    groups = groups_of(index) if index is not None else []
    # the configured public address, never the request's Host header (a cache in front would keep a
    # snippet that points wherever the first client said)
    settings = getattr(request.app.state, "settings", None)
    public = (
        settings.bot.public_url if settings is not None else BotSettings.model_fields["public_url"].default
    )
    base_url = str(public).rstrip("/") + "/"
    return _page("demo.html", 200, request, groups=groups, base_url=base_url)


@router.get("/documents", response_class=HTMLResponse)
def documents_page(index: IndexDep, request: Request, q: str = "") -> HTMLResponse:
    if index is None:
        return _not_ready_page(request)
    query = " ".join(q.split())[:200]
    titles, hits = search_documents(index, query) if query else ([], [])
    return _page("documents.html", 200, request, groups=groups_of(index), query=query, titles=titles,
                 hits=hits, max_hits=MAX_HITS, updated=_updated(index),
                 count=len(index.documents))  # fmt: skip


@router.get("/documents/{document_id}/van-ban.txt")
def document_source(document_id: str, index: IndexDep, request: Request) -> Response:
    """The text of the source file as the service read it, for a reader who wants the whole of it."""
    if index is None:
        return _not_ready_page(request)
    reader = getattr(index, "source_text", None)
    try:
        document = index.document(document_id)
        if reader is None:
            raise NotFound(document_id)
        text = str(reader(document.source_file))
    except NotFound:
        return _page(
            "message.html", 404, request, title="Không tìm thấy văn bản", message="Không có tệp này."
        )
    return Response(text, media_type="text/plain; charset=utf-8", headers=_PAGE_HEADERS)


@router.get("/documents/{document_id}", response_class=HTMLResponse, response_model=None)
def document_page(
    document_id: str, index: IndexDep, request: Request, hl: str | None = None
) -> HTMLResponse | RedirectResponse:
    if index is None:
        return _not_ready_page(request)
    groups = groups_of(index)
    group = next((g for g in groups if g.slug and g.slug == document_id.lower()), None)
    if group is not None and group.slug and group.slug != document_id:
        return _redirect(request, group.slug)
    if group is None and document_id not in index.documents:
        alias = _ALIAS.fullmatch(document_id.strip())
        wanted = f"kl-{int(alias.group(1))}" if alias else None
        target = next((g for g in groups if g.slug and g.slug == wanted), None)
        if target is not None and target.slug:
            return _redirect(request, target.slug)
    try:
        document = group.primary if group is not None else index.document(document_id)
        passages = index.passages_of(document.document_id)
    except NotFound:
        message = "Không có văn bản nào với mã này. Văn bản có thể đã được cập nhật."
        return _page("message.html", 404, request, title="Không tìm thấy văn bản", message=message)
    group = group or _group_of(groups, document.document_id)
    text = (
        next((t for t in group.texts if t.document.document_id == document.document_id), None)
        if group
        else None
    )
    return _page("document.html", 200, request, document=document, passages=passages, group=group, text=text,
                 marked=_marked(passages, hl), updated=_updated(index))  # fmt: skip


def _redirect(request: Request, slug: str) -> RedirectResponse:
    query = ("?" + request.url.query) if request.url.query else ""
    return RedirectResponse(f"/documents/{slug}{query}", status_code=308)


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
    # its texts and limits are the service's own (prompts/widget.json, the question length the API takes)
    config = {"strings": prompts.structured("widget"), "maxChars": MAX_QUERY_CHARS}
    script = script.replace(_CSS_PLACEHOLDER, json.dumps(css, ensure_ascii=False), 1)
    script = script.replace(_CONFIG_PLACEHOLDER, json.dumps(config, ensure_ascii=False), 1)
    return _asset(script.encode(), _STATIC_TYPES[".js"])


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
