"""A user's question → what it asks: its kind (date, signer, deadline, task of an agency …), the Kết luận
numbers and agencies it names, and whether it is a follow-up. Folded ("han chot" = "hạn chót")."""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from typing import Literal

from index.textnorm import fold, normalize

QuestionKind = Literal[
    "greeting",
    "newest",
    "documents",
    "signer",
    "date",
    "report",
    "summary",
    "deadline",
    "task",
    "who",
    "list",
    "generic",
]

_KL_PATTERNS = (
    re.compile(r"\b(\d{1,4})\s*-?\s*kl(?:\s*/\s*tw)?\b"),
    re.compile(r"\bket\s+luan\s+(?:so\s+)?(\d{1,4})\b"),
    re.compile(r"\bkl\s*(?:so\s+)?(\d{1,4})\b"),
)
_AGENCY_HEADS = (
    "dang uy",
    "uy ban",
    "van phong",
    "mat tran",
    "thuong truc",
    "hoi dong",
    "bo",
    "ban",
    "tinh uy",
    "thanh uy",
    "ubnd",
    "hdnd",
)
_AGENCY = re.compile(r"\b(" + "|".join(_AGENCY_HEADS) + r")((?:\s+\w+){1,6})")
# words that end an agency name in a question ("Bộ Tư pháp được giao …", "Bộ Tư pháp thì sao")
_AGENCY_STOP_TEXT = """
duoc phai co lam thi can se chiu la trong theo ve nhu da dang cho khi nao gi sao o de phoi hop
chu giao ket luan yeu cau thuc hien nhiem trach ra hay hoac voi cung con nay do cham nhat truoc
ngay hang thang nam den sau bao gui hop
"""
_AGENCY_STOP = frozenset(_AGENCY_STOP_TEXT.split())
_NOT_AGENCIES = (
    "bo chinh tri",
    "ban bi thu",
    "ban hanh",
    "bo may",
    "bo nganh",
    "bo truong",
    "bo cong cu",
    "ban chap hanh",
    "ban dau",
    "ban than",
    "ban oi",
    "bo sung",
    "ban ve",
)

_NOT_AFTER = {
    "bo": frozenset(["dang", "can", "toan", "mot", "tung", "moi", "nhieu", "cac"]),
    "ban": frozenset(["van", "co", "phien", "can"]),
}
_GREETING = re.compile(r"^(xin chao|chao( ban| bot| em| anh| chi)?|hello|hi|alo|hey|chao buoi \w+)[\s!.,]*$")
_CUES: tuple[tuple[QuestionKind, re.Pattern[str]], ...] = (
    ("newest", re.compile(r"\b(moi nhat|gan day nhat|gan nhat|moi ban hanh|sau cung|cuoi cung)\b")),
    (
        "documents",
        re.compile(
            r"\b(nhung|cac) (ket luan|van ban) (nao|gi)\b|\bbao nhieu (ket luan|van ban)\b|\bdanh sach\b"
            r"|\b(co|gom) (nhung|cac) (ket luan|van ban)\b|\btra cuu (duoc )?(nhung )?(gi|van ban nao)\b"
        ),
    ),
    (
        "signer",
        re.compile(
            r"\b(ai ky|nguoi ky|ky boi|do ai|ai la nguoi ky|ai da ky|ky ten|ai ban hanh|ai thay mat)\b"
        ),
    ),
    ("report", re.compile(r"\bbao cao (so|nao)\b|\bcan cu (vao )?bao cao\b|\bso bao cao\b")),
    (
        "date",
        re.compile(
            r"\b(ngay ban hanh|ngay ky|thoi gian ban hanh"
            r"|ban hanh (vao )?(ngay|luc|khi|thoi gian|nam|thang) ?(nao|gi)?"
            r"|(ky|ban hanh|ra doi|hop|phien hop)( vao)? "
            r"(ngay nao|khi nao|bao gio|luc nao|hom nao|ngay bao nhieu)"
            r"|(ngay nao|khi nao|bao gio) (duoc )?(ky|ban hanh))\b"
        ),
    ),
    (
        "summary",
        re.compile(
            r"\b(noi gi|noi ve (gi|viec gi|van de gi)|ve (van de )?gi|noi dung( chinh)?( la gi| gom)?|tom tat"
            r"|de cap (den )?(gi|nhung gi)"
            r"|gom nhung (gi|noi dung)|co gi moi|quy dinh gi)\b"
        ),
    ),
    (
        "deadline",
        re.compile(
            r"\b(han chot|thoi han|han hoan thanh|den han|deadline|cham nhat|truoc ngay nao|khi nao|bao gio"
            r"|han (cuoi|nop|bao cao|la)"
            r"|luc nao"
            r"|thoi diem nao|ngay nao|den ngay nao|han cuoi|may gio|trong thoi gian nao|tien do"
            r"|thang nao|nam nao|tuan nao|quy nao|vao thang)\b"
        ),
    ),
    (
        "list",
        re.compile(
            r"\b(nhung (gi|viec gi|nhiem vu gi|noi dung gi|yeu cau gi|linh vuc nao)|liet ke|gom nhung"
            r"|bao gom|cac (nhiem vu|viec|yeu cau|linh vuc)|nhung (nhiem vu|viec|yeu cau|linh vuc)"
            r"|nhung \w+( \w+)? nao|nhung ai)\b"
        ),
    ),
    ("who", re.compile(r"\b(ai|co quan nao|don vi nao|ban nao|bo nao|cap nao|chu the nao)\b")),
)
_TASK = re.compile(
    r"\b(giao|nhiem vu|phai lam|lam gi|trach nhiem|yeu cau|viec gi|chi dao|can lam|thi sao|the nao)\b"
)
# "Còn Bộ Tư pháp thì sao?", "Thế còn …", "Vậy …", "Kết luận đó …": the question leans on the previous turn
_FOLLOWUP = re.compile(
    r"^(con|the con|vay con|vay thi|vay|the|con ve|con doi voi|doi voi|thi|va|nhung|ngoai ra)\b"
    r"|\b(thi sao|the nao|ra sao|nua khong|nua|thi the nao)\s*\??$"
    r"|\b(ket luan (do|nay|tren|ay)|van ban (do|nay|tren|ay)|no|cai do|viec do|han do|co quan do|ho)\b"
)


