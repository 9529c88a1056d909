"""A user's message → one structured question, read once: the written form (abbreviations, spoken words and
fillers resolved by index/language/questions.py), its intent, the Kết luận, agencies, date window and other
documents it names, and whether it leans on the previous turn. Retrieval gets a SearchQuery from it.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from functools import cache
from typing import Literal

from index.language import agencies as agency_names
from index.language import references as document_refs
from index.language.questions import (
    asking_words,
    asks_person,
    cues,
    normalize_question,
    quantity,
    stopwords,
    window,
)
from index.search import SearchFilters, SearchQuery
from index.textnorm import fold, has_diacritics, normalize, words

QuestionKind = Literal[
    "greeting",
    "newest",
    "oldest",
    "documents",
    "signer",
    "date",
    "report",
    "summary",
    "series",
    "compare",
    "window",
    "reference",
    "deadline",
    "task",
    "who",
    "list",
    "generic",
]
# The intent names of the evaluation and the analytics, per kind.
INTENTS: dict[str, str] = {
    "greeting": "greeting",
    "newest": "metadata",
    "oldest": "metadata",
    "documents": "metadata",
    "signer": "metadata",
    "date": "metadata",
    "report": "metadata",
    "summary": "summary",
    "series": "summary_series",
    "compare": "comparison",
    "window": "deadline_window",
    "reference": "reference",
    "deadline": "deadline",
    "task": "agency_tasks",
    "who": "list",
    "list": "list",
    "generic": "fact",
}
METADATA_KINDS = frozenset({"newest", "oldest", "documents", "signer", "date", "report"})

# another document by its number: "Kế hoạch số 56-KH/BCĐ", "Quy định 89-QĐ/TW", "Nghị quyết 18"
_DOC_NUMBER = re.compile(r"\b(\d{1,4})\s*-\s*([a-z]{1,4})\s*/\s*([a-z]{1,8})\b")
_DOC_KIND = re.compile(
    r"\b(nghi quyet|quy dinh|quyet dinh|ke hoach|chi thi|bao cao|cong van|thong bao|huong dan)\s+(?:so\s+)?(\d{1,4})\b"
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
_AGENCY_STOP = frozenset(
    [
        "duoc",
        "phai",
        "co",
        "lam",
        "thi",
        "can",
        "se",
        "chiu",
        "la",
        "trong",
        "theo",
        "ve",
        "nhu",
        "da",
        "dang",
        "cho",
        "khi",
        "nao",
        "gi",
        "sao",
        "o",
        "de",
        "phoi",
        "hop",
        "chu",
        "giao",
        "ket",
        "luan",
        "yeu",
        "cau",
        "thuc",
        "hien",
        "nhiem",
        "trach",
        "ra",
        "hay",
        "hoac",
        "voi",
        "cung",
        "con",
        "nay",
        "do",
        "cham",
        "nhat",
        "truoc",
        "ngay",
        "hang",
        "thang",
        "nam",
        "den",
        "sau",
        "bao",
        "gui",
        "hop",
    ]
)
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
    # everyday compounds that begin like an agency ("bộ phận một cửa", "bạn bè", "bản sao")
    "bo phan",
    "bo doi",
    "bo luat",
    "bo ho so",
    "bo tieu chi",
    "bo chi so",
    "ban ngay",
    "ban dem",
    "ban be",
    "ban sao",
)
_NOT_AFTER = {
    "bo": frozenset(["dang", "can", "toan", "mot", "tung", "moi", "nhieu", "cac"]),
    "ban": frozenset(["van", "co", "phien", "can"]),
}


@dataclass(frozen=True)
class Question:
    text: str  # the written form of the message
    folded: str
    kind: QuestionKind
    ket_luan: tuple[str, ...] = ()  # "183-KL/TW", in order of mention
    agencies: tuple[str, ...] = ()  # folded names attested in the corpus, e.g. "bo tu phap"
    mentions: tuple[str, ...] = ()  # the same names as the corpus writes them, e.g. "Bộ Tư pháp"
    unknown_agencies: tuple[str, ...] = ()  # agency-like names the corpus never mentions
    topic: str = ""  # what retrieval should look for
    followup: bool = False
    inherited: tuple[str, ...] = field(default=())  # slots taken from the previous turn
    original: str = ""  # as typed
    added: tuple[str, ...] = ()  # the documents' words for everyday words of the message
    window: tuple[dt.date | None, dt.date | None] | None = None  # a date window the question names
    status: Literal["overdue", "upcoming"] | None = None
    references: tuple[str, ...] = ()  # other documents named by number, e.g. "56-KH/BCĐ", "192-KL/TW"
    content: tuple[str, ...] = ()  # folded content words: what the question is about, not what it asks
    quantity: str | None = None  # what a "bao nhiêu …" question counts ("" unnamed); None: no quantity asked
    canonical: tuple[str, ...] = ()  # the agencies named, by their canonical names ("Bộ Tư pháp")
    # folded words of the everyday phrases `added` stands for ("truong", "hoc")
    everyday: frozenset[str] = frozenset()
    besides: tuple[str, ...] = ()  # folded words of what "ngoài …" sets aside: not what the answer is about
    earlier: tuple[
        str, ...
    ] = ()  # a follow-up: the passages the previous answer cited ("đoạn đó", "việc đó")

    @property
    def intent(self) -> str:
        if self.kind == "window" and self.status:
            return self.status
        return INTENTS.get(self.kind, "fact")

    def search_query(self, filters: SearchFilters | None = None) -> SearchQuery:
        """What retrieval needs from the question: text to match, filters, and which passages it wants."""
        focus: Literal["content", "document", "signer", "newest", "oldest"] = "content"
        if self.kind == "signer":
            focus = "signer"
        elif self.kind in ("newest", "oldest"):
            focus = self.kind
        elif self.kind in METADATA_KINDS:
            focus = "document"
        text = self.topic or self.text
        if self.ket_luan:
            base = filters.model_copy() if filters else SearchFilters()
            filters = base.model_copy(update={"ket_luan": list(self.ket_luan)})
            text = strip_ket_luan(text)  # the name says nothing about which paragraph answers
        return SearchQuery(text=text, filters=filters, focus=focus)


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


@dataclass
class Lexicon:
    """What the reader knows of the corpus: attested phrases, the Kết luận it holds, the documents they
    mention, how to put accents back on a question typed without them, and today's date."""

    attested: AttestedPhrases
    ket_luan: frozenset[str] = frozenset()
    referenced: frozenset[str] = frozenset()  # folded numbers of documents the corpus mentions
    restore: Callable[[str], str] = lambda text: text
    today: Callable[[], dt.date] = dt.date.today
    newest: str | None = None  # the newest Kết luận held


