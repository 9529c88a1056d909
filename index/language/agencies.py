"""Agency names as written or typed (any alias, accents or not) → canonical names; closest known names.

Reads data/agencies.tsv: one agency a line, `canonical<TAB>level<TAB>alias|alias|…`.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from pathlib import Path

from index.textnorm import fold, normalize

DATA = Path(__file__).with_name("data") / "agencies.tsv"


@dataclass(frozen=True)
class Agency:
    name: str  # canonical, as the documents write it: "Bộ Nội vụ"
    level: str  # "trung ương" | "tỉnh" | "xã" | ""
    aliases: tuple[str, ...]


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