@dataclass(frozen=True)
class Question:
    text: str  # normalized, as typed
    folded: str
    kind: QuestionKind
    ket_luan: tuple[str, ...] = ()  # "183-KL/TW", in order of mention
    agencies: tuple[str, ...] = ()  # folded names attested in the corpus, e.g. "bo tu phap"
    mentions: tuple[str, ...] = ()  # the same names as typed, e.g. "Bộ Tư pháp"
    unknown_agencies: tuple[str, ...] = ()  # agency-like names the corpus never mentions
    topic: str = ""  # what retrieval should look for (accented when typed so)
    followup: bool = False
    inherited: tuple[str, ...] = field(default=())  # slots taken from the previous turn


def ket_luan_numbers(folded: str) -> list[str]:
    found: list[tuple[int, str]] = []
    for pattern in _KL_PATTERNS:
        for m in pattern.finditer(folded):
            found.append((m.start(), f"{int(m.group(1))}-KL/TW"))
    out: list[str] = []
    for _, number in sorted(found):
        if number not in out:
            out.append(number)
    return out


def _strip_spans(text: str, spans: list[tuple[int, int]]) -> str:
    out, last = [], 0
    for start, end in sorted(spans):
        if start >= last:
            out.append(text[last:start])
            last = end
    out.append(text[last:])
    return re.sub(r"\s+", " ", " ".join(out)).strip(" ,.?!")


def agencies(folded: str, attested: AttestedPhrases) -> tuple[list[str], list[str], list[tuple[int, int]]]:
    """(attested agency names, unknown agency-like names, spans of the attested ones in the folded text)."""
    known: list[str] = []
    unknown: list[str] = []
    spans: list[tuple[int, int]] = []
    for m in _AGENCY.finditer(folded):
        head = m.group(1)
        before = folded[: m.start()].split()[-1:]
        if before and before[0] in _NOT_AFTER.get(head, ()):
            continue  # "đảng bộ", "cán bộ", "toàn bộ", "văn bản", "cơ bản"
        tail: list[str] = []
        for w in m.group(2).split():
            if w in _AGENCY_STOP and not (w == "giao" and tail == [] and head == "bo"):
                break
            tail.append(w)
        if not tail:
            continue
        name = " ".join([head, *tail])
        rest = folded[m.start() :] + " "
        if any(rest.startswith(x) and not rest[len(x)].isalnum() for x in _NOT_AGENCIES):
            continue
        best = ""
        for size in range(len(tail), 0, -1):
            candidate = " ".join([head, *tail[:size]])
            if attested(candidate):
                best = candidate
                break
        if best and best not in known:
            known.append(best)
            spans.append((m.start(), m.start() + len(best)))
        elif not best and len(tail) >= 1 and head in ("bo", "uy ban", "dang uy", "van phong", "hoi dong"):
            unknown.append(name)
    return known, unknown, spans


class AttestedPhrases:
    """Is a folded phrase a run of words somewhere in the corpus? (for agency names)."""

    def __init__(self, texts: list[str]) -> None:
        self._words = [w for t in texts for w in re.findall(r"\w+", normalize(t))]
        self._folded = [fold(w) for w in self._words]
        self._text = " " + " ".join(self._folded) + " "

    def __call__(self, phrase: str) -> bool:
        return f" {phrase} " in self._text

    def spelling(self, phrase: str) -> str | None:
        """How the corpus writes a folded phrase: "bo tu phap" → "Bộ Tư pháp" (its first occurrence)."""
        at = self._text.find(f" {phrase} ")
        if at < 0:
            return None
        start = self._text.count(" ", 0, at + 1) - 1
        return " ".join(self._words[start : start + len(phrase.split())])


