"""Files in a corpus folder → their text (.txt/.md as is; .html, .docx, .pdf through extraction libraries)."""

from __future__ import annotations

import unicodedata
from pathlib import Path

from index.errors import BadCorpus

SUFFIXES = (".txt", ".md", ".html", ".htm", ".docx", ".pdf")
SKIP_NAMES = {"readme.md", "readme.txt", "license", "license.txt"}


def corpus_files(folder: Path) -> list[Path]:
    """Readable documents under `folder`, in a stable order."""
    if not folder.is_dir():
        raise BadCorpus(f"corpus folder not found: {folder}")
    files = sorted(
        p for p in folder.rglob("*")
        if p.is_file() and p.suffix.lower() in SUFFIXES and p.name.lower() not in SKIP_NAMES
        and not any(part.startswith(".") for part in p.relative_to(folder).parts)
    )  # fmt: skip
    if not files:
        raise BadCorpus(f"no .txt/.md/.html/.docx/.pdf documents in {folder}")
    return files


def read_text(path: Path) -> str:
    """The document's text in NFC; offsets of its passages index into exactly this string."""
    suffix = path.suffix.lower()
    try:
        if suffix in (".txt", ".md"):
            raw = path.read_bytes()
            try:
                text = raw.decode("utf-8-sig")
            except UnicodeDecodeError as exc:
                raise BadCorpus(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from exc
        elif suffix in (".html", ".htm"):
            import trafilatura

            extracted = trafilatura.extract(path.read_text("utf-8", errors="replace"), include_comments=False,
                                            include_tables=True, favor_recall=True)  # fmt: skip
            if not extracted:
                raise BadCorpus(f"{path}: no readable text found in the HTML")
            text = extracted
        elif suffix == ".docx":
            import docx

            text = "\n".join(p.text for p in docx.Document(str(path)).paragraphs)
        elif suffix == ".pdf":
            from pypdf import PdfReader

            text = "\n".join((page.extract_text() or "") for page in PdfReader(str(path)).pages)
        else:
            raise BadCorpus(f"{path}: unsupported file type {suffix}")
    except BadCorpus:
        raise
    except Exception as exc:  # a damaged docx/pdf/html: one clear line, not a traceback
        raise BadCorpus(f"{path}: cannot read {suffix} file: {exc}") from exc
    return unicodedata.normalize("NFC", text.replace("\r\n", "\n"))
