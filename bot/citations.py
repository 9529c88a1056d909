"""An answer with [n] markers + numbered sources → renumbered answer, Citations; verbatim and support checks.

Markers are 1-based positions in the source list. Unknown markers are dropped and logged, never shown; the
cited sources are renumbered in order of first use, so every [n] has a citation and every citation is used.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Sequence

from bot.models import Citation
from index.models import Passage
from index.textnorm import fold, normalize, words

log = logging.getLogger(__name__)

MARKER = re.compile(r"\[(\d{1,3})\]")
# "[1, 2]", "[1-2]", "[1;3]" as LLMs write them → "[1][2]"
_GROUP = re.compile(r"\[(\d{1,3}(?:\s*[,;–-]\s*\d{1,3})+)\]")
_SPACE_BEFORE_PUNCT = re.compile(r"[ \t]+([.,;:!?])")
_DOUBLE_SPACE = re.compile(r"[ \t]{2,}")
_LIST_NUMBER = re.compile(r"\s*(?:\d{1,2}|[a-zđ])\.")
_TRAILING_MARKERS = re.compile(r"(?:[ \t]*\[[\d,;\s–-]+\])+")
_NUMBER = re.compile(r"\d+")

# Words that carry no claim: function words, question words, and the names every passage shares.
_CLAIM_STOPWORDS_TEXT = """
la va cua cho cac nhung mot nhu voi ve tai trong theo den tu da dang se duoc bi thi ma nay do no ay
co khong hay hoac cung con nua rat deu phai can nen de vao ra len o khi gi nao ai sao the ket luan
so ngay thang nam bo chinh tri ban bi thu kl tw viec nhiem vu yeu cau giao nhat moi
han chot thoi diem cu the van ban neu noi ro bao gom gom dong chi ngoai truoc sau hon
"""
CLAIM_STOPWORDS = frozenset(_CLAIM_STOPWORDS_TEXT.split())


def expand_groups(text: str) -> str:
    def one(match: re.Match[str]) -> str:
        parts = [int(p) for p in re.findall(r"\d{1,3}", match.group(1))]
        if re.search(r"[–-]", match.group(1)) and len(parts) == 2 and 0 < parts[1] - parts[0] <= 10:
            parts = list(range(parts[0], parts[1] + 1))
        return "".join(f"[{p}]" for p in parts)

    return _GROUP.sub(one, text)


def renumber(answer: str, sources: Sequence[Passage]) -> tuple[str, list[Citation]]:
    """Drop markers with no source, renumber the rest by first use, and build one Citation per used source."""
    answer = expand_groups(answer)
    mapping: dict[int, int] = {}
    used: list[Passage] = []
    dropped: list[int] = []

    def replace(match: re.Match[str]) -> str:
        n = int(match.group(1))
        if not 1 <= n <= len(sources):
            dropped.append(n)
            return ""
        source = sources[n - 1]
        # the same passage listed twice gets one number
        for old, new in mapping.items():
            if sources[old - 1].passage_id == source.passage_id:
                mapping[n] = new
                break
        if n not in mapping:
            used.append(source)
            mapping[n] = len(used)
        return f"[{mapping[n]}]"

    text = MARKER.sub(replace, answer)
    text = re.sub(r"(\[\d+\])(?:\1)+", r"\1", text)  # "[1][1]" → "[1]"
    if dropped:
        log.warning(
            "dropped citation markers with no source: %s (sources: %d)", sorted(set(dropped)), len(sources)
        )
    text = _DOUBLE_SPACE.sub(" ", _SPACE_BEFORE_PUNCT.sub(r"\1", text)).strip()
    citations = [Citation(**p.model_dump(), n=i) for i, p in enumerate(used, 1)]
    return text, citations


def markers(text: str) -> list[int]:
    return [int(m) for m in MARKER.findall(text)]


def check_markers(answer: str, citations: Sequence[Citation]) -> bool:
    """Every [n] has a citation with that n, and every citation is used."""
    used = set(markers(answer))
    return used == {c.n for c in citations} and len(citations) == len({c.n for c in citations})


def verbatim(citation: Passage, source_text: Callable[[str], str]) -> bool:
    """The citation's text stands exactly at its offsets in its source file."""
    try:
        text = source_text(citation.source.file)
    except Exception:  # an unreadable source is not verbatim
        return False
    return text[citation.source.start : citation.source.end] == citation.text


def next_boundary(text: str, start: int = 0) -> tuple[int, int] | None:
    """(end of the sentence, start of the next) for the first sentence end at or after `start` that is not
    inside a “quote”: a newline, or [.!?] with its trailing [n] markers followed by white space."""
    depth = 0
    i = start
    while i < len(text):
        ch = text[i]
        if ch == "“":
            depth += 1
        elif ch == "”":
            depth = max(depth - 1, 0)
        elif ch == "\n":
            j = i
            while j < len(text) and text[j] == "\n":
                j += 1
            return i, j
        elif (
            ch in ".!?"
            and depth == 0
            and not _LIST_NUMBER.fullmatch(text[text.rfind("\n", 0, i) + 1 : i + 1])
        ):
            m = _TRAILING_MARKERS.match(text, i + 1)
            end = m.end() if m else i + 1
            if end < len(text) and text[end] in " \t\n":
                nxt = end
                while nxt < len(text) and text[nxt] in " \t":
                    nxt += 1
                return end, nxt
        i += 1
    return None


