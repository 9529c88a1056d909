"""Vietnamese text as people type it → one comparable form (NFC, new-style tones, folded diacritics)."""

from __future__ import annotations

import functools
import re
import unicodedata

# Old-style tone placement on open syllables ("hoá", "uỷ") → the new style ("hóa", "ủy"). "qu" is a
# consonant cluster, so "quý" keeps its mark on the y.
_OLD_TO_NEW = {
    "oà": "òa", "oá": "óa", "oả": "ỏa", "oã": "õa", "oạ": "ọa",
    "oè": "òe", "oé": "óe", "oẻ": "ỏe", "oẽ": "õe", "oẹ": "ọe",
    "uỳ": "ùy", "uý": "úy", "uỷ": "ủy", "uỹ": "ũy", "uỵ": "ụy",
}  # fmt: skip
_OLD_TONE = re.compile(r"(?<![qQ])(" + "|".join(_OLD_TO_NEW) + r")(?!\w)", re.IGNORECASE)
# "gi" before a vowel is a consonant: a tone typed on its i ("gía", "gìơ") belongs on the vowel after it
_GI_TONE = re.compile(r"(?<!\w)([gG])([íìỉĩịÍÌỈĨỊ])([aăâeêoôơuưAĂÂEÊOÔƠUƯ])")
_SPACE = re.compile(r"\s+")
_WORD = re.compile(r"\w+", re.UNICODE)


def _swap_tone(match: re.Match[str]) -> str:
    old = match.group(0)
    new = _OLD_TO_NEW[old.lower()]
    return "".join(n.upper() if o.isupper() else n for o, n in zip(old, new, strict=True))


def _move_gi_tone(match: re.Match[str]) -> str:
    g, i, vowel = match.groups()
    decomposed = unicodedata.normalize("NFD", i)
    return g + decomposed[0] + unicodedata.normalize("NFC", vowel + decomposed[1:])


def nfc(text: str) -> str:
    return unicodedata.normalize("NFC", text)


def normalize(text: str) -> str:
    """NFC, new-style tone marks, single spaces. Case and diacritics are kept."""
    text = _GI_TONE.sub(_move_gi_tone, _OLD_TONE.sub(_swap_tone, nfc(text)))
    return _SPACE.sub(" ", text).strip()


def fold(text: str) -> str:
    """Lower case without diacritics: "Ủy ban" → "uy ban". Same length per character as NFC text."""
    # words and short phrases come back again and again (every question is read word by word against the
    # phrase tables): those are kept; a long text is folded each time, so the kept ones stay small
    return _fold_short(text) if len(text) <= _SHORT else _fold(text)


_SHORT = 40


@functools.lru_cache(maxsize=1 << 16)
def _fold_short(text: str) -> str:
    return _fold(text)


def _fold(text: str) -> str:
    decomposed = unicodedata.normalize("NFD", nfc(text).lower().replace("đ", "d"))
    stripped = "".join(c for c in decomposed if not unicodedata.combining(c))
    return unicodedata.normalize("NFC", stripped)


def has_diacritics(text: str) -> bool:
    return fold(text) != nfc(text).lower()


def words(text: str) -> list[str]:
    """Syllables (Vietnamese writes one syllable per space-separated token) of already-normalized text."""
    return _WORD.findall(text)