_BARE_NUMBER = re.compile(r"(?<![\d/.-])\b(\d{2,4})\b(?!\s*[/.-]\s*\d)")
_DOC_WORD_BEFORE = re.compile(
    r"(nghi quyet|quy dinh|quyet dinh|ke hoach|chi thi|bao cao|cong van|so|ngay|thang|nam|quy|muc|diem|dieu|khoan|"
    r"hoi nghi trung uong|tw)\s*$"
)


def bare_ket_luan(folded: str, known: frozenset[str]) -> list[str]:
    """Kết luận the service holds, named by their bare number ("theo 183", "179 với 183"): a number that
    is one of them and is no date, no other document's number, no count of something."""
    out: list[str] = []
    for m in _BARE_NUMBER.finditer(folded):
        number = f"{int(m.group(1))}-KL/TW"
        if number not in known or _DOC_WORD_BEFORE.search(folded[: m.start()]):
            continue
        after = folded[m.end() :].split()[:1]
        if after and after[0] in (
            "nam",
            "ngay",
            "thang",
            "nguoi",
            "xa",
            "tinh",
            "don",
            "van",
            "ho",
            "trieu",
            "ty",
        ):
            continue  # "183 xã", "221 người"
        if number not in out:
            out.append(number)
    return out


def ket_luan_numbers(folded: str) -> list[str]:
    """Kết luận numbers a question names, in order: "kết luận 183 và 179" names both (the language module)."""
    return document_refs.ket_luan_numbers(folded)


