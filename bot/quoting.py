"""Passage text → what an answer quotes: its sentences, and long sentences trimmed to the clauses that hold
what was asked, with "…" where something was left out. Quotes are always verbatim pieces of the passage."""

from __future__ import annotations

import re
from collections.abc import Sequence

from index.textnorm import fold, words

MAX_QUOTE_WORDS = 70
LEAD_MARKER = re.compile(r"^\s*(?:\d{1,2}\.|\((?:\d{1,2}|[ivx]{1,6})\)|[a-zđ]\)|[-–•+])\s+")
_SENTENCE_SPLIT = re.compile(r"(?<=[.!?…])\s+(?=[\"“(]?[A-ZĐÀ-Ỹ0-9])")


def split_sentences(text: str) -> list[str]:
    """Sentences of a passage as verbatim pieces of it (list markers at the start removed)."""
    body = LEAD_MARKER.sub("", text.strip(), count=1)
    out = []
    for piece in _SENTENCE_SPLIT.split(body):
        piece = piece.strip()
        if len(words(piece)) >= 3:
            out.append(piece)
    return out


def _weight(text: str, focus: Sequence[tuple[str, float]]) -> float:
    flat = " " + " ".join(words(fold(text))) + " "
    return sum(w for t, w in focus if f" {t} " in flat)


def trim(
    sentence: str,
    focus: Sequence[tuple[str, float]],
    max_words: int = MAX_QUOTE_WORDS,
    keep: Sequence[str] = (),
) -> str:
    """A long sentence → the clauses (split at ";") that hold most of the focus words, in order, with "…"
    where something was left out. A list announced with ":" keeps its items. Every `keep` string of the
    sentence (the fact asked for: a deadline, a standard) stays in the quote, whatever it costs."""
    out = _trim(sentence, focus, max_words)
    missing = [k for k in keep if k and k in sentence and k not in out]
    if not missing:
        return out
    if len(sentence.split()) <= max_words * 2:
        return sentence
    for k in missing:
        at = sentence.index(k)
        start = sentence.rfind(";", 0, at) + 1
        end = sentence.find(";", at + len(k))
        piece = sentence[start : end if end >= 0 else len(sentence)].strip()
        piece = (
            _window(piece, [(fold(k).strip(',.;:()“”"').split()[0], 1.0)], max_words)
            if len(piece.split()) > max_words
            else piece
        )
        out = out.rstrip(" …").rstrip(".") + " … " + piece
    return out


def _trim(sentence: str, focus: Sequence[tuple[str, float]], max_words: int) -> str:
    if len(sentence.split()) <= max_words:
        return sentence
    clauses = [c.strip() for c in re.split(r";\s+", sentence) if c.strip()]
    sizes = [len(c.split()) for c in clauses]
    scores = [_weight(c, focus) for c in clauses]
    best = max(range(len(clauses)), key=lambda i: (scores[i], -i))
    if sizes[best] > max_words:
        return (
            _window(clauses[best], focus, max_words)
            if len(clauses) == 1
            else (("… " if best else "") + _window(clauses[best], focus, max_words))
        )
    keep = {best}
    budget = max_words * 7 // 5 - sizes[best]  # room for a second clause that also answers
    if clauses[best].rstrip().endswith(":") or re.search(r"(như|sau|gồm|vực|là):\s", clauses[best]):
        order = list(range(best + 1, len(clauses)))  # the list the clause announces
    else:
        order = sorted(
            (i for i in range(len(clauses)) if i != best and scores[i] > 0),
            key=lambda i: (-scores[i], abs(i - best)),
        )
    for i in order:
        if sizes[i] <= budget:
            keep.add(i)
            budget -= sizes[i]
    picked = sorted(keep)
    text = ""
    for pos, i in enumerate(picked):
        if pos == 0:
            text = ("… " if i > 0 else "") + clauses[i]
        else:
            text += ("; " if i == picked[pos - 1] + 1 else " … ") + clauses[i]
    if picked[-1] < len(clauses) - 1:
        text = text.rstrip(".") + " …"
    return text


def _window(text: str, focus: Sequence[tuple[str, float]], max_words: int) -> str:
    """The max_words words of one long clause around its first focus word."""
    parts = text.split()
    if len(parts) <= max_words:
        return text
    folded = [fold(w).strip(',.;:()“”"') for w in parts]
    first = next((i for i, w in enumerate(folded) if any(w == t.split()[0] for t, _ in focus)), 0)
    start = max(0, min(first - max_words // 3, len(parts) - max_words))
    out = " ".join(parts[start : start + max_words]).rstrip(",;:")
    return ("… " if start else "") + out + (" …" if start + max_words < len(parts) else "")


def shorten(text: str, max_words: int) -> str:
    """The first `max_words` words of `text`, with "…" when cut."""
    parts = text.split()
    if len(parts) <= max_words:
        return text.strip()
    return " ".join(parts[:max_words]).rstrip(",;:") + " …"
