"""Agency names as written or typed (any alias, accents or not) → canonical names, their spans in a text, closest
known names.

Reads data/agencies.tsv: one agency a line, `canonical<TAB>level<TAB>alias|alias|…`.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from functools import cache
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


def aligned_fold(text: str) -> tuple[str, list[int]]:
    """`fold(text)` one character at a time, with the index in `text` of every folded character, so a match
    in the folded text maps back to a span of the text as given (NFC or not)."""
    chars: list[str] = []
    where: list[int] = []
    for i, ch in enumerate(text):
        for f in fold(ch) if ch.isalpha() or not ch.isascii() else ch.lower():
            chars.append(f)
            where.append(i)
    return "".join(chars), where


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
def _matcher() -> tuple[re.Pattern[str], dict[str, tuple[Agency, tuple[str, ...]]]]:
    """One alternation of every alias, longest first, over folded text; group name → (agency, acronyms)."""
    entries: list[tuple[int, str, Agency, tuple[str, ...]]] = []
    for agency in known():
        for alias in dict.fromkeys((agency.name, *agency.aliases)):
            acronyms = tuple(_strip_marks(w) for w in alias.split() if _is_acronym(w))
            entries.append((len(_key(alias)), _alias_pattern(alias), agency, acronyms))
    entries.sort(key=lambda e: -e[0])
    groups: dict[str, tuple[Agency, tuple[str, ...]]] = {}
    alternatives: list[str] = []
    for n, (_, pattern, agency, acronyms) in enumerate(entries):
        groups[f"a{n}"] = (agency, acronyms)
        alternatives.append(f"(?P<a{n}>{pattern})")
    return re.compile(r"(?<!\w)(?:" + "|".join(alternatives) + r")(?!\w)"), groups


# A ministry the table does not list yet: "Bộ" and capitalised two-syllable names ("Bộ Kế hoạch và Đầu tư").
_MINISTRY = re.compile(r"(?<!\w)Bộ [A-ZĐ]\w* \w+(?:,? (?:và )?[A-ZĐ]\w* \w+)*")


def find(text: str) -> list[Mention]:
    """The agencies `text` names, as spans of `text`, in order, longest alias first where several overlap."""
    folded, where = aligned_fold(text)
    pattern, groups = _matcher()
    out: list[Mention] = []
    taken: list[tuple[int, int]] = []
    for match in pattern.finditer(folded):
        name = match.lastgroup or ""
        agency, acronyms = groups[name]
        start, end = where[match.start()], where[match.end() - 1] + 1
        if acronyms:
            written = _strip_marks(text[start:end])
            if not all(a in written for a in acronyms):
                continue
        out.append(Mention(start, end, agency))
        taken.append((start, end))
    for match in _MINISTRY.finditer(text):
        start, end = match.span()
        if any(s < end and start < e for s, e in taken):
            continue
        name = normalize(match.group(0))
        out.append(Mention(start, end, resolve(name) or Agency(name, "trung ương", ())))
    return sorted(out, key=lambda m: m.start)


def _strip_marks(text: str) -> str:
    """Diacritics removed, case kept ("ĐUCP" → "DUCP")."""
    decomposed = unicodedata.normalize("NFD", text.replace("đ", "d").replace("Đ", "D"))
    return "".join(c for c in decomposed if not unicodedata.combining(c))