def document_numbers(text: str) -> list[str]:
    """Numbers of documents other than by "Kết luận N" ("56-KH/BCĐ", "nghị quyết 18"), as folded keys."""
    folded = fold(text)
    out = [f"{int(m.group(1))}-{m.group(2)}/{m.group(3)}" for m in _DOC_NUMBER.finditer(folded)]
    out += [f"{m.group(1)} {int(m.group(2))}" for m in _DOC_KIND.finditer(folded)]
    return list(dict.fromkeys(out))


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
            if tail and w in _ACTS:
                break  # "Đảng ủy Chính phủ chỉ đạo …": the name ends where what it does begins ("Ban Chỉ đạo" stays)
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
            if before and before[0] in _COLLECTIVE:
                continue  # "làm việc với các đảng ủy tháo gỡ …": bodies in general, not one the corpus lacks
            unknown.append(name)
    return known, unknown, spans


_BESIDES = re.compile(r"\bngoai (.{3,80}?)(?:,|\s(?=thi |con |ra\s*,|ra (?:thi|con)\b))")
_DOCUMENT_WORDS = re.compile(r"\b(ket luan|van ban|kl|nghi quyet|quy dinh|no|do|nay|ay|tren)\b")
# the end of a period a report covers, not a task's deadline: "tình hình từ 18/7 tới bữa nào",
# "báo cáo phản ánh tình hình đến ngày nào"
_PERIOD = re.compile(
    r"\btu (?:ngay )?\d{1,2}(?:\s*[/-]\s*\d{1,2})?\b.*\b(?:toi|den)\b"
    r"|\btinh hinh\b.*\b(?:den|toi) (?:ngay|bua|hom|luc|thoi diem) nao\b"
)
_NEWEST_QUALIFIER = re.compile(
    r"\b(theo|trong|cua|o|tai) (cai |ban )?(ket luan|van ban)( \w+)? (moi nhat|gan day nhat|gan nhat|moi ban hanh)\b"
)
_SPOKEN_AGENCY_LEAD = re.compile(
    # the name is looked ahead, so "rồi bên tư pháp" tries the words after "rồi" and after "bên"
    r"(?:^|\b(?:ben|phia|ong|may ong|co quan|thang|tui|con|the con|roi|va|voi)\s+)(?=(\w+(?: \w+){0,3}))"
)


_GENERIC_HEADS = frozenset(
    [
        "uy",
        "ban",
        "bo",
        "dang",
        "co",
        "quan",
        "hoi",
        "dong",
        "van",
        "phong",
        "cac",
        "nhan",
        "dan",
        "cap",
        "tinh",
        "xa",
    ]
)


@cache
def _agency_keys() -> dict[str, str]:
    """Canonical name → folded key of every agency that can be assigned a task (read once)."""
    return {a.name: agency_names._key(a.name) for a in agency_names.known() if not a.issuer}


def spoken_agencies(folded: str) -> list[str]:
    """Agencies called by a short name, as people say them: "bên tư pháp" (Bộ Tư pháp), "Ban Tổ chức"
    (Ban Tổ chức Trung ương), "Mặt trận" — a known agency whose name is "Bộ/Ban …" plus the words, or
    starts with them (two words at least)."""
    names = _agency_keys()
    out: list[str] = []
    for m in _SPOKEN_AGENCY_LEAD.finditer(folded):
        tail = m.group(1).split()
        for size in range(len(tail), 0, -1):
            words_ = " ".join(tail[:size])
            hits = [n for n, key in names.items() if key in (f"bo {words_}", f"ban {words_}")]
            if not hits and size >= 2 and not set(tail[:size]) <= _GENERIC_HEADS:
                hits = [n for n, key in names.items() if key.startswith(words_ + " ") or key == words_]
            if hits:
                best = min(hits, key=len)
                if best not in out:
                    out.append(best)
                break
    return out


