"""Vietnamese text → folded word-segment tokens for BM25, and accent restoration for unaccented queries.

Documents are segmented by pyvi (MIT); every token is folded (no diacritics, lower case), so a query typed
without diacritics, with old-style tones, in NFD or in capitals yields exactly the same tokens as the clean
form. Queries are segmented by longest match against the corpus's own word list, which needs no accents.
"""

from __future__ import annotations

import math
import re
from collections import Counter, defaultdict
from collections.abc import Iterable
from functools import cache
from itertools import pairwise
from pathlib import Path

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


def query_segments(text: str, compounds: set[str] | dict[str, int]) -> list[str]:
    """Folded segments of a query: the split into known compounds that covers the most syllables with
    compounds, frequent ones preferred ("hop bao lau" → "hop", "bao_lau", not "hop_bao", "lau")."""
    syllables = _TOKEN.findall(fold(normalize(text)).replace("_", " "))
    weight = compounds if isinstance(compounds, dict) else dict.fromkeys(compounds, 1)
    n = len(syllables)
    # best[i] = (syllables covered by compounds, log-frequency bonus, segments) for syllables[i:]
    best: list[tuple[int, float, list[str]]] = [(0, 0.0, [])] * (n + 1)
    for i in range(n - 1, -1, -1):
        covered, bonus, rest = best[i + 1]
        choice = (covered, bonus, [syllables[i], *rest])
        for size in range(2, min(MAX_WORD, n - i) + 1):
            candidate = "_".join(syllables[i : i + size])
            if candidate in weight:
                c, b, r = best[i + size]
                option = (c + size, b + math.log1p(weight[candidate]), [candidate, *r])
                if option[:2] > choice[:2]:
                    choice = option
        best[i] = choice
    return best[0][2]


def query_tokens(text: str, compounds: set[str] | dict[str, int]) -> list[str]:
    tokens: list[str] = []
    flat: list[str] = []
    for segment in query_segments(text, compounds):
        parts = segment.split("_")
        if len(parts) > 1:
            tokens.extend(parts)
        tokens.append(segment)
        flat.extend(p for p in parts if p.isalnum())
    return tokens + _bigrams(flat)


@cache
def question_vocabulary() -> dict[str, int]:
    """Common question words ("khi nào", "bao lâu", "hạn chót") that a legal corpus rarely spells out."""
    words: dict[str, int] = {}
    for line in (Path(__file__).with_name("vocabulary.txt")).read_text("utf-8").splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            phrase, _, weight = line.partition("|")
            words[normalize(phrase).lower()] = int(weight or 3)
    return words


def accent_table(accented_words: Iterable[str]) -> dict[str, tuple[str, int]]:
    """folded word → (its most frequent accented spelling in the corpus, how often the folded form occurs).

    A syllable restored on its own is a word on its own (compounds are restored whole first), so it takes the
    spelling the corpus gives it as a word of its own where it has one: "hop" alone is "họp" (Bộ Chính trị sẽ
    họp), though "hợp" is more frequent inside "phối hợp", "phù hợp"."""
    counts: dict[str, Counter[str]] = defaultdict(Counter)
    alone: dict[str, Counter[str]] = defaultdict(Counter)
    for word in accented_words:
        lower = normalize(word).lower()
        counts[fold(lower).replace(" ", "_")][lower] += 1
        syllables = lower.split()
        for syllable in syllables:
            counts[fold(syllable)][syllable] += 1
        if len(syllables) == 1:
            alone[fold(lower)][lower] += 1
    return {key: ((alone.get(key) or c).most_common(1)[0][0], sum(c.values())) for key, c in counts.items()}


def with_question_words(table: dict[str, tuple[str, int]]) -> dict[str, tuple[str, int]]:
    """The corpus's accent table plus the question vocabulary, which wins unless the corpus uses a word far
    more often (a legal text says "khi", rarely "khi nào")."""
    merged = dict(table)
    for phrase, weight in question_vocabulary().items():
        key = fold(phrase).replace(" ", "_")
        spelled, seen = merged.get(key, (phrase, 0))
        merged[key] = (phrase if seen < weight * 10 else spelled, seen + weight * 10)
    return merged


def restore_accents(text: str, table: dict[str, tuple[str, int]]) -> str:
    """Unaccented "bo tu phap duoc giao viec gi" → "bộ tư pháp được giao việc gì", spelled as the corpus does."""
    weights = {key: count for key, (_, count) in table.items() if "_" in key}
    segments = query_segments(text, weights)
    return " ".join(table[seg][0] if seg in table else seg.replace("_", " ") for seg in segments)