def kind_of(folded: str, has_agency: bool, has_kl: bool) -> QuestionKind:
    if _GREETING.match(folded):
        return "greeting"
    for kind, pattern in _CUES:
        if not pattern.search(folded):
            continue
        if kind == "newest" and not re.search(r"\b(ket luan|van ban|kl)\b", folded):
            continue
        if kind == "summary" and not has_kl:
            continue
        if kind in ("who", "list", "deadline") and has_agency and kind != "deadline":
            return "task"
        return kind
    if has_agency and (_TASK.search(folded) or len(folded.split()) <= 8):
        return "task"
    if has_kl and len(folded.split()) <= 6:
        return "summary"
    return "generic"


def analyze(message: str, attested: AttestedPhrases) -> Question:
    text = normalize(message)
    folded = fold(text)
    numbers = ket_luan_numbers(folded)
    known, unknown, spans = agencies(folded, attested)
    kind = kind_of(folded, bool(known), bool(numbers))
    n_words = len(re.findall(r"\w+", folded))
    followup = (bool(_FOLLOWUP.search(folded)) and n_words <= 12) or (
        n_words <= 6 and not numbers and not known and kind in ("deadline", "signer", "date", "report", "who")
    )
    # the corpus's spelling, not the typed one: "bo tu phap" is answered as "Bộ Tư pháp"
    mentions = tuple(attested.spelling(name) or text[s:e] for name, (s, e) in zip(known, spans, strict=False))
    return Question(
        text=text,
        folded=folded,
        kind=kind,
        ket_luan=tuple(numbers),
        agencies=tuple(known),
        mentions=mentions,
        unknown_agencies=tuple(unknown),
        topic=text,
        followup=followup,
    )


_FOLLOWUP_WORDS = re.compile(
    r"^(con|the con|vay con|vay thi|vay|the|con ve|con doi voi|doi voi|thi|va|nhung|ngoai ra)\b"
    r"|\b(thi sao|the nao|ra sao|nua khong|nua|thi the nao)\s*\??$"
)


def core(question: Question) -> str:
    """The question without its follow-up phrasing, KL numbers and agencies: what is left of its topic."""
    spans = [(m.start(), m.end()) for m in _FOLLOWUP_WORDS.finditer(question.folded)]
    for pattern in _KL_PATTERNS:
        spans += [(m.start(), m.end()) for m in pattern.finditer(question.folded)]
    for name in (*question.agencies, *question.unknown_agencies):
        i = question.folded.find(name)
        if i >= 0:
            spans.append((i, i + len(name)))
    return _strip_spans(question.text, spans)


def merge(current: Question, previous: Question) -> Question:
    """A follow-up takes what it does not say from the previous question: Kết luận, agency, topic, kind."""
    inherited: list[str] = []
    ket_luan = current.ket_luan
    if not ket_luan and previous.ket_luan:
        ket_luan = previous.ket_luan
        inherited.append("ket_luan")
    names, mentions, unknown = current.agencies, current.mentions, current.unknown_agencies
    if not names and not unknown and previous.agencies:
        names, mentions = previous.agencies, previous.mentions
        inherited.append("agencies")
    own = core(current)
    own_words = [w for w in fold(own).split() if w not in _FILLER]
    kind = current.kind
    if not own_words:
        # "Còn Bộ Tư pháp thì sao?", "Còn Kết luận 221?": same question, new subject
        if previous.kind not in ("greeting",):
            kind = previous.kind
            inherited.append("kind")
        if kind in ("generic", "who", "list") and names:
            kind = "task"
        topic = " ".join(x for x in (core(previous), *mentions) if x)
        inherited.append("topic")
    else:
        if (
            kind == "generic"
            and len(own_words) <= 3
            and previous.kind not in ("greeting", "generic", "documents", "newest")
        ):
            kind = previous.kind
            inherited.append("kind")
        extra = [m for m in mentions if fold(m) not in current.folded]
        if len(own_words) <= 3:
            extra.append(core(previous))
        topic = " ".join([current.text, *extra])
    return replace(
        current,
        kind=kind,
        ket_luan=ket_luan,
        agencies=names,
        mentions=mentions,
        unknown_agencies=unknown,
        topic=topic or previous.topic,
        inherited=tuple(inherited),
    )


_FILLER_TEXT = """
cac nhung thi sao the nao ra con vay do nay no a nhi a oi nua khong co gi ve ket luan kl
"""
_FILLER = frozenset(_FILLER_TEXT.split())
