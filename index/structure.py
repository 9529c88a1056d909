"""Clean lines of one source file → a Document and its passages (paragraphs and list items, verbatim).

Reads Kết luận (official text or press report: number, date, signer, report, title, numbered points,
sub-items "(1)", "(i)", "a)", "-"), laws (Chương / Điều / khoản / điểm) and plain documents with one code.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
from collections import Counter
from dataclasses import dataclass, field
from itertools import pairwise

from index.cleaning import Line, clean_lines
from index.language.dates import find_dates
from index.language.references import ket_luan_numbers
from index.models import Document, Passage, PassageKind, Source
from index.textnorm import fold

REPORT_NUMBER = re.compile(r"Báo cáo số\s+(\d{1,4}\s*-\s*BC\s*/\s*[A-ZĐ]+)", re.IGNORECASE)
_PAGE_DATE = re.compile(r"^\s*date\s+(\d{4})-(\d{2})", re.MULTILINE)
_YEAR = re.compile(r"\b(20\d\d)\b")
_SIGNER_ANCHOR = re.compile(r"(?:Thường trực Ban Bí thư|Tổng Bí thư|T/M [^\n]+\n)\s*")
_SUBJECT = re.compile(r"[Kk]ết\s+[Ll]uận[^.]*?\bvề\s+(?:việc\s+)?([^.(]+)")
_POINT = re.compile(r"^(\d{1,2})\.\s+(?=\S)")
_ARTICLE = re.compile(r"^Điều\s+(\d+[a-z]?)\.?\s*(.*)$")
_LAW_HEADING = re.compile(r"^(Chương|Phần|Mục|Tiểu mục)\s+([IVXLC\d]+)\b", re.IGNORECASE)
_CLAUSE = re.compile(r"^(\d{1,3})\.\s+(?=\S)")
_LAW_POINT = re.compile(r"^([a-zđ])\)\s+(?=\S)")
_DASH = re.compile(r"^[-–+•]\s+(?=\S)")
_MD_HEADING = re.compile(r"^#{1,6}\s+")
# Inline list markers inside one paragraph: "(1)", "(ii)", "a)", and "; 3. " after a semicolon.
_INLINE = re.compile(
    r"(?:^|(?<=[\s:;.]))\((?P<num>\d{1,2})\)\s+(?=\S)"
    r"|(?:^|(?<=[\s:;.]))\((?P<roman>[ivx]{1,6})\)\s+(?=\S)"
    r"|(?:^|(?<=[:;]\s))(?P<letter>[a-zđ])\)\s+(?=\S)"
    r"|(?<=;\s)(?P<dotnum>\d{1,2})\.\s+(?=[A-ZĐÀ-Ỹ])"
)
_PREAMBLE = re.compile(r"phiên họp|đã họp|kết luận như sau", re.IGNORECASE)
_ROMAN = {"i": 1, "ii": 2, "iii": 3, "iv": 4, "v": 5, "vi": 6, "vii": 7, "viii": 8, "ix": 9, "x": 10}
_CONTEXT_WORDS = 40


def slugify(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", fold(text)).strip("-") or "doc"


def _short(text: str, words: int = _CONTEXT_WORDS) -> str:
    parts = text.split()
    return " ".join(parts[:words]) + (" …" if len(parts) > words else "")


def normalize_ket_luan(raw: str) -> str | None:
    """The Kết luận number written out with its suffix ("183- KL/TW" → "183-KL/TW"), else None: what makes a
    document a Kết luận."""
    found = ket_luan_numbers(raw, full_only=True)
    return found[0] if found else None


def find_date(text: str, default_year: int | None) -> dt.date | None:
    """The first day written "ngày 28 tháng 11 năm 2025", "ngày 1/8/2025" or "ngày 26-9" (year guessed)."""
    for mention in find_dates(text, default_year):
        if mention.date and mention.precision == "day" and fold(mention.text).startswith("ngay"):
            return mention.first or mention.date
    return None


def find_signer(text: str) -> str | None:
    """The capitalised name after "Thường trực Ban Bí thư" or a "T/M ..." line: "Trần Cẩm Tú"."""
    for anchor in _SIGNER_ANCHOR.finditer(text):
        name: list[str] = []
        for word in text[anchor.end() :].split()[:4]:
            bare = word.strip(",.;:")
            if not bare[:1].isupper() or not bare.isalpha():
                break
            name.append(bare)
            if bare != word:
                break
        if len(name) >= 2:
            return " ".join(name)
    return None


def _sentence_case(upper: str) -> str:
    lowered = upper.lower()
    return lowered[:1].upper() + lowered[1:]


def _law_name(first_line: str) -> str:
    if first_line != first_line.upper():
        return first_line
    name = _sentence_case(first_line)
    # "Bộ luật dân sự" → "Bộ luật Dân sự", "Luật cư trú" → "Luật Cư trú"
    return re.sub(r"(?i)(\bluật\s+)(\w)", lambda m: m.group(1) + m.group(2).upper(), name, count=1)


@dataclass
class _Builder:
    """Collects passages of one document with stable ids and labels."""

    document_id: str
    file: str
    label_prefix: str
    passages: list[dict[str, object]] = field(default_factory=list)
    used_ids: set[str] = field(default_factory=set)

    def add(self, start: int, end: int, text: str, *, local_id: str, label: str, kind: PassageKind,
            context: str = "") -> None:  # fmt: skip
        pid = f"{self.document_id}.{local_id}"
        suffix = 2
        while pid in self.used_ids:  # a numbering that repeats inside one paragraph
            pid = f"{self.document_id}.{local_id}-{suffix}"
            suffix += 1
        self.used_ids.add(pid)
        self.passages.append(
            {
                "passage_id": pid,
                "label": f"{self.label_prefix}, {label}" if label else self.label_prefix,
                "text": text,
                "source": Source(file=self.file, start=start, end=end),
                "kind": kind,
                "context": context,
            }
        )


@dataclass
class _Item:
    start: int
    end: int
    marker: str  # "(1)", "(ii)", "a)", "3."
    level: int  # 1 numbers, 2 roman numerals, 3 letters
    key: str


def split_inline(text: str, offset: int) -> tuple[tuple[int, int] | None, list[_Item]]:
    """Split a paragraph at inline list markers. Returns the lead-in span and the items, as offsets."""
    marks = list(_INLINE.finditer(text))
    if not marks:
        return None, []
    items: list[_Item] = []
    expected: dict[int, int] = {}
    for m in marks:
        if m.group("num"):
            level, key, value = 1, m.group("num"), int(m.group("num"))
        elif m.group("roman"):
            level, key, value = 2, m.group("roman"), _ROMAN.get(m.group("roman"), 0)
        elif m.group("letter"):
            level, key, value = 3, m.group("letter"), ord(m.group("letter")) - ord("a") + 1
        else:
            level, key, value = 1, m.group("dotnum"), int(m.group("dotnum"))
        # a marker counts only when it continues a sequence: "(1)" first, then "(2)"; a list may
        # continue from the previous paragraph, so the first marker of a level may start anywhere > 0
        if level in expected and value != expected[level]:
            continue
        if level not in expected and value == 0:
            continue
        expected[level] = value + 1
        for deeper in [lv for lv in expected if lv > level]:
            del expected[deeper]
        items.append(_Item(m.start(), len(text), m.group(0).strip(), level, key))
    if not items or (len(items) == 1 and items[0].start > 0 and items[0].marker[0] == "("):
        return None, []  # one "(2)" in mid-sentence is a reference, not a list
    for current, following in pairwise(items):
        current.end = following.start
    trimmed = []
    for it in items:
        end = it.end
        while end > it.start and text[end - 1].isspace():
            end -= 1
        trimmed.append(_Item(offset + it.start, offset + end, it.marker, it.level, it.key))
    lead = None
    first = items[0].start
    lead_end = first
    while lead_end > 0 and text[lead_end - 1].isspace():
        lead_end -= 1
    if lead_end > 0:
        lead = (offset, offset + lead_end)
    return lead, trimmed


@dataclass
class ParsedDocument:
    document: Document
    passages: list[Passage]


def _document_id(file: str, ket_luan: str | None) -> str:
    if ket_luan:
        digest = hashlib.sha1(file.encode("utf-8")).hexdigest()[:6]
        return f"kl{ket_luan.split('-')[0]}-{digest}"
    return slugify(file.rsplit(".", 1)[0])[:60]


class _Reader:
    def __init__(self, file: str, text: str, corpus: str, document_id: str | None = None) -> None:
        self.file, self.text, self.corpus = file, text, corpus
        self.forced_id = document_id
        self.lines = clean_lines(text)

    # --- what kind of document is this -------------------------------------------------------
    def is_law(self) -> bool:
        return sum(1 for ln in self.lines if _ARTICLE.match(ln.text)) >= 2

    def parse(self) -> ParsedDocument:
        if self.is_law():
            return self._parse_law()
        head = " ".join(ln.text for ln in self.lines[:6])
        if normalize_ket_luan(head):
            return self._parse_ket_luan(normalize_ket_luan(head))
        return self._parse_plain()

    # --- Kết luận --------------------------------------------------------------------------------
    def _year_hint(self) -> int | None:
        if m := _PAGE_DATE.search(self.text[:200]):
            return int(m.group(1))
        years = Counter(_YEAR.findall(" ".join(ln.text for ln in self.lines)))
        return int(years.most_common(1)[0][0]) if years else None

    def _parse_ket_luan(self, ket_luan: str | None) -> ParsedDocument:
        lines = [ln for ln in self.lines if not ln.signature]
        signature = [ln for ln in self.lines if ln.signature]
        year = self._year_hint()
        official = any(re.match(r"^Số\s+\d+\s*-\s*KL/TW", ln.text) for ln in lines[:8])
        headline: Line | None = None
        header: list[Line] = []
        body_start = 0
        if official:
            # header block: the uppercase lines, "Số ...", "Hà Nội, ngày ..." before the first sentence
            for i, ln in enumerate(lines):
                if ln.text.upper() == ln.text or re.match(r"^(Số\s|[\w ]+, ngày)", ln.text):
                    header.append(ln)
                    continue
                body_start = i
                break
        elif (
            lines and not lines[0].text.rstrip().endswith((".", ")", ":")) and len(lines[0].text.split()) < 40
        ):
            headline, body_start = lines[0], 1
        body = lines[body_start:]
        # the paragraph that says who signed what and when
        meta_line: Line | None = None
        if not official:
            for ln in body[:3]:
                if re.search(r"ký ban hành|ban hành kết luận", ln.text, re.IGNORECASE) or normalize_ket_luan(
                    ln.text
                ):
                    meta_line = ln
                    break
        intro = " ".join(ln.text for ln in header) if official else (meta_line.text if meta_line else "")
        issued = find_date(intro, year)
        if issued is None:
            for ln in body[:3]:
                if issued := find_date(ln.text, year):
                    break
        signer_src = intro + "\n" + "\n".join(ln.text for ln in signature)
        signer = find_signer(signer_src) or find_signer("\n".join(ln.text for ln in body[:3]))
        report_match = REPORT_NUMBER.search(" ".join(ln.text for ln in body[:4]))
        report = re.sub(r"\s+", "", report_match.group(1)) if report_match else None
        if official:
            upper = [ln.text for ln in header if ln.text.upper() == ln.text]
            joined = " ".join(upper)
            about = re.search(r"\bVỀ\s+(.+)$", joined)
            subject = about.group(1).lower() if about else ""
        else:
            about_match = _SUBJECT.search(intro) or (_SUBJECT.search(headline.text) if headline else None)
            subject = about_match.group(1).strip(" ,") if about_match else ""
        title = f"Kết luận {ket_luan} về {subject}" if subject else f"Kết luận {ket_luan}"
        document_id = self.forced_id or _document_id(self.file, ket_luan)
        builder = _Builder(document_id, self.file, f"Kết luận {ket_luan}")
        meta_context = self._meta_context(ket_luan, issued, signer, report, subject)
        if official and header:
            first = next((ln for ln in header if ln.text.startswith("Số")), header[0])
            builder.add(first.start, header[-1].end, self.text[first.start : header[-1].end], local_id="meta",
                        label="phần đầu văn bản", kind="metadata", context=meta_context)  # fmt: skip
        elif meta_line:
            builder.add(meta_line.start, meta_line.end, meta_line.text, local_id="meta",
                        label="thông tin ban hành", kind="metadata", context=meta_context)  # fmt: skip
        if signature:
            builder.add(signature[0].start, signature[-1].end, self.text[signature[0].start : signature[-1].end],
                        local_id="ky", label="phần ký", kind="signature", context=meta_context)  # fmt: skip
        paragraphs = [ln for ln in body if ln is not meta_line]
        self._body(builder, paragraphs, subject)
        return self._finish(
            builder, document_id, title, ket_luan, issued, signer, report, "ket_luan", official
        )

    @staticmethod
    def _meta_context(ket_luan: str | None, issued: dt.date | None, signer: str | None,
                      report: str | None, subject: str) -> str:  # fmt: skip
        parts = [f"Kết luận số {ket_luan} của Bộ Chính trị, Ban Bí thư"]
        if issued:
            parts.append(f"ban hành ngày {issued.day}/{issued.month}/{issued.year}")
        if signer:
            parts.append(f"người ký {signer}")
        if report:
            parts.append(f"căn cứ Báo cáo số {report}")
        if subject:
            parts.append(f"về {subject}")
        return ", ".join(parts)

    def _body(self, builder: _Builder, paragraphs: list[Line], subject: str) -> None:
        """Numbered points become "mục N"; other paragraphs "đoạn N"; inline markers become items."""
        section: str | None = None  # current "mục"
        section_head = ""
        para_in_section = 0
        loose = 0  # paragraphs outside any mục
        pending_context = ""  # a short lead-in line such as "Kết luận nêu rõ:"
        list_parent: tuple[str, str, str] | None = None  # (local id, label, context) of an open "1., 2." list
        seen_points = False
        for idx, ln in enumerate(paragraphs):
            text = ln.text
            point = _POINT.match(text)
            previous = paragraphs[idx - 1].text if idx else ""
            if (
                point
                and list_parent is None
                and point.group(1) == "1"
                and previous.endswith(":")
                and (text.rstrip().endswith(";") or len(text.split()) < 25)
            ):
                # "... như sau:" followed by "1. ...;" — a list inside a paragraph, not a numbered point
                list_parent = (f"d{loose}", f"đoạn {loose}", _short(previous))
            if list_parent is not None:
                if point:
                    self._list_item(builder, ln, point.group(1), list_parent)
                    continue
                list_parent = None
            if point and not (section is None and point.group(1) != "1"):
                section = point.group(1)
                seen_points = True
                section_head = _short(text, 25)
                para_in_section = 0
            if len(text.split()) < 6 and text.endswith(":") and not point:
                pending_context = text
                continue
            if section is not None:
                para_in_section += 1
                local, label = f"m{section}.d{para_in_section}", f"mục {section}, đoạn {para_in_section}"
                context = section_head if para_in_section > 1 else ""
                if (
                    seen_points
                    and text.startswith("(")
                    and text.rstrip(".").endswith(")")
                    and idx == len(paragraphs) - 1
                ):
                    local, label, context = "cuoi", "phần cuối", ""
            elif _PREAMBLE.search(text) and loose == 0:
                local, label, context = "mo-dau", "phần mở đầu", pending_context
            else:
                loose += 1
                local, label, context = f"d{loose}", f"đoạn {loose}", pending_context
            kind: PassageKind = "preamble" if local == "mo-dau" else "paragraph"
            self._paragraph(builder, ln, local, label, context, kind)
            pending_context = ""

    def _list_item(self, builder: _Builder, ln: Line, number: str, parent: tuple[str, str, str]) -> None:
        local, label, context = parent
        _, items = split_inline(ln.text, ln.start)
        if items and items[0].start == ln.start:  # "2. …; 3. …" on one line: the first marker is not inline
            items = items[1:]
        first_end = items[0].start if items else ln.end
        end = first_end
        while end > ln.start and self.text[end - 1].isspace():
            end -= 1
        builder.add(ln.start, end, self.text[ln.start : end], local_id=f"{local}.{number}",
                    label=f"{label}, ý {number}", kind="item", context=context)  # fmt: skip
        for it in items:
            builder.add(it.start, it.end, self.text[it.start : it.end], local_id=f"{local}.{it.key}",
                        label=f"{label}, ý {it.key}", kind="item", context=context)  # fmt: skip

    def _paragraph(self, builder: _Builder, ln: Line, local: str, label: str, context: str,
                   kind: PassageKind) -> None:  # fmt: skip
        lead, items = split_inline(ln.text, ln.start)
        if not items:
            builder.add(ln.start, ln.end, ln.text, local_id=local, label=label, kind=kind, context=context)
            return
        lead_text = self.text[lead[0] : lead[1]] if lead else ""
        item_context = " ".join(p for p in (context, lead_text) if p)
        if lead and (len(lead_text.split()) >= 8 or not lead_text.endswith(":")):
            builder.add(lead[0], lead[1], lead_text, local_id=local, label=label, kind=kind, context=context)
        parents: dict[int, tuple[str, str, str]] = {}  # level → (key, marker, short text) of open items
        for pos, it in enumerate(items):
            body = self.text[it.start : it.end]
            for level in [lv for lv in parents if lv >= it.level]:
                del parents[level]
            path = [parents[lv] for lv in sorted(parents)]
            local_id = ".".join([local, *[p[0] for p in path], it.key])
            marks = "".join(p[1] for p in path) + it.marker
            ctx = " ".join([item_context, *[p[2] for p in path]]).strip()
            parents[it.level] = (it.key, it.marker, _short(body, 20))
            has_children = pos + 1 < len(items) and items[pos + 1].level > it.level
            if has_children and body.rstrip().endswith(":"):
                continue  # "(1) Bộ Nội vụ phối hợp với …:" only introduces its (i), (ii): context, not a passage
            builder.add(it.start, it.end, body, local_id=local_id, label=f"{label}, ý {marks}", kind="item",
                        context=ctx)  # fmt: skip

    # --- laws ----------------------------------------------------------------------------------------
    def _parse_law(self) -> ParsedDocument:
        name = _law_name(self.lines[0].text) if self.lines else self.file
        document_id = self.forced_id or _document_id(self.file, None)
        builder = _Builder(document_id, self.file, name)
        heading = ""
        article: str | None = None
        article_head = ""
        clause: str | None = None
        clause_text = ""
        lead = ""
        para = 0
        for ln in self.lines[1:]:
            text = ln.text
            if m := _ARTICLE.match(text):
                article, article_head, clause, clause_text, lead, para = m.group(1), text, None, "", "", 0
                continue
            if _LAW_HEADING.match(text) and (article is None or len(text.split()) < 20):
                heading = text
                continue
            if article is None:
                heading = f"{heading} {text}".strip() if heading else text
                continue
            context_base = f"{name}. {heading}. {article_head}" if heading else f"{name}. {article_head}"
            if m := _CLAUSE.match(text):
                clause, clause_text = m.group(1), _short(text, 30)
                builder.add(ln.start, ln.end, text, local_id=f"d{article}.k{clause}",
                            label=f"Điều {article}, khoản {clause}", kind="item",
                            context=f"{context_base} {lead}".strip())  # fmt: skip
                continue
            if m := _LAW_POINT.match(text):
                where = f"Điều {article}, khoản {clause}" if clause else f"Điều {article}"
                local = f"d{article}.k{clause}.{m.group(1)}" if clause else f"d{article}.{m.group(1)}"
                builder.add(ln.start, ln.end, text, local_id=local, label=f"{where}, điểm {m.group(1)}",
                            kind="item", context=f"{context_base} {clause_text or lead}".strip())  # fmt: skip
                continue
            para += 1
            if clause is None:
                lead = _short(text, 30) if text.endswith(":") else lead
            local = f"d{article}.k{clause}.p{para}" if clause else f"d{article}.p{para}"
            label = f"Điều {article}, khoản {clause}" if clause else f"Điều {article}"
            if clause is None and para > 1:
                label = f"Điều {article}, đoạn {para}"
            builder.add(ln.start, ln.end, text, local_id=local, label=label, kind="paragraph",
                        context=f"{context_base} {clause_text}".strip())  # fmt: skip
        return self._finish(builder, document_id, name, None, None, None, None, "law", True)

    # --- anything else -------------------------------------------------------------------------------
    def _parse_plain(self) -> ParsedDocument:
        first = self.lines[0].text if self.lines else self.file
        title = _MD_HEADING.sub("", first) if len(first.split()) <= 30 else self.file.rsplit(".", 1)[0]
        document_id = self.forced_id or _document_id(self.file, None)
        builder = _Builder(document_id, self.file, title)
        heading = ""
        para = 0
        for pos, ln in enumerate(self.lines):
            text = ln.text
            if pos == 0 and len(first.split()) <= 30 and len(self.lines) > 1:
                heading = _MD_HEADING.sub("", text)
                continue
            if _MD_HEADING.match(text):
                heading = _MD_HEADING.sub("", text)
                continue
            para += 1
            self._paragraph(builder, ln, f"d{para}", f"đoạn {para}", heading, "paragraph")
        return self._finish(builder, document_id, title, None, None, None, None, "text", False)

    def _finish(self, builder: _Builder, document_id: str, title: str, ket_luan: str | None,
                issued: dt.date | None, signer: str | None, report: str | None, kind: str,
                official: bool) -> ParsedDocument:  # fmt: skip
        document = Document(
            document_id=document_id, title=title, ket_luan=ket_luan, issued=issued, signer=signer,
            source_file=self.file, passage_count=len(builder.passages), report=report, kind=kind,  # type: ignore[arg-type]
            official=official, corpus=self.corpus,
        )  # fmt: skip
        passages = [
            Passage(document_id=document_id, document_title=title, ket_luan=ket_luan, issued=issued,
                    url=f"/documents/{document_id}#{p['passage_id']}", **p)  # type: ignore[arg-type]
            for p in builder.passages
        ]  # fmt: skip
        return ParsedDocument(document, passages)


def parse_document(file: str, text: str, corpus: str = "", document_id: str | None = None) -> ParsedDocument:
    """Read one source file's text into its Document and passages; `document_id` overrides the derived id
    (a document added by the operator keeps the id it was given at upload)."""
    return _Reader(file, text, corpus, document_id).parse()
