"""A press report's passages → the passage of the same Kết luận's official text that says the same (every
sentence of the report passage found in it word for word, diacritics, case and punctuation aside), so that
retrieval cites the official text over a retelling. A sentence changed by one word (another agency, another
date) is a different sentence: the report's passage is cited then."""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Mapping, Sequence
from itertools import pairwise

from index.models import Document, Passage
from index.textnorm import fold, words

MIN_WORDS = 8  # shorter passages ("Kết luận nêu rõ:") say too little to be matched safely
WORDLESS = ("metadata", "signature")  # headers and signatures differ between a text and its reports
_SENTENCE_END = re.compile(r"(?<=[.;:!?…])\s+")

Pairs = frozenset[tuple[str, str]]


def _pairs(text: str) -> Pairs:
    syllables = words(fold(text))
    return frozenset(pairwise(syllables))


def _holds(official: Pairs, sentences: list[Pairs]) -> bool:
    """Every consecutive pair of words of every sentence is one the official passage has."""
    return all(sentence <= official for sentence in sentences)


def official_twins(passages: Sequence[Passage], documents: Mapping[str, Document]) -> dict[int, int]:
    """Row of a press report's passage → row of the official passage of its Kết luận that says the same."""
    told: dict[str | None, set[bool]] = defaultdict(set)
    for told_by in documents.values():
        told[told_by.ket_luan].add(told_by.official)
    both = {number for number, kinds in told.items() if number and kinds == {True, False}}
    twins: dict[int, int] = {}
    if not both:  # no Kết luận has an official text and a report: nothing to look at (most corpora)
        return twins
    official: dict[str, list[tuple[int, Pairs]]] = defaultdict(list)
    for row, passage in enumerate(passages):
        document = documents.get(passage.document_id)
        if document and document.official and passage.ket_luan in both and passage.kind not in WORDLESS:
            official[passage.ket_luan].append((row, _pairs(passage.text)))
    for row, passage in enumerate(passages):
        document = documents.get(passage.document_id)
        candidates = official.get(passage.ket_luan or "")
        if not candidates or document is None or document.official or passage.kind in WORDLESS:
            continue
        if len(words(fold(passage.text))) < MIN_WORDS:
            continue
        sentences = [p for s in _SENTENCE_END.split(passage.text) if (p := _pairs(s))]
        holding = [(len(pairs), j) for j, pairs in candidates if _holds(pairs, sentences)]
        if holding:
            twins[row] = min(holding)[1]  # the shortest that holds it: the most to the point
    return twins
