"""Documents a text mentions → kind, number, date, issuer and the span that mentions them; Kết luận numbers
however they are written ("183-KL/TW", "183- KL/TW", "183/KL-TW", "KL 183", "kết luận số 183") → "183-KL/TW".
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

from index.language import agencies
from index.language.agencies import aligned_fold, folded_index
from index.language.dates import find_dates
from index.textnorm import normalize

# folded kind word → the kind as the documents write it
KINDS = {
    "ket luan": "Kết luận", "nghi quyet": "Nghị quyết", "quy dinh": "Quy định", "quyet dinh": "Quyết định",
    "ke hoach": "Kế hoạch", "chi thi": "Chỉ thị", "bao cao": "Báo cáo", "cong van": "Công văn",
    "thong bao": "Thông báo", "huong dan": "Hướng dẫn", "to trinh": "Tờ trình", "quy che": "Quy chế",
}  # fmt: skip
_ORDINALS = {
    "mot": 1, "nhat": 1, "hai": 2, "ba": 3, "tu": 4, "bon": 4, "nam": 5, "sau": 6, "bay": 7, "tam": 8,
    "chin": 9, "muoi": 10, "muoi mot": 11, "muoi hai": 12, "muoi ba": 13, "muoi bon": 14, "muoi tu": 14,
    "muoi lam": 15, "muoi nam": 15, "muoi sau": 16, "muoi bay": 17, "muoi tam": 18, "muoi chin": 19,
    "hai muoi": 20,
}  # fmt: skip

# --- Kết luận numbers -------------------------------------------------------------------------------------------
# "150 ngày", "5 tháng" are lengths of time, but "Kết luận 150 ngày ban hành" asks when 150 was issued and
# "kết luận 195 tháng 9" is 195, issued in September
_NOT_A_NUMBER = r"(?![\d/.\-]*\d)(?!\s*(?:(?:thang|nam)(?!\s+\d)|ngay(?!\s+(?:\d|ban\s+hanh|ky|nao|bao\s+nhieu))|lan|nguoi|cap)\b)"
_KL_FULL = r"(?<![\w/])(\d{1,4})\s*[-/]\s*kl\s*[-/]\s*tw(?!\w)"
KET_LUAN = re.compile(  # on folded text; groups: the number, in one of three
    _KL_FULL
    + r"|(?<!\w)(?:ket\s*luan|kl)\s*(?:so\s*)?[:.]?\s*(\d{1,4})(?:\s*[-/]\s*kl(?:\s*[-/]\s*tw)?(?!\w)|"
    + _NOT_A_NUMBER
    + r"(?!\w))"
    + r"|(?<![\w/])(\d{1,4})\s*-?\s*kl(?:\s*[-/]\s*tw)?(?!\w)"
)
_KL_STRICT = re.compile(_KL_FULL)
# "Kết luận 183 và 179", "KL 183, 195": further numbers listed after a Kết luận number
_MORE = re.compile(r"\s*(?:,|va|hoac|voi|so voi)\s*(?:(?:ket\s*luan|kl)\s*(?:so\s*)?)?(\d{2,4})" + _NOT_A_NUMBER
                   + r"(?!\w)")  # fmt: skip


def ket_luan_spans(text: str, *, full_only: bool = False) -> list[tuple[int, int, str]]:
    """(start, end, "183-KL/TW") for every Kết luận number `text` names, in order; `full_only` accepts only
    the written-out form with its suffix ("183-KL/TW", "183/KL-TW")."""
    folded, where = aligned_fold(text)
    out: list[tuple[int, int, str]] = []
    for match in (_KL_STRICT if full_only else KET_LUAN).finditer(folded):
        digits = next(g for g in match.groups() if g)
        out.append((where[match.start()], where[match.end() - 1] + 1, f"{int(digits)}-KL/TW"))
        if full_only:
            continue
        at = match.end()
        while more := _MORE.match(folded, at):
            out.append((where[more.start(1)], where[more.end() - 1] + 1, f"{int(more.group(1))}-KL/TW"))
            at = more.end()
    return out


def ket_luan_numbers(text: str, *, full_only: bool = False) -> list[str]:
    """The Kết luận numbers `text` names, normalised ("183-KL/TW"), each once, in order of mention."""
    return list(dict.fromkeys(number for _, _, number in ket_luan_spans(text, full_only=full_only)))


def normalize_ket_luan(raw: str) -> str | None:
    """One Kết luận number from any way it is written, a bare "183" included; None when `raw` names none."""
    stripped = raw.strip()
    if stripped.isascii() and stripped.isdigit() and len(stripped) <= 4:  # isdigit alone takes "¹"
        return f"{int(stripped)}-KL/TW"
    found = ket_luan_numbers(stripped)
    return found[0] if found else None


# --- references -------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ReferenceMention:
    """A document mentioned in a text; `text[start:end]` is the mention (kind, number, date when written)."""

    start: int
    end: int
    text: str
    kind: str
    number: str  # "192-KL/TW", "56-KH/BCĐ", "18", "" for a plenum
    issued: dt.date | None
    issuer: str | None
    title: str | None


_KIND = "|".join(sorted(KINDS, key=len, reverse=True)).replace(" ", r"\s+")
_REF = re.compile(
    r"(?<!\w)(?P<kind>" + _KIND + r")\s+(?:so\s*)?(?P<num>\d{1,4})(?![\d/.]*\d)"
    r"(?:\s*[-/]\s*(?P<code>[a-z]{1,6})(?:\s*[/-]\s*(?P<org>[a-z&]{1,12}))?(?!\w))?"
)
_PLENUM = re.compile(
    r"(?<!\w)hoi\s+nghi\s+(?:(?:ban\s+chap\s+hanh\s+)?trung\s+uong\s+(?:dang\s+)?(?:lan\s+thu\s+)?"
    r"(?P<n1>\d{1,2}|(?:muoi|hai muoi)(?:\s+\w+)?|\w+)(?!\w)|lan\s+thu\s+(?P<n2>\d{1,2}|muoi(?:\s+\w+)?|\w+)"
    r"(?=\s*,?\s*(?:ban\s+chap\s+hanh\s+trung\s+uong|khoa\s+[ivxlc]+)))"
)
_DATE_AFTER = re.compile(r"\s*(?:,|\(|;)?\s*(?:ban\s+hanh\s+)?(?=ngay\s+\d)")
_ISSUER_AFTER = re.compile(r"\s*\)?\s*,?\s*cua\s+")
_TITLE_AFTER = re.compile(r"\s*,?\s*ve\s+(?:viec\s+)?([^.;()]{3,160}?)(?=\s*[.;()]|\s*,\s*(?:ngay|cua)\b|$)")


def _ordinal(raw: str | None) -> int | None:
    if not raw:
        return None
    raw = " ".join(raw.split())
    if raw.isdigit():
        return int(raw)
    return _ORDINALS.get(raw) or _ORDINALS.get(raw.split()[0])


def _issuer(text: str, at: int) -> str | None:
    """The agencies named right at `at` ("Ban Chỉ đạo Trung ương", "Bộ Chính trị, Ban Bí thư")."""
    window = text[at : at + 160]
    names: list[str] = []
    last = 0
    for mention in agencies.find(window):
        gap = window[last : mention.start]
        if (not names and gap.strip()) or (names and gap.strip(" ,") not in ("", "và")):
            break
        names.append(mention.agency.name)
        last = mention.end
    return ", ".join(dict.fromkeys(names)) or None


def find_references(text: str, default_year: int | None = None) -> list[ReferenceMention]:
    """Every numbered document and Central Committee plenum `text` mentions, in order."""
    folded, where = aligned_fold(text)
    at_char = folded_index(text, folded, where)
    out: list[ReferenceMention] = []

    def span(f_start: int, f_end: int) -> tuple[int, int]:
        return where[f_start], where[f_end - 1] + 1

    for match in _REF.finditer(folded):
        kind = KINDS[" ".join(match.group("kind").split())]
        start, end = span(match.start(), match.end())
        number = str(int(match.group("num")))
        if match.group("code"):
            c_start, c_end = span(
                match.start("code"), match.end("org") if match.group("org") else match.end("code")
            )
            suffix = re.sub(r"\s+", "", text[c_start:c_end]).upper().replace("-", "/")
            if match.group("org") is None and kind == "Kết luận":
                suffix = f"{suffix}/TW"
            number = f"{number}-{suffix}"
            if number.endswith("/TW") and "-KL" in number:
                number = f"{int(match.group('num'))}-KL/TW"
        out.append(_complete(text, folded, where, at_char, start, end, kind, number, default_year))
    for match in _PLENUM.finditer(folded):
        n = _ordinal(match.group("n1") or match.group("n2"))
        if n is None:
            continue
        start, end = span(match.start(), match.end())
        out.append(_complete(text, folded, where, at_char, start, end, f"Hội nghị Trung ương {n}", "",
                             default_year))  # fmt: skip
    return sorted(out, key=lambda r: r.start)


def _complete(text: str, folded: str, where: list[int], at_char: dict[int, int], start: int, end: int,
              kind: str, number: str, default_year: int | None) -> ReferenceMention:  # fmt: skip
    """The mention extended by the date, issuer and subject written right after it."""
    issued: dt.date | None = None
    f_end = at_char.get(end, len(folded))
    if _DATE_AFTER.match(folded, f_end):
        dates = find_dates(text[end : end + 60], default_year)
        if (
            dates
            and dates[0].date
            and dates[0].first is None
            and not text[end : end + dates[0].start].strip(" ,(;").replace("ban hành", "").strip()
        ):
            issued = dates[0].date
            end = end + dates[0].end
            if text[end : end + 1] == ")" and "(" in text[start:end]:
                end += 1
            f_end = at_char.get(end, len(folded))
    issuer = None
    if issuer_cue := _ISSUER_AFTER.match(folded, f_end):
        issuer = _issuer(text, where[issuer_cue.end()] if issuer_cue.end() < len(where) else len(text))
    if issuer is None and "/" in number:
        org = agencies.resolve(number.rsplit("/", 1)[1])
        issuer = org.name if org else None
    title = None
    if subject := _TITLE_AFTER.match(folded, f_end):
        t_start, t_end = where[subject.start(1)], where[subject.end(1) - 1] + 1
        title = normalize(text[t_start:t_end])
    return ReferenceMention(start, end, text[start:end], kind, number, issued, issuer, title)