# words before a head ("các đảng ủy …") that make it bodies in general rather than a named one
_COLLECTIVE = frozenset(["cac", "nhung", "moi", "cung"])
# first syllables of what an agency does (chỉ đạo, lãnh đạo, phối hợp, chủ trì) that end its name
_ACTS = frozenset(["chi", "lanh", "phoi", "chu"])
# nouns before "của" that make the agency after it the one who acts ("nhiệm vụ của", "việc của", "hạn của")
_ACTING = frozenset(["vu", "viec", "nhiem", "han", "tro", "phan", "ai"])
_OWNED_BY = re.compile(r"(\w+) cua\s*$")


def folded_before(text: str, at: int) -> str:
    return " ".join(words(fold(text[:at])))


def _owner(before: str) -> bool:
    """Whether an agency whose mention follows `before` (folded) owns a thing rather than acts."""
    m = _OWNED_BY.search(before)
    return m is not None and m.group(1) not in _ACTING


def content_words(folded: str, drop: Iterable[str] = ()) -> tuple[str, ...]:
    """The words of a folded question that say what it is about (not how it asks, not whom it names)."""
    dropped = set(drop)
    stop = stopwords()
    asking = asking_words()
    phrases = asking.phrases | {w.replace("_", " ") for w in stop if "_" in w}
    tokens = words(folded)
    kept: list[str] = []
    i = 0
    while i < len(tokens):
        size = next(
            (n for n in (4, 3, 2) if i + n <= len(tokens) and " ".join(tokens[i : i + n]) in phrases), 0
        )
        if size:
            i += size
            continue
        w = tokens[i]
        i += 1
        if w in dropped or w.isdigit() or w in asking.words or (w in stop and w not in asking.compound_only):
            continue
        kept.append(w)
    return tuple(kept)


def kind_of(
    found: frozenset[str],
    *,
    agencies_named: bool,
    numbers: list[str],
    specific: bool,
    has_window: bool,
    bare_words: int = 0,
    about_document: bool = True,
) -> QuestionKind:
    """The intent, from the cues present and the slots filled (rules on the language, not on examples).
    `bare_words`: how many words the question has besides its Kết luận mention; `about_document`: it names
    a Kết luận or a document ("ký ngày nào" asks about one; "đại hội diễn ra khi nào" does not)."""
    if "greeting" in found or "thanks" in found:
        return "greeting"
    if "compare" in found and len(numbers) >= 2:
        return "compare"
    if (
        "digest" in found
        and not agencies_named
        and about_document
        and ("series" in found or bare_words <= 12 or not specific)
    ):
        # "tóm tắt/tóm gọn Kết luận 183 giúp mình, dài quá": a summary, whatever else the message says
        return "summary" if numbers and "series" not in found else "series"
    if "summary" in found and "series" in found and not numbers and not agencies_named:
        return "series"  # "mấy cái kết luận …, mỗi cái nói chuyện gì": what each of them says
    if "summary" in found and not specific and not agencies_named:
        return "summary" if numbers else ("series" if "series" in found or not numbers else "summary")
    if ("overdue" in found or "upcoming" in found) and (not specific or "window_ask" in found):
        return "window"  # "mấy bữa tới xã phường phải xong việc gì": what falls due, whoever it falls on
    if has_window and "window_ask" in found and (not specific or "tasks" in found):
        return "window"  # "tháng 8/2025 có những việc gì phải xong, em cần lập bảng theo dõi"
    for kind in ("newest", "oldest", "documents", "signer", "report", "date"):
        if kind == "documents" and agencies_named and "tasks" in found:
            continue  # "Bộ Tư pháp phải ra những văn bản gì": what the agency must issue, its tasks
        if kind in found and (about_document or kind in ("newest", "documents", "signer")):
            return kind  # type: ignore[return-value]
    if (
        agencies_named
        and not specific
        and ("tasks" in found or "list" in found or "who" in found or "deadline" in found)
    ):
        return "task"
    if "deadline" in found:
        return "deadline"
    if agencies_named and ("tasks" in found or "list" in found or "who" in found):
        return "task"
    if "list" in found:
        return "list"
    if "who" in found:
        return "who"
    if "tasks" in found and not specific and not numbers:
        return "task" if agencies_named else "list"
    if agencies_named and not specific:
        return "task"
    if (
        numbers
        and not specific
        and not agencies_named
        and not (found - {"followup", "tasks", "list"})
        and bare_words <= 4
    ):
        return "summary"  # "KL 183 yêu cầu gì?", "kết luận 221 giao những gì": what it asks of everyone
    if numbers and not specific and not (found - {"followup"}) and bare_words <= 3:
        return "summary"  # "Kết luận 183?", "KL 183 thế nào"
    return "generic"


