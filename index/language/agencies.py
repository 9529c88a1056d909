"""Agency names as written or typed (any alias, accents or not) → canonical names, their spans in a text, closest
known names.

Reads data/agencies.tsv: one agency a line, `canonical<TAB>level<TAB>alias|alias|…`.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from functools import cache, lru_cache
from pathlib import Path

from index.textnorm import fold, normalize

DATA = Path(__file__).with_name("data") / "agencies.tsv"
ISSUERS = ("Bộ Chính trị", "Ban Bí thư", "Ban Chấp hành Trung ương Đảng")


@dataclass(frozen=True)
class Agency:
    name: str  # canonical, as the documents write it: "Bộ Nội vụ"
    level: str  # "trung ương" | "tỉnh" | "xã" | ""
    aliases: tuple[str, ...]

    @property
    def issuer(self) -> bool:
        """Bộ Chính trị, Ban Bí thư, Ban Chấp hành Trung ương: they assign tasks, they are not assigned."""
        return self.name in ISSUERS


@dataclass(frozen=True)
class Mention:
    """An agency named in a text: `text[start:end]` is the name as written."""

    start: int
    end: int
    agency: Agency


def _key(text: str) -> str:
    return " ".join(fold(normalize(text)).replace("-", " ").split())


@cache
def known() -> tuple[Agency, ...]:
    out: list[Agency] = []
    for line in DATA.read_text("utf-8").splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        name, level, aliases = ([*line.split("\t"), "", ""])[:3]
        out.append(
            Agency(name.strip(), level.strip(), tuple(a.strip() for a in aliases.split("|") if a.strip()))
        )
    return tuple(out)


@cache
def _by_key() -> dict[str, Agency]:
    table: dict[str, Agency] = {}
    for agency in known():
        for alias in (agency.name, *agency.aliases):
            table.setdefault(_key(alias), agency)
    return table


def resolve(text: str) -> Agency | None:
    """The agency `text` names exactly (any alias, case and accents ignored), else None."""
    return _by_key().get(_key(text))


def suggest(text: str, limit: int = 3) -> list[str]:
    """Canonical names of the agencies closest to `text`, best first."""
    from rapidfuzz import fuzz, process

    table = _by_key()
    found = process.extract(_key(text), list(table), scorer=fuzz.WRatio, limit=limit * 4)
    out: list[str] = []
    for key, _, _ in found:
        name = table[key].name
        if name not in out:
            out.append(name)
    return out[:limit]


@lru_cache(maxsize=4096)
def _fold_char(ch: str) -> str:
    return fold(ch) if ch.isalpha() or not ch.isascii() else ch.lower()


class _FoldTable(dict[int, str]):
    """str.translate table that folds each character once and remembers it."""

    def __missing__(self, code: int) -> str:
        self[code] = _fold_char(chr(code))
        return self[code]


_FOLD_TABLE = _FoldTable()


def aligned_fold(text: str) -> tuple[str, list[int]]:
    """`fold(text)` with the index in `text` of every folded character, so a match in the folded text maps back
    to a span of the text as given (NFC or not)."""
    folded = text.translate(_FOLD_TABLE)
    if len(folded) == len(text):  # one character per character (NFC text)
        return folded, list(range(len(text)))
    chars: list[str] = []
    where: list[int] = []
    for i, ch in enumerate(text):
        for f in _fold_char(ch):
            chars.append(f)
            where.append(i)
    return "".join(chars), where


class _Same(dict[int, int]):
    """The identity map: folding kept every index."""

    def __missing__(self, key: int) -> int:
        return key

    def get(self, key: int, default: object = None) -> int:  # type: ignore[override]
        return key


def folded_index(text: str, folded: str, where: list[int]) -> dict[int, int]:
    """Index in the folded text of each index of `text` (the first folded character of it)."""
    if len(folded) == len(text):
        return _Same()
    return {w: i for i, w in reversed(list(enumerate(where)))}


def _is_acronym(word: str) -> bool:
    return len(word) >= 2 and word.upper() == word and any(c.isalpha() for c in word)


def _alias_pattern(alias: str) -> str:
    """Folded words joined by any spacing or hyphen; a comma in the alias ("các bộ, ngành") may be left out."""
    out = ""
    for chunk in fold(normalize(alias)).replace("-", " ").split(","):
        words = [re.escape(w) for w in chunk.split()]
        if words:
            out += (r"\s*,?\s*" if out else "") + r"[\s\-]+".join(words)
    return out


@cache
def _matcher() -> dict[str, list[tuple[re.Pattern[str], Agency, tuple[str, ...]]]]:
    """The aliases by their first folded word, longest first: the text is scanned word by word and only the
    aliases that can start at a word are tried there."""
    entries: list[tuple[int, str, re.Pattern[str], Agency, tuple[str, ...]]] = []
    for agency in known():
        for alias in dict.fromkeys((agency.name, *agency.aliases)):
            words = fold(normalize(alias)).replace("-", " ").replace(",", " ").split()
            if not words:
                continue
            acronyms = tuple(_strip_marks(w) for w in alias.split() if _is_acronym(w))
            pattern = re.compile(_alias_pattern(alias) + r"(?!\w)")
            entries.append((len(_key(alias)), words[0], pattern, agency, acronyms))
    entries.sort(key=lambda e: -e[0])
    table: dict[str, list[tuple[re.Pattern[str], Agency, tuple[str, ...]]]] = {}
    for _, first, pattern, agency, acronyms in entries:
        table.setdefault(first, []).append((pattern, agency, acronyms))
    return table


_WORD = re.compile(r"(?<!\w)\w+")


# A ministry the table does not list yet: "Bộ" and capitalised two-syllable names ("Bộ Kế hoạch và Đầu tư").
_MINISTRY = re.compile(r"(?<!\w)Bộ [A-ZĐ]\w* \w+(?:,? (?:và )?[A-ZĐ]\w* \w+)*")


# nouns that a bare collective name ("địa phương", "bộ, ngành") only qualifies when it follows them
_MODIFIED = [["quyen"], ["cap"], ["sach"], ["den"], ["luc"], ["ban"]]


def find(text: str) -> list[Mention]:
    """The agencies `text` names, as spans of `text`, in order, longest alias first where several overlap."""
    return list(_find(text))


@lru_cache(maxsize=2048)
def _find(text: str) -> tuple[Mention, ...]:
    folded, where = aligned_fold(text)
    table = _matcher()
    out: list[Mention] = []
    taken: list[tuple[int, int]] = []
    after = 0
    for word in _WORD.finditer(folded):
        if word.start() < after:
            continue
        for pattern, agency, acronyms in table.get(word.group(0), ()):
            match = pattern.match(folded, word.start())
            if not match:
                continue
            start, end = where[match.start()], where[match.end() - 1] + 1
            said = match.group(0)
            if not said.startswith("cac ") and folded[: match.start()].split()[-1:] in _MODIFIED:
                continue  # "chính quyền địa phương", "cấp địa phương": a word of a compound, not an addressee
            if acronyms and not all(a in _strip_marks(text[start:end]) for a in acronyms):
                continue  # an abbreviation counts only in capitals
            out.append(Mention(start, end, agency))
            taken.append((start, end))
            after = match.end()
            break
    for match in _MINISTRY.finditer(text):
        start, end = match.span()
        if any(s < end and start < e for s, e in taken):
            continue
        name = normalize(match.group(0))
        out.append(Mention(start, end, resolve(name) or Agency(name, "trung ương", ())))
    return tuple(sorted(out, key=lambda m: m.start))


def _strip_marks(text: str) -> str:
    """Diacritics removed, case kept ("ĐUCP" → "DUCP")."""
    decomposed = unicodedata.normalize("NFD", text.replace("đ", "d").replace("Đ", "D"))
    return "".join(c for c in decomposed if not unicodedata.combining(c))
