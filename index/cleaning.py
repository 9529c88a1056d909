"""Raw source text → the lines worth reading, as offsets into that text (web-page leftovers dropped)."""

from __future__ import annotations

import re
from dataclasses import dataclass

from index.textnorm import fold

# A news site's "related articles" trailer: everything after it is other news.
_TRAILER = re.compile(
    r"^\s*(co the ban quan tam|tin lien quan|bai lien quan|xem them|doc them|tin cung chuyen muc|tin khac)\s*:?\s*$"
)
_CAPTION = re.compile(r"\((?:Ảnh|Ảnh minh họa|Ảnh minh hoạ|Nguồn ảnh|Video)\s*:[^()]*\)\s*$", re.IGNORECASE)
_SOURCE_LINE = re.compile(r"^\s*(nguon tra cuu|nguon)\s*:", re.IGNORECASE)
_RECIPIENTS = re.compile(r"^\s*noi nhan\s*:", re.IGNORECASE)
_SIGNATURE_OPENER = re.compile(r"^\s*(T/M|TM\.?|K/T|KT\.?|Q\.|TL\.?)\s+\S", re.UNICODE)
# Prefixes a page puts before a title or lead: "[Video] ", " date 2025-07 ".
_PREFIX = re.compile(r"^\s*(?:\[(?:video|infographic|ảnh|photo|podcast|emagazine)\]\s*|date\s+\d{4}-\d{2}(?:-\d{2})?\s+)+",
                     re.IGNORECASE)  # fmt: skip
_ONLY_PUNCT = re.compile(r"^[\s\W_]*$", re.UNICODE)


@dataclass(frozen=True)
class Line:
    """A kept line: text[start:end] of the source, stripped of surrounding whitespace and page prefixes."""

    start: int
    end: int
    text: str
    signature: bool = False  # part of the signature block ("T/M BỘ CHÍNH TRỊ", the signer's name)


def _raw_lines(text: str) -> list[tuple[int, int]]:
    spans, pos = [], 0
    for chunk in text.splitlines(keepends=True):
        body = chunk.rstrip("\r\n")
        spans.append((pos, pos + len(body)))
        pos += len(chunk)
    return spans


def _trim(text: str, start: int, end: int) -> tuple[int, int]:
    prefix = _PREFIX.match(text, start, end)
    if prefix:
        start = prefix.end()
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    return start, end


def clean_lines(text: str) -> list[Line]:
    """The lines of `text` that belong to the document, in order, each mapped back to its offsets."""
    kept: list[Line] = []
    in_recipients = False
    in_signature = False
    previous = ""
    for raw_start, raw_end in _raw_lines(text):
        start, end = _trim(text, raw_start, raw_end)
        line = text[start:end]
        if not line:
            in_recipients = False
            continue
        folded = fold(line)
        if _TRAILER.match(folded):
            break
        if _RECIPIENTS.match(folded):
            in_recipients = True
            continue
        if _SIGNATURE_OPENER.match(line):
            in_recipients, in_signature = False, True
            kept.append(Line(start, end, line, signature=True))
            continue
        if in_recipients:  # the distribution list runs to the signature block or a blank line
            continue
        if in_signature:
            # the signer's name follows the "T/M ..." line; anything after it is the page's own furniture
            if len(line.split()) <= 6 and not _SOURCE_LINE.match(folded):
                kept.append(Line(start, end, line, signature=True))
            in_signature = False
            continue
        if _SOURCE_LINE.match(folded) or _CAPTION.search(line) or _ONLY_PUNCT.match(line):
            continue
        if line == previous:  # a caption or title printed twice
            continue
        previous = line
        kept.append(Line(start, end, line))
    return kept