def analyze(message: str, lexicon: Lexicon | AttestedPhrases, today: dt.date | None = None) -> Question:
    if isinstance(lexicon, AttestedPhrases):
        lexicon = Lexicon(lexicon)
    norm = normalize_question(message)
    text, folded = norm.text, norm.folded
    besides: tuple[str, ...] = ()
    m = _BESIDES.search(folded)
    if m and text[m.start(1) :].split()[0].lower() != "ra":  # "ngoài ra" (moreover) sets nothing aside
        # "Ngoài việc làm việc với các đảng ủy, … còn phải làm gì?": what is set aside is not what is asked
        besides = content_words(m.group(1))
        text = (text[: m.start()] + text[m.end() :]).strip(" ,")
        folded = fold(text)
    numbers = ket_luan_numbers(folded)
    if not numbers or ("compare" in cues(folded) and len(numbers) < 2):
        numbers += [n for n in bare_ket_luan(folded, lexicon.ket_luan) if n not in numbers]
    known, unknown, spans = agencies(folded, lexicon.attested)
    mentions_found = [m for m in agency_names.find(text) if not m.agency.issuer]
    # "kiến nghị của địa phương", "hồ sơ của Bộ Y tế": an agency that owns what is asked about is not who must
    # act ("nhiệm vụ của Bộ Nội vụ", "việc của xã" still name who acts)
    owners = [m for m in mentions_found if _owner(folded_before(text, m.start))]
    canonical = list(dict.fromkeys(m.agency.name for m in mentions_found if m not in owners))
    owned = {key for m in owners for key in (fold(text[m.start : m.end]), fold(m.agency.name))}
    owned -= {fold(c) for c in canonical}  # named again as who acts
    if owned:
        kept = [(k, span) for k, span in zip(known, spans, strict=True) if k not in owned]
        known, spans = [k for k, _ in kept], [span for _, span in kept]
    written = [fold(text[m.start : m.end]) for m in mentions_found]  # the agencies found, as written
    # a spoken short name ("mặt trận …") inside a name already found ("mặt trận trung ương") is that name
    spoken = [
        n for n in spoken_agencies(folded) if not any(" ".join(fold(n).split()[:2]) in w for w in written)
    ]
    for name in [*canonical, *spoken]:
        if name not in canonical:
            canonical.append(name)
        key = fold(name)
        if lexicon.attested(key) and key not in known:
            known.append(key)
            spans.append((0, 0))
    # an agency-like name that is a known agency as written ("ủy ban tỉnh" for Ủy ban nhân dân cấp tỉnh) is known
    unknown = [
        u
        for u in unknown
        if not any(fold(c).startswith(u) or u.startswith(fold(c)) for c in canonical)
        and not any(u in w or w in u for w in written)
    ]
    # cue words inside agency names ("Ban Chỉ đạo", "Ủy ban Kiểm tra") say nothing of what is asked
    bare = folded
    for name in sorted({*known, *(agency_names._key(c) for c in canonical)}, key=len, reverse=True):
        bare = bare.replace(name, " ")
    found = cues(" ".join(bare.split()))
    others = [
        n for n in document_numbers(text) if not n.endswith("/tw") or not n.split("-")[1].startswith("kl")
    ]
    mentioned = [n for n in numbers if n not in lexicon.ket_luan and fold(n) in lexicon.referenced]
    references = tuple([*mentioned, *others])
    drop = {w for name in (*known, *(fold(c) for c in canonical), *written) for w in words(name)}
    drop |= {w for n in numbers for w in fold(n).split("-")}
    everyday = frozenset(w for phrase in norm.kept for w in words(fold(phrase)))
    # the everyday words the documents' words were added for say nothing more ("kêu bớt" → "yêu cầu giảm")
    content = content_words(folded, drop | everyday | {"ket", "luan", "kl", "tw"})
    content += tuple(w for w in content_words(fold(" ".join(norm.added)), drop) if w not in content)
    specific = len(content) >= 2
    span = window(folded, today or lexicon.today())
    status: Literal["overdue", "upcoming"] | None = None
    if "overdue" in found:
        status = "overdue"
    elif "upcoming" in found:
        status = "upcoming"
    if "newest" in found and _NEWEST_QUALIFIER.search(folded) and lexicon.newest and not numbers:
        numbers = [lexicon.newest]  # "… theo kết luận mới nhất": a filter, not the question
        found = found - {"newest"}
    asks_tasks = bool(known or canonical) and "tasks" in found
    if references and (others or not [n for n in numbers if n in lexicon.ket_luan]) and not asks_tasks:
        kind: QuestionKind = "reference"
    else:
        kl_words = sum(len(folded[a:b].split()) for a, b, _ in document_refs.ket_luan_spans(folded))
        kind = kind_of(found, agencies_named=bool(known or canonical), numbers=numbers, specific=specific,
                       has_window=span is not None, bare_words=len(words(folded)) - kl_words,
                       about_document=bool(numbers) or bool(_DOCUMENT_WORDS.search(folded)))  # fmt: skip
        if kind == "deadline" and _PERIOD.search(folded):
            kind = "generic"  # "tình hình từ 18/7 tới bữa nào": the end of a period, not a task's deadline
    n_words = len(words(folded))
    followup = (
        ("followup" in found and n_words <= 12)
        or (
            n_words <= 6
            and not numbers
            and not known
            and kind in ("deadline", "signer", "date", "report", "who")
        )
        # "có được mấy cái": a few words with nothing of their own continue the conversation
        or (
            n_words <= 5
            and not numbers
            and not known
            and not canonical
            and not content
            and kind != "greeting"
        )
    )
    mentions = tuple(
        lexicon.attested.spelling(name) or text[s:e] for name, (s, e) in zip(known, spans, strict=False)
    )
    topic = text
    if not has_diacritics(norm.original):
        topic = lexicon.restore(text)  # accents back from the corpus's own spelling, for the embedder
    if norm.added:
        topic = " ".join((topic, *norm.added))
    return Question(
        text=text,
        folded=folded,
        kind=kind,
        ket_luan=tuple(numbers),
        agencies=tuple(known),
        mentions=mentions,
        unknown_agencies=tuple(unknown),
        topic=topic,
        followup=followup,
        original=norm.original,
        added=norm.added,
        window=span,
        status=status,
        references=references,
        content=content,
        quantity="nguoi" if asks_person(folded) else quantity(folded),
        canonical=tuple(canonical),
        everyday=everyday,
        besides=besides,
    )