def sentences(text: str) -> list[str]:
    """Sentences (and list lines) of an answer, each keeping its trailing markers; quotes stay whole."""
    parts: list[str] = []
    pos = 0
    while (found := next_boundary(text, pos)) is not None:
        end, nxt = found
        if text[pos:end].strip():
            parts.append(text[pos:end].strip())
        pos = nxt
    if text[pos:].strip():
        parts.append(text[pos:].strip())
    return parts


def claim_terms(sentence: str) -> list[str]:
    body = MARKER.sub(" ", sentence)
    return [
        w for w in words(fold(normalize(body))) if w not in CLAIM_STOPWORDS and not w.isdigit() and len(w) > 1
    ]


def supported(sentence: str, passages: Sequence[Passage], min_overlap: float = 0.6) -> bool:
    """As far as words can tell: the sentence's numbers and most of its content words are in the passages."""
    evidence_text = " ".join(
        f"{p.text} {p.label} {p.ket_luan or ''} {p.issued.day}/{p.issued.month}/{p.issued.year}"
        if p.issued
        else f"{p.text} {p.label} {p.ket_luan or ''}"
        for p in passages
    )
    evidence = fold(normalize(evidence_text))
    evidence_words = set(words(evidence))
    evidence_numbers = set(_NUMBER.findall(evidence))
    body = MARKER.sub(" ", sentence)
    numbers = set(_NUMBER.findall(body))
    if numbers - evidence_numbers:
        return False
    terms = claim_terms(sentence)
    if not terms:
        return True
    found = sum(1 for t in terms if t in evidence_words)
    return found / len(terms) >= min_overlap


_NO_ANSWER = re.compile(r"KHÔNG_ĐỦ_THÔNG_TIN|KHONG_DU_THONG_TIN")


class CitedAnswerBuilder:
    """LLM text (whole or streamed) → checked sentences: markers mapped to sources by first use, unknown
    markers dropped, sentences without a marker or not supported by the passages they cite dropped.

    `feed` returns the pieces ready to show, so a stream shows exactly what the final answer says.
    """

    def __init__(self, sources: Sequence[Passage]) -> None:
        self.sources = list(sources)
        self._buffer = ""
        self._mapping: dict[str, int] = {}  # passage_id → new number
        self._used: list[Passage] = []
        self._pieces: list[str] = []
        self._pending_sep = ""
        self.dropped_markers: list[int] = []
        self.dropped_sentences: list[str] = []

    def feed(self, chunk: str) -> list[str]:
        self._buffer += chunk
        out: list[str] = []
        while (found := next_boundary(self._buffer)) is not None:
            end, nxt = found
            if nxt >= len(self._buffer) and not self._buffer[end:nxt].count("\n"):
                break  # more markers may still follow in the next chunk
            sep = "\n" if "\n" in self._buffer[end:nxt] else " "
            sentence, self._buffer = self._buffer[:end], self._buffer[nxt:]
            out += self._accept(sentence, sep)
        return out

    def close(self) -> list[str]:
        rest, self._buffer = self._buffer, ""
        return self._accept(rest, "")

    def _accept(self, sentence: str, sep: str) -> list[str]:
        sentence = expand_groups(sentence.strip())
        if not sentence:
            if sep == "\n" and self._pieces:
                self._pending_sep = "\n"
            return []
        if _NO_ANSWER.search(sentence):
            return []
        cited: list[Passage] = []

        def known(match: re.Match[str]) -> str:
            n = int(match.group(1))
            if not 1 <= n <= len(self.sources):
                self.dropped_markers.append(n)
                return ""
            cited.append(self.sources[n - 1])
            return match.group(0)

        sentence = MARKER.sub(known, sentence)
        if not cited or not supported(sentence, cited):
            self.dropped_sentences.append(sentence)
            log.warning(
                "dropped an LLM sentence %s: %.120s",
                "without support" if cited else "without citation",
                sentence,
            )
            return []

        def renumber_one(match: re.Match[str]) -> str:
            p = self.sources[int(match.group(1)) - 1]
            if p.passage_id not in self._mapping:
                self._used.append(p)
                self._mapping[p.passage_id] = len(self._used)
            return f"[{self._mapping[p.passage_id]}]"

        sentence = MARKER.sub(renumber_one, sentence)
        sentence = re.sub(r"(\[\d+\])(?:\s*\1)+", r"\1", sentence)
        sentence = _DOUBLE_SPACE.sub(" ", _SPACE_BEFORE_PUNCT.sub(r"\1", sentence)).strip()
        piece = (self._pending_sep if self._pieces else "") + sentence
        self._pieces.append(piece)
        self._pending_sep = sep if sep else " "
        if sep == "\n":
            self._pending_sep = "\n"
        return [piece]

    def result(self) -> tuple[str, list[Citation]]:
        if self.dropped_markers:
            log.warning(
                "dropped citation markers with no source: %s (sources: %d)",
                sorted(set(self.dropped_markers)),
                len(self.sources),
            )
        text = "".join(self._pieces)
        citations = [Citation(**p.model_dump(), n=i) for i, p in enumerate(self._used, 1)]
        return text, citations
