"""Uploaded bytes → a document's text: the type sniffed from the content (never the name), then text from a
PDF (Tesseract OCR for pages without a text layer), a DOCX, an HTML page (article text only) or UTF-8 text."""

from __future__ import annotations

import io
import re
import unicodedata
import zipfile
from dataclasses import dataclass
from typing import Literal

from index.errors import BadDocument, UnsupportedMedia

Kind = Literal["pdf", "docx", "html", "text"]
SUFFIX: dict[Kind, str] = {"pdf": ".pdf", "docx": ".docx", "html": ".html", "text": ".txt"}
# a PDF page with fewer characters than this in its text layer is taken for a scan
MIN_TEXT_LAYER = 20
OCR_DPI = 300
SHORT_LINE = 0.9
_SENTENCE_END = (".", ";", "!", "?", "…", ")", '"', "”")
_HTML = re.compile(rb"<\s*(?:!doctype\s+html|html|head|body|article|div|p)\b", re.IGNORECASE)
_LIST_START = re.compile(r"^(?:\d+(?:\.\d+)*\.|[a-zđ]\)|\([a-z0-9ivx]+\)|[-+•*–])\s", re.IGNORECASE)


@dataclass(frozen=True)
class Extracted:
    text: str
    ocr_pages: int = 0  # pages whose text was recognised from the image
    pages: int = 0


def sniff(data: bytes) -> Kind:
    """What the bytes are, by their content; UnsupportedMedia for anything else (images, archives, binaries)."""
    if data.startswith(b"%PDF-"):
        return "pdf"
    if data.startswith(b"PK\x03\x04"):
        try:
            with zipfile.ZipFile(io.BytesIO(data)) as archive:
                if "word/document.xml" in archive.namelist():
                    return "docx"
        except zipfile.BadZipFile:
            raise BadDocument("the file looks like a DOCX (zip) but the archive is damaged") from None
        raise UnsupportedMedia("a zip archive that is not a Word document (DOCX)")
    if b"\x00" in data[:8192]:
        raise UnsupportedMedia("binary content: not a PDF, DOCX, HTML page or UTF-8 text")
    try:
        data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise UnsupportedMedia("neither a PDF, a DOCX, an HTML page nor UTF-8 text") from None
    return "html" if _HTML.search(data[:4096]) else "text"


def extract(data: bytes, kind: Kind, *, ocr: bool = True, language: str = "vie") -> Extracted:
    """The document's text in NFC. BadDocument with the reason when it cannot be read or holds no text."""
    try:
        if kind == "pdf":
            result = _pdf(data, ocr=ocr, language=language)
        elif kind == "docx":
            import docx

            result = Extracted("\n".join(p.text for p in docx.Document(io.BytesIO(data)).paragraphs))
        elif kind == "html":
            result = Extracted(html_text(data.decode("utf-8-sig", errors="replace")))
        else:
            result = Extracted(data.decode("utf-8-sig"))
    except BadDocument:
        raise
    except Exception as exc:  # a damaged file: one clear line, never a traceback
        raise BadDocument(f"cannot read the {kind.upper()} file: {exc.__class__.__name__}: {exc}") from exc
    text = unicodedata.normalize("NFC", result.text.replace("\r\n", "\n")).strip()
    if not text and ocr:
        raise BadDocument(f"no readable text in the {kind.upper()} file")
    return Extracted(text, result.ocr_pages, result.pages)


def html_text(html: str) -> str:
    """The article text of a web page (trafilatura drops menus, footers and other page furniture)."""
    import trafilatura

    text = trafilatura.extract(html, include_comments=False, include_tables=True, favor_recall=True)
    if not text:
        raise BadDocument("no article text found in the HTML page")
    return str(text)


def _pdf(data: bytes, *, ocr: bool, language: str) -> Extracted:
    from pypdf import PdfReader
    from pypdf.errors import PdfReadError

    try:
        reader = PdfReader(io.BytesIO(data), strict=False)
        layers = [page.extract_text() or "" for page in reader.pages]
    except (PdfReadError, ValueError, KeyError, TypeError) as exc:
        raise BadDocument(f"the PDF is damaged: {exc}") from exc
    if not layers:
        raise BadDocument("the PDF has no pages")
    scans = [i for i, text in enumerate(layers) if len(text.strip()) < MIN_TEXT_LAYER]
    if scans and ocr:
        recognised = ocr_pages(data, scans, language)
        for i in scans:
            layers[i] = recognised[i]
    text = ""
    for i, layer in enumerate(t.strip() for t in layers):
        # a recognised page that starts mid-sentence continues the paragraph the page before broke off
        carried = i in scans and text and not text.endswith((":", *_SENTENCE_END)) and layer[:1].islower()
        text = f"{text} {layer}" if carried else f"{text}\n{layer}" if text else layer
    return Extracted(text, len(scans) if ocr else 0, len(layers))


def ocr_pages(data: bytes, pages: list[int], language: str) -> dict[int, str]:
    """Tesseract's reading of the given PDF pages (rendered with PDFium), paragraphs re-flowed."""
    import pypdfium2 as pdfium
    import pytesseract

    try:
        document = pdfium.PdfDocument(data)
    except pdfium.PdfiumError as exc:
        raise BadDocument(f"the PDF is damaged: {exc}") from exc
    out: dict[int, str] = {}
    try:
        for i in pages:
            image = document[i].render(scale=OCR_DPI / 72, grayscale=True).to_pil()
            try:
                raw = pytesseract.image_to_string(image, lang=language)
            except pytesseract.TesseractNotFoundError as exc:
                raise BadDocument(
                    "the PDF is a scan and Tesseract is not installed: run `make sysdeps`"
                ) from exc
            except pytesseract.TesseractError as exc:
                raise BadDocument(f"OCR failed on page {i + 1}: {exc}") from exc
            out[i] = reflow(raw)
    finally:
        document.close()
    return out


def reflow(text: str) -> str:
    """OCR text broken at the page's line ends → one paragraph a line, as the corpus files are written. A line
    joins the one before unless that one ended its paragraph (a colon; a sentence's end short of the page's
    width; a heading well short of it), it starts a numbered or bulleted item, or a blank line parts them
    and it does not carry on a sentence (Tesseract sometimes leaves a blank line inside a paragraph)."""
    lines = [ln.strip() for ln in text.splitlines()]
    width = max((len(ln) for ln in lines), default=0)
    paragraphs: list[str] = []
    current = ""
    ended = gap = False
    for line in lines:
        if not line:
            gap = True
            continue
        carries = line[:1].islower() and not current.endswith((":", *_SENTENCE_END))
        if current and (ended or _LIST_START.match(line) or (gap and not carries)):
            paragraphs.append(current)
            current = line
        else:
            current = f"{current} {line}" if current else line
        short = len(line) < SHORT_LINE * width
        ended = line.endswith(":") or (short and line.endswith(_SENTENCE_END)) or len(line) < width / 2
        gap = False
    if current:
        paragraphs.append(current)
    return "\n".join(paragraphs)