_FOLLOWUP_WORDS = re.compile(
    r"^(con|the con|vay con|vay thi|vay|the|con ve|con doi voi|doi voi|thi|va|nhung|ngoai ra)\b"
    r"|\b(thi sao|the nao|ra sao|nua khong|nua|thi the nao)\s*\??$"
)


def core(question: Question) -> str:
    """The question without its follow-up phrasing, KL numbers and agencies: what is left of its topic."""
    spans = [(m.start(), m.end()) for m in _FOLLOWUP_WORDS.finditer(question.folded)]
    spans += [(a, b) for a, b, _ in document_refs.ket_luan_spans(question.folded)]
    for name in (*question.agencies, *question.unknown_agencies):
        i = question.folded.find(name)
        if i >= 0:
            spans.append((i, i + len(name)))
    return _strip_spans(question.text, spans)


def _before(previous: Question) -> str:
    """What a follow-up takes as its subject from the turn before: that turn's own words, or, when it was a
    follow-up itself ("ai chịu trách nhiệm?"), the subject it carried on from the turn before it."""
    return previous.topic if "topic" in previous.inherited else core(previous)


def merge(current: Question, previous: Question) -> Question:
    """A follow-up takes what it does not say from the previous question: Kết luận, agency, topic, kind."""
    inherited: list[str] = []
    ket_luan = current.ket_luan
    if not ket_luan and previous.ket_luan:
        ket_luan = previous.ket_luan
        inherited.append("ket_luan")
    names, mentions, unknown = current.agencies, current.mentions, current.unknown_agencies
    canonical = current.canonical
    if not names and not unknown and not canonical and (previous.agencies or previous.canonical):
        names, mentions, canonical = previous.agencies, previous.mentions, previous.canonical
        inherited.append("agencies")
    own = core(current)
    own_words = [w for w in fold(own).split() if w not in _FILLER]
    kind = current.kind
    window_, status = current.window, current.status
    if not own_words or not current.content:
        # "Còn Bộ Tư pháp thì sao?", "Hạn chót của việc đó là ngày nào?": the same subject as before, and
        # the same question when this one asks nothing of its own
        if previous.kind not in ("greeting",) and (not own_words or kind in ("generic", "summary", "who")):
            kind = previous.kind
            inherited.append("kind")
            window_, status = window_ or previous.window, status or previous.status
        if kind in ("generic", "who", "list") and names:
            kind = "task"
        topic = " ".join(x for x in (current.topic if own_words else "", _before(previous), *mentions) if x)
        inherited.append("topic")
    else:
        if (
            kind in ("generic", "summary")
            and len(own_words) <= 3
            and previous.kind not in ("greeting", "generic", "documents", "newest")
        ):
            kind = previous.kind
            inherited.append("kind")
        extra = [m for m in mentions if fold(m) not in current.folded]
        if len(current.content) <= 2:
            extra.append(_before(previous))
            inherited.append("topic")
        topic = " ".join([current.topic or current.text, *extra])
    if kind == "compare" and len(ket_luan) < 2 and previous.ket_luan:
        ket_luan = tuple(dict.fromkeys([*ket_luan, *previous.ket_luan]))
    return replace(
        current,
        kind=kind,
        ket_luan=ket_luan,
        agencies=names,
        mentions=mentions,
        unknown_agencies=unknown,
        canonical=canonical,
        topic=topic or previous.topic,
        inherited=tuple(inherited),
        window=window_,
        status=status,
        content=current.content or previous.content,
    )


