"""A question as people type it → the written form: chat abbreviations expanded, fillers dropped, spoken
question words and everyday words replaced by the documents' own ("chừng nào" → "khi nào", "sáp nhập" →
"sắp xếp"), plus the stopwords of questions. Word lists are the files in data/.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from index.textnorm import fold, has_diacritics, normalize

DATA = Path(__file__).with_name("data")
MAX_PHRASE = 4  # words in the longest phrase of a word list
_TOKEN = re.compile(r"\w+(?:[/.]\w+)?|[^\w\s]")
# "kl183", "KL-183", "nq18": a document abbreviation glued to its number
_GLUED = re.compile(r"(?i)\b(kl|nq|qđ|qd|kh|bc)[-.]?(?=\d)")
_MONTH_SHORT = re.compile(r"(?i)\bt(\d{1,2})(?=\s*[/-]\s*\d{4}\b)")  # "t10/2025" is "tháng 10/2025"
_SPACE_BEFORE = re.compile(r"\s+([,.;:!?)\]])")
_SPACE_AFTER = re.compile(r"([(\[])\s+")


@dataclass(frozen=True)
class NormalizedQuestion:
    original: str  # as typed (NFC, single spaces)
    text: str  # the written form, to read and to search
    folded: str  # `text` folded: lower case, no diacritics
    replaced: tuple[tuple[str, str], ...] = ()  # (typed, written) pairs, for logs and tests
    added: tuple[str, ...] = ()  # the documents' words for everyday ones the user kept ("sắp xếp" …)
    kept: tuple[str, ...] = ()  # the user's everyday words that `added` stands for ("trường học" …)

    @property
    def search_text(self) -> str:
        """What retrieval reads: the written form and the documents' words for the user's everyday ones."""
        return " ".join((self.text, *self.added))


def _rows(name: str) -> list[list[str]]:
    out = []
    for line in (DATA / name).read_text("utf-8").splitlines():
        if line.strip() and not line.startswith("#"):
            out.append([c.strip() for c in line.split("\t")])
    return out


@dataclass(frozen=True)
class _Entry:
    written: str
    add: bool = False  # keep the typed words and add the written ones to what is searched
    typed: tuple[str, ...] = ()  # the table's own words, lower case, with their diacritics


@dataclass(frozen=True)
class _Table:
    exact: dict[tuple[str, ...], _Entry]  # lower-case words as typed → entry
    folded: dict[tuple[str, ...], _Entry]  # folded words → entry


def _key(typed: str) -> tuple[str, ...]:
    return tuple(_TOKEN.findall(normalize(typed).lower()))


@cache
def abbreviations() -> _Table:
    """A typed form with diacritics matches only as typed; one without matches both ways ("dc", "đc")."""
    exact: dict[tuple[str, ...], _Entry] = {}
    folded: dict[tuple[str, ...], _Entry] = {}
    for row in _rows("abbreviations.tsv"):
        exact.setdefault(_key(row[0]), _Entry(row[1]))
        if not has_diacritics(row[0]):
            folded.setdefault(tuple(fold(w) for w in _key(row[0])), _Entry(row[1]))
    return _Table(exact, folded)


@cache
def spoken() -> _Table:
    """Spoken forms match with or without diacritics: "chung nao" is "chừng nào"; mode `exact` only as typed
    ("tháng sáu" is June, "tháng sau" next month)."""
    exact: dict[tuple[str, ...], _Entry] = {}
    folded: dict[tuple[str, ...], _Entry] = {}
    for row in _rows("spoken.tsv"):
        mode = row[2] if len(row) > 2 else "replace"
        entry = _Entry(row[1], add=mode == "add", typed=_key(row[0]))
        exact.setdefault(_key(row[0]), entry)
        if mode != "exact":
            folded.setdefault(tuple(fold(w) for w in _key(row[0])), entry)
    return _Table(exact, folded)


@cache
def fillers() -> frozenset[tuple[str, ...]]:
    return frozenset(tuple(_TOKEN.findall(normalize(r[0]).lower())) for r in _rows("fillers.txt"))


@dataclass(frozen=True)
class AskingWords:
    phrases: frozenset[str]  # removed first, whole
    words: frozenset[str]  # then dropped one by one
    compound_only: frozenset[str]  # stop words only inside the compounds of stopwords.txt


@cache
def asking_words() -> AskingWords:
    """data/asking_words.txt: the words and phrases of how a question asks (not what it is about)."""
    kinds: dict[str, frozenset[str]] = {}
    for line in (DATA / "asking_words.txt").read_text("utf-8").splitlines():
        if line.strip() and not line.startswith("#"):
            kind, _, items = line.partition(":")
            sep = "," if kind.strip() == "phrases" else None
            kinds[kind.strip()] = frozenset(" ".join(i.split()) for i in items.split(sep) if i.strip())
    return AskingWords(kinds["phrases"], kinds["words"], kinds["compound_only"])


@cache
def stopwords() -> frozenset[str]:
    """Folded question and function words ("khi_nao", "duoc", "ket_luan") that say nothing about a clause."""
    words: set[str] = set()
    for line in (DATA / "stopwords.txt").read_text("utf-8").splitlines():
        if not line.startswith("#"):
            words.update(line.split())
    return frozenset(words)


def _match(tokens: list[str], i: int, table: _Table) -> tuple[int, _Entry] | None:
    """The longest phrase of `table` starting at token i: (its length, the replacement)."""
    for size in range(min(MAX_PHRASE, len(tokens) - i), 0, -1):
        window = tuple(t.lower() for t in tokens[i : i + size])
        if not all(w[0].isalnum() for w in window):
            continue
        if window in table.exact:
            return size, table.exact[window]
        key = tuple(fold(w) for w in window)
        entry = table.folded.get(key)
        # a word typed with its diacritics is that word: "dẫn" is not "dặn", though both fold to "dan"
        if entry is not None and (
            not entry.typed
            or all(w == t or not has_diacritics(w) for w, t in zip(window, entry.typed, strict=True))
        ):
            return size, entry
    return None


def _is_filler(tokens: list[str], i: int) -> int:
    for size in range(min(MAX_PHRASE, len(tokens) - i), 0, -1):
        if tuple(t.lower() for t in tokens[i : i + size]) in fillers():
            return size
    return 0


def _pass(text: str, table: _Table) -> tuple[str, list[tuple[str, str]], list[str], list[str]]:
    """One left-to-right pass of longest matches of `table` (and fillers) over the words of `text`."""
    glued = _GLUED.sub(lambda m: m.group(1) + " ", text)
    found_tokens = list(_TOKEN.finditer(glued))
    tokens = [m.group(0) for m in found_tokens]
    # whether white space stood before each token, so "183-KL/TW" and "31/12/2025" come back as typed
    spaced = [i > 0 and m.start() > found_tokens[i - 1].end() for i, m in enumerate(found_tokens)]
    out: list[str] = []
    replaced: list[tuple[str, str]] = []
    added: list[str] = []
    kept: list[str] = []
    i = 0
    while i < len(tokens):
        if size := _is_filler(tokens, i):
            i += size
            continue
        sep = " " if out and spaced[i] else ""
        found = _match(tokens, i, table)
        if found is None:
            out.append(sep + tokens[i])
            i += 1
            continue
        size, entry = found
        typed = glued[found_tokens[i].start() : found_tokens[i + size - 1].end()]
        if entry.add:
            out.append(sep + typed)
            kept.append(typed)
            if entry.written not in added:
                added.append(entry.written)
        else:
            out.append(sep + entry.written)
            if typed.lower() != entry.written.lower():
                replaced.append((typed, entry.written))
        i += size
    return "".join(out), replaced, added, kept


@cache
def _introduction() -> tuple[re.Pattern[str], re.Pattern[str]]:
    """(the first clause, which names its speaker; a further clause, which may not)."""
    speakers = "|".join(re.escape(r[0]) for r in _rows("speakers.txt"))
    clause = r"(?:hiện |đang |từng |nguyên |vốn )?(?:là|làm|công tác|ở|sống ở)\s[^,.;?!]*[,.;]\s*"
    return re.compile(rf"^(?:{speakers})\s+{clause}", re.I), re.compile(
        rf"^(?:(?:{speakers})\s+)?{clause}", re.I
    )


_ASKED_BY = re.compile(r"^[^:?!.\n]{1,40}\bhỏi\s*:\s*(?=\S)", re.IGNORECASE)


def without_introduction(text: str) -> str:
    """`text` without the clauses at its start in which the asker says who they are ("chú là cán bộ hưu, từng
    làm Mặt trận xã, …"): the first names its speaker (data/speakers.txt), the ones after it may not."""
    if tagged := _ASKED_BY.match(text):  # "bác hưu trí hỏi: …", "Phóng viên hỏi: …"
        text = text[tagged.end() :]
    first, further = _introduction()
    m = first.match(text)
    if m is None:
        return text
    rest = text[m.end() :]
    while (more := further.match(rest)) is not None and more.end() < len(rest):
        rest = rest[more.end() :]
    return rest if any(ch.isalnum() for ch in rest) else text


def normalize_question(message: str) -> NormalizedQuestion:
    """The written form of a typed question; its meaning, numbers and names are kept as they are."""
    original = normalize(message)
    text, replaced, _, _ = _pass(
        _MONTH_SHORT.sub(r"tháng \1", without_introduction(original)), abbreviations()
    )
    text, more, added, kept = _pass(text, spoken())
    text = _SPACE_AFTER.sub(r"\1", _SPACE_BEFORE.sub(r"\1", text))
    text = re.sub(r"^[\s,.;:!?]+", "", text).strip()
    if not any(ch.isalnum() for ch in text):
        text = original  # a message made only of fillers ("ạ") is kept as it was
    return NormalizedQuestion(original, text, fold(text), (*replaced, *more), tuple(added), tuple(kept))


@cache
def _cue_table() -> tuple[tuple[str, re.Pattern[str]], ...]:
    return tuple((row[0], re.compile(row[1])) for row in _rows("question_words.tsv"))


def cues(folded: str) -> frozenset[str]:
    """The intents whose cue words a folded question holds (data/question_words.tsv)."""
    return frozenset(intent for intent, pattern in _cue_table() if pattern.search(folded))


_D = r"(\d{1,2})\s*[/-]\s*(\d{1,2})\s*[/-]\s*(\d{4})"
_MONTH = re.compile(r"\bthang\s+(\d{1,2})(?:\s*[/-]\s*|\s+nam\s+|\s+)(\d{4})\b")
_MONTH_NO_YEAR = re.compile(r"\bthang\s+(\d{1,2})\b(?!\s*[/-]\s*\d)")
_YEAR = re.compile(r"\bnam\s+(\d{4})\b")
_QUARTER = re.compile(r"\bquy\s+(i{1,3}|iv|[1-4])\s*(?:[/-]\s*|\s+nam\s+)(\d{4})\b")
_RANGE = re.compile(rf"\btu\s+(?:ngay\s+)?{_D}\s+den\s+(?:het\s+)?(?:ngay\s+)?{_D}")
_BEFORE = re.compile(rf"\b(?:truoc|den|cham nhat|han)\s+(?:het\s+)?(?:ngay\s+)?{_D}")
_AFTER = re.compile(rf"\b(?:sau|tu)\s+(?:ngay\s+)?{_D}")
_ON = re.compile(rf"\b(?:ngay\s+)?{_D}")
_UNTIL_YEAR_END = re.compile(r"\b(?:den|toi) (?:het |cuoi )+nam(?: (\d{4}|nay))?\b|\bcuoi nam (\d{4}|nay)\b")
_FROM_NOW = re.compile(r"\b(?:tu|ke tu) (?:nay|gio|bay gio|hom nay|luc nay)\b")
# "tuần tới" is next week; "vài tuần tới", "3 tuần tới" are a stretch from today (an upcoming question)
_RELATIVE = re.compile(r"(?<!vai )(?<!may )(?<!\d )\b(tuan|thang|nam|quy)\s+(nay|toi|sau|truoc)\b")
# months written as words: "tháng mười năm 2025", "tháng chạp"; "tháng năm" only before a year
_MONTH_WORDS = {"gieng": 1, "hai": 2, "ba": 3, "tu": 4, "nam": 5, "sau": 6, "bay": 7, "tam": 8,
                "chin": 9, "muoi": 10, "muoi mot": 11, "muoi hai": 12, "chap": 12}  # fmt: skip
_MONTH_WORD = re.compile(
    r"\bthang (muoi mot|muoi hai|muoi|gieng|hai|ba|bay|tam|chin|chap|(?:tu|sau|nam)(?=\s*(?:/|nam \d|\d)))\b"
)
_THIS_YEAR = re.compile(r"\b(thang \d{1,2}) (?:nam )?nay\b")
_QUARTERS = {"i": 1, "ii": 2, "iii": 3, "iv": 4, "1": 1, "2": 2, "3": 3, "4": 4}


def _day(d: str, m: str, y: str) -> dt.date | None:
    try:
        return dt.date(int(y), int(m), int(d))
    except ValueError:
        return None


def _month_end(year: int, month: int) -> dt.date:
    return (dt.date(year + month // 12, month % 12 + 1, 1)) - dt.timedelta(days=1)


def window(folded: str, today: dt.date) -> tuple[dt.date | None, dt.date | None] | None:
    """The date window a folded question names: "trong tháng 10/2025", "trước ngày 31/12/2025", "năm 2025",
    "quý IV/2025", "từ 1/9/2025 đến 30/9/2025", "tháng này", "tuần tới" (relative to `today`); None if none."""
    folded = _MONTH_WORD.sub(lambda m: f"thang {_MONTH_WORDS[m.group(1)]}", folded)
    folded = _THIS_YEAR.sub(rf"\1 nam {today.year}", folded)
    if m := _RANGE.search(folded):
        return _day(*m.group(1, 2, 3)), _day(*m.group(4, 5, 6))
    if m := _BEFORE.search(folded):
        return None, _day(*m.group(1, 2, 3))
    if m := _AFTER.search(folded):
        return _day(*m.group(1, 2, 3)), None
    if m := _UNTIL_YEAR_END.search(folded):
        said = m.group(1) or m.group(2)
        year = int(said) if said and said.isdigit() else today.year  # "cuối năm (nay)": this year
        end = dt.date(year, 12, 31)
        # "từ nay đến cuối năm 2025" asked after that year: the tasks due by its end, not an empty window
        return (today if _FROM_NOW.search(folded) and today <= end else None), end
    if m := _QUARTER.search(folded):
        q, year = _QUARTERS[m.group(1)], int(m.group(2))
        return dt.date(year, 3 * q - 2, 1), _month_end(year, 3 * q)
    if m := _MONTH.search(folded):
        month, year = int(m.group(1)), int(m.group(2))
        if 1 <= month <= 12:
            return dt.date(year, month, 1), _month_end(year, month)
    if m := _ON.search(folded):
        day = _day(*m.group(1, 2, 3))
        return (day, day) if day else None
    if m := _RELATIVE.search(folded):
        unit, which = m.groups()
        shift = {"nay": 0, "toi": 1, "sau": 1, "truoc": -1}[which]
        if unit == "tuan":
            start = today - dt.timedelta(days=today.weekday()) + dt.timedelta(weeks=shift)
            return start, start + dt.timedelta(days=6)
        if unit == "thang":
            month_index = today.year * 12 + today.month - 1 + shift
            year, month = divmod(month_index, 12)
            return dt.date(year, month + 1, 1), _month_end(year, month + 1)
        if unit == "quy":
            q_index = today.year * 4 + (today.month - 1) // 3 + shift
            year, q = divmod(q_index, 4)
            return dt.date(year, 3 * q + 1, 1), _month_end(year, 3 * q + 3)
        return dt.date(today.year + shift, 1, 1), dt.date(today.year + shift, 12, 31)
    if m := _MONTH_NO_YEAR.search(folded):
        month = int(m.group(1))
        if 1 <= month <= 12:
            return dt.date(today.year, month, 1), _month_end(today.year, month)
    if m := _YEAR.search(folded):
        year = int(m.group(1))
        return dt.date(year, 1, 1), dt.date(year, 12, 31)
    return None


_QUANTITY = re.compile(
    # "bộ máy năm 2025" is no "mấy năm": not after "bộ", and a unit before a number is a date
    r"\b(?:bao nhieu|(?<!bo )may)\s+(phan tram|%|nam|thang|ngay|tuan|lan|nguoi|dong|trieu|ty)\b(?!\s*\d)"
    r"|\bbao nhieu(?:\s+(\w+))?"
    r"|\b(bao lau|tan suat)\b"
)
_TOLD = re.compile(r"\s+(?:\w+\s+)?roi\s*[,;]")
_NEAR_FUTURE = re.compile(
    r"^may (ngay|tuan|thang|hom|bua) (toi|nay|qua|sau|truoc|gan day|nua)\b"
)  # "mấy ngày tới"
_MONEY = re.compile(r"\b(luong|tien|phi|gia|kinh phi|thu nhap|phu cap|tro cap|muc huong)\b")
_NOT_A_NOUN = frozenset(
    [
        "viec",
        "nhiem",
        "cong",
        "noi",
        "van",
        "ket",
        "cai",
        "vu",
        "gi",
        "nao",
        "thi",
        "la",
        "duoc",
        "vay",
        "a",
        "ha",
    ]
)


def quantity(folded: str) -> str | None:
    """What a "bao nhiêu …" question counts: "phan tram", "tram" (of "trạm y tế"), "" when it names nothing;
    None when the question asks for no quantity."""
    # "gửi kiến nghị lên mấy lần rồi, …": a count told in passing ("… rồi") is not what is asked
    m = next((x for x in _QUANTITY.finditer(folded) if not _TOLD.match(folded, x.end())), None)
    if not m or _NEAR_FUTURE.search(folded[m.start() :]):
        return None
    if m.group(3):
        return "thoi gian"  # "bao lâu": a duration ("2 tháng", "1 tháng/lần")
    noun = m.group(1) or m.group(2) or ""
    if noun in _NOT_A_NOUN or not noun:
        return "dong" if _MONEY.search(folded) else ""
    return noun


_PERSON = re.compile(r"^ai la\b|\bla ai\b|\bten (la )?gi\b|\bho ten\b")
_TITLES = re.compile(
    r"\b(tong bi thu|chu tich|thu tuong|bo truong|bi thu|giam doc|truong ban|pho thu tuong)\b"
)


def asks_person(folded: str) -> bool:
    """ "Ai là Tổng Bí thư?", "Bộ trưởng Bộ Nội vụ là ai?": a person's name is asked, not an agency."""
    return bool(_PERSON.search(folded) and _TITLES.search(folded))
