"""Vietnamese text → folded word-segment tokens for BM25, and accent restoration for unaccented queries.

Documents are segmented by pyvi (MIT); every token is folded (no diacritics, lower case), so a query typed
without diacritics, with old-style tones, in NFD or in capitals yields exactly the same tokens as the clean
form. Queries are segmented by longest match against the corpus's own word list, which needs no accents.
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from collections.abc import Iterable
from itertools import pairwise

from index.textnorm import fold, normalize

_TOKEN = re.compile(r"[\w_]+", re.UNICODE)
MAX_WORD = 4  # syllables in the longest compound looked up in a query


def _segment(text: str) -> list[str]:
    from pyvi import ViTokenizer  # imported lazily: it loads a CRF model

    return [t for t in _TOKEN.findall(ViTokenizer.tokenize(normalize(text))) if t.strip("_")]


def _bigrams(syllables: list[str]) -> list[str]:
    # adjacent syllables, across word boundaries too: "bộ khoa học" matches "Bộ Khoa học", not "khoa học"
    return [f"{a}+{b}" for a, b in pairwise(syllables)]


def document_tokens(text: str) -> tuple[list[str], list[str]]:
    """(index tokens, accented words). Index tokens are folded syllables, folded compounds "tu_phap" and
    syllable bigrams "bo+tu"."""
    tokens: list[str] = []
    accented: list[str] = []
    flat: list[str] = []
    for word in _segment(text):
        syllables = [s for s in word.split("_") if s]
        folded = [fold(s) for s in syllables]
        tokens.extend(folded)
        flat.extend(f for f in folded if f.isalnum())
        if len(syllables) > 1:
            tokens.append("_".join(folded))
        accented.append(" ".join(syllables))
    tokens.extend(_bigrams(flat))
    return tokens, accented


def query_segments(text: str, compounds: set[str]) -> list[str]:
    """Folded segments of a query: greedy longest match of syllable runs against known compounds."""
    syllables = _TOKEN.findall(fold(normalize(text)).replace("_", " "))
    out: list[str] = []
    i = 0
    while i < len(syllables):
        for size in range(min(MAX_WORD, len(syllables) - i), 1, -1):
            candidate = "_".join(syllables[i : i + size])
            if candidate in compounds:
                out.append(candidate)
                i += size
                break
        else:
            out.append(syllables[i])
            i += 1
    return out


def query_tokens(text: str, compounds: set[str]) -> list[str]:
    tokens: list[str] = []
    flat: list[str] = []
    for segment in query_segments(text, compounds):
        parts = segment.split("_")
        if len(parts) > 1:
            tokens.extend(parts)
        tokens.append(segment)
        flat.extend(p for p in parts if p.isalnum())
    return tokens + _bigrams(flat)


def accent_table(accented_words: Iterable[str]) -> dict[str, str]:
    """folded word → its most frequent accented spelling in the corpus (lower case)."""
    counts: dict[str, Counter[str]] = defaultdict(Counter)
    for word in accented_words:
        lower = normalize(word).lower()
        counts[fold(lower).replace(" ", "_")][lower] += 1
        for syllable in lower.split():
            counts[fold(syllable)][syllable] += 1
    return {key: c.most_common(1)[0][0] for key, c in counts.items()}


def restore_accents(text: str, table: dict[str, str], compounds: set[str]) -> str:
    """ "bo tu phap duoc giao viec gi" → "bộ tư pháp được giao việc gì", from the corpus's own spelling."""
    return " ".join(table.get(seg, seg.replace("_", " ")) for seg in query_segments(text, compounds))