_FILLER = frozenset(
    [
        "cac",
        "nhung",
        "thi",
        "sao",
        "the",
        "nao",
        "ra",
        "con",
        "vay",
        "do",
        "nay",
        "no",
        "a",
        "nhi",
        "a",
        "oi",
        "nua",
        "khong",
        "co",
        "gi",
        "ve",
        "ket",
        "luan",
        "kl",
    ]
)


def strip_ket_luan(text: str) -> str:
    """The question without its "Kết luận 183" mention, once that mention has become a filter."""
    spans = [(a, b) for a, b, _ in document_refs.ket_luan_spans(text)]
    stripped = _strip_spans(text, spans)
    return stripped if any(ch.isalnum() for ch in stripped) else text


class Reader:
    """Reads messages against one index: its agencies, Kết luận, referenced documents and spelling."""

    def __init__(self, lexicon: Lexicon) -> None:
        self.lexicon = lexicon

    def read(self, message: str, today: dt.date | None = None) -> Question:
        """`today`: the day relative windows ("tuần tới", "từ nay đến cuối năm") are read from (default: the
        lexicon's today)."""
        return analyze(message, self.lexicon, today)

    def search_query(self, text: str, filters: SearchFilters | None = None) -> SearchQuery:
        """A search box query read like a question: "Kết luận 183 …" filters on 183-KL/TW."""
        question = self.read(text)
        known = [n for n in question.ket_luan if n in self.lexicon.ket_luan]
        if not known or (filters and filters.ket_luan):
            return replace(question, ket_luan=()).search_query(filters)
        return replace(question, ket_luan=tuple(known)).search_query(filters)
