"""An answer with [n] markers + numbered sources → renumbered answer, Citations; verbatim and support checks.

Markers are 1-based positions in the source list. Unknown markers are dropped and logged, never shown; the
cited sources are renumbered in order of first use, so every [n] has a citation and every citation is used.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
from collections.abc import Callable, Sequence

from bot.models import Citation
from index.language.agencies import find as find_agencies
from index.language.dates import DateMention, find_dates
from index.models import Passage
from index.textnorm import fold, nfc, normalize, words

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
        if re.search(r"[–-]", match.group(1)) and len(parts) == 2 and parts[0] < parts[1] <= parts[0] + 10:
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


def gate(
    answer: str, citations: Sequence[Citation], source_text: Callable[[str], str], answered: bool = True
) -> list[str]:
    """Why an answer may not be shown as it is (empty = it passes): every [n] has a citation, every citation
    is used, citations are numbered 1..N, each citation's text stands verbatim at its offsets, an answer
    cites something and a reply that answers nothing (`answered` false) cites nothing."""
    problems: list[str] = []
    numbers = [c.n for c in citations]
    used = set(markers(answer))
    for n in sorted(used - set(numbers)):
        problems.append(f"[{n}] has no citation")
    for n in sorted(set(numbers) - used):
        problems.append(f"citation {n} is not used")
    if sorted(numbers) != list(range(1, len(numbers) + 1)):
        problems.append(f"citations are not numbered 1..{len(numbers)}: {numbers}")
    for c in citations:
        if not verbatim(c, source_text):
            problems.append(f"citation {c.n} ({c.passage_id}) is not verbatim at its offsets")
    if answered and not citations:
        problems.append("an answer with no citation")
    if not answered and citations:
        problems.append("a reply that answers nothing has citations")
    return problems


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


# Negations: each one in a sentence must stand in the passage with the word it negates ("không cần").
_NEGATIONS = frozenset({"không", "chưa", "chẳng", "chả", "đừng", "chớ"})
# The issuers of every Kết luận: a sentence may name them whatever passage it cites.
_ISSUERS = re.compile(r"bo chinh tri|ban bi thu|ban chap hanh")
# An agency the word lists do not know, by its head word: "Bộ Quốc phòng", "Ủy ban Dân tộc" …
_UNKNOWN_AGENCY = re.compile(
    r"\b(?:Bộ|Ban|Ủy ban|Đảng ủy|Văn phòng|Tòa án|Viện|Kiểm toán|Thanh tra|Ngân hàng)\s+(\w+)(?:\s+\w+)?"
)
_KET_LUAN_REF = re.compile(r"(?:\bket luan\s+(?:so\s+)?|\bkl\s*)(\d{1,4})\b|\b(\d{1,4})\s*-\s*kl\b")
_PARTNER_CUE = "phoi hop"
_DATE_LIKE = re.compile(r"(?<![\d/.-])\d{1,2}\s*[/.-]\s*\d{1,2}\s*[/.-]\s*\d{4}(?!\d)")
_CLAUSE_END = re.compile(r"[.;:\n]")


def _ket_luan_refs(folded: str) -> set[str]:
    return {a or b for a, b in _KET_LUAN_REF.findall(folded)}


def _leads(text: str, claim: bool = False) -> dict[str, bool]:
    """Agency → whether the text gives it the lead somewhere: an agency named after "phối hợp" in its clause
    only works with others. A sentence (`claim`) that says "X phối hợp …" claims no lead for X either."""
    folded = fold(nfc(text))
    leads: dict[str, bool] = {}
    for m in find_agencies(text):
        clause_start = max((c.end() for c in _CLAUSE_END.finditer(folded, 0, m.start)), default=0)
        partner = _PARTNER_CUE in folded[clause_start : m.start] or (
            claim and folded[m.end :].lstrip().startswith(_PARTNER_CUE)
        )
        leads[m.agency.name] = leads.get(m.agency.name, False) or not partner
    return leads


def _covers(claim: DateMention, day: dt.date | None, precision: str) -> bool:
    """A passage date (`day` written to `precision`) falls on the day, in the month or in the year `claim`
    writes."""
    if claim.date is None or day is None:
        return False
    if claim.precision == "year":
        return day.year == claim.date.year
    if claim.precision == "month":
        return precision != "year" and (day.year, day.month) == (claim.date.year, claim.date.month)
    return precision in ("day", "week") and day == claim.date


def _masked(text: str, spans: Sequence[tuple[int, int]]) -> str:
    out = list(text)
    for start, end in spans:
        out[start:end] = " " * (end - start)
    return "".join(out)


def support_problems(sentence: str, passages: Sequence[Passage], question: str | None = None) -> list[str]:
    """Why the passages do not support the sentence (empty = supported, as far as words can tell).

    A sentence is supported when its dates, numbers, Kết luận numbers and agencies (with their role: chủ trì
    or phối hợp) stand in the passages, every negation stands there with the word it negates, it states a
    fact that is not just the question's own words, and most of its content words are in the passages.
    """
    body = normalize(MARKER.sub(" ", sentence))
    folded = fold(body)
    texts = [normalize(p.text) for p in passages]
    folded_texts = [fold(t) for t in texts]
    evidence_words = {w for t in [*folded_texts, *(fold(p.label) for p in passages)] for w in words(t)}
    problems: list[str] = []

    # dates, as dates: 31/12/2025 = 31-12-2025 = 31 tháng 12 năm 2025
    year = next((p.issued.year for p in passages if p.issued), None)
    passage_dates = [(d.date, d.precision) for p in passages
                     for d in find_dates(normalize(p.text), p.issued.year if p.issued else None)]  # fmt: skip
    passage_dates += [(p.issued, "day") for p in passages if p.issued]
    sentence_dates = [d for d in find_dates(body, year) if d.date is not None]
    for d in sentence_dates:
        if not any(_covers(d, day, precision) for day, precision in passage_dates):
            problems.append(f"date {body[d.start : d.end]!r} is not in the passage")
    rest = _masked(folded, [(d.start, d.end) for d in sentence_dates])
    for m in _DATE_LIKE.finditer(rest):
        problems.append(f"{body[m.start() : m.end()]!r} is not a calendar date")
    # Kết luận numbers: the cited passage's own or one it mentions
    own = {p.ket_luan.split("-")[0] for p in passages if p.ket_luan}
    mentioned = {ref for t in folded_texts for ref in _ket_luan_refs(t)}
    for ref in sorted(_ket_luan_refs(folded) - own - mentioned):
        problems.append(f"Kết luận {ref} is not the passage's")
    # other numbers (dates masked)
    numbers = set(_NUMBER.findall(rest))
    evidence_numbers = {n for t in [*texts, *(p.label for p in passages)] for n in _NUMBER.findall(t)}
    for n in sorted(numbers - evidence_numbers):
        problems.append(f"number {n} is not in the passage")
    # agencies and their roles
    sentence_leads = _leads(body, claim=True)
    passage_leads: dict[str, bool] = {}
    for t in texts:
        for name, lead in _leads(t).items():
            passage_leads[name] = passage_leads.get(name, False) or lead
    for name, lead in sentence_leads.items():
        if _ISSUERS.match(fold(name)):
            continue  # they issue every Kết luận
        if name not in passage_leads:
            problems.append(f"agency {name!r} is not in the passage")
        elif lead and not passage_leads[name]:
            problems.append(f"agency {name!r} only works with others (phối hợp) in the passage")
    known_spans = [(m.start, m.end) for m in find_agencies(body)]
    for m in _UNKNOWN_AGENCY.finditer(_masked(body, known_spans)):
        name = fold(m.group(0))
        named = any(_contains_words(t, name) for t in folded_texts)
        if m.group(1)[0].isupper() and not _ISSUERS.match(name) and not named:
            problems.append(f"agency {m.group(0)!r} is not in the passage")
    # negations, each with the word it negates
    tokens = words(body.lower())
    evidence_lower = [" ".join(words(t.lower())) for t in texts]
    for i, token in enumerate(tokens):
        if token in _NEGATIONS:
            phrase = " ".join(tokens[i : i + 2])
            if not any(_contains_words(t, phrase) for t in evidence_lower):
                problems.append(f"negation {phrase!r} is not in the passage")
    # a fact, not the question's words again
    terms = claim_terms(sentence)
    facts = bool(sentence_dates or numbers or sentence_leads)
    if not terms and not facts:
        problems.append("states no fact")
    elif body.endswith("?"):
        problems.append("asks a question")
    elif question and _restates(question, set(terms), sentence_dates, numbers, set(sentence_leads), year):
        problems.append("restates the question")
    if terms:
        found = sum(1 for t in terms if t in evidence_words)
        if found / len(terms) < MIN_OVERLAP:
            problems.append(f"only {found} of {len(terms)} content words are in the passage")
    return problems


MIN_OVERLAP = 0.6


def _contains_words(haystack: str, phrase: str) -> bool:
    return re.search(rf"(?<!\w){re.escape(phrase)}(?!\w)", haystack) is not None


def _restates(
    question: str,
    terms: set[str],
    dates: list[DateMention],
    numbers: set[str],
    agencies: set[str],
    year: int | None,
) -> bool:
    """The sentence's content words are all the question's and it adds no date, number or agency."""
    q = normalize(question)
    q_dates = find_dates(q, year)
    q_numbers = set(_NUMBER.findall(_masked(fold(q), [(d.start, d.end) for d in q_dates])))
    q_agencies = {m.agency.name for m in find_agencies(q)}
    new_date = any(not any(_covers(d, e.date, e.precision) for e in q_dates) for d in dates)
    return (
        terms <= set(claim_terms(q)) and not new_date and numbers <= q_numbers and agencies <= q_agencies
    )  # fmt: skip


def supported(sentence: str, passages: Sequence[Passage], question: str | None = None) -> bool:
    """The passages support the sentence (see `support_problems`)."""
    return not support_problems(sentence, passages, question)


_NO_ANSWER = re.compile(r"KHÔNG_ĐỦ_THÔNG_TIN|KHONG_DU_THONG_TIN")


class CitedAnswerBuilder:
    """LLM text (whole or streamed) → checked sentences: markers mapped to sources by first use, unknown
    markers dropped, sentences without a marker or not supported by the passages they cite dropped.

    `feed` returns the pieces ready to show, so a stream shows exactly what the final answer says.
    """

    def __init__(self, sources: Sequence[Passage], question: str | None = None) -> None:
        self.sources = list(sources)
        self.question = question
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
            if nxt >= len(self._buffer) and "\n" not in self._buffer[end:nxt]:
                break  # more markers may still follow in the next chunk
            sentence, gap, self._buffer = self._buffer[:end], self._buffer[end:nxt], self._buffer[nxt:]
            if not sentence.strip():
                if self._pieces:
                    self._pending_sep = "\n"  # a blank line between pieces stays a line break
            elif piece := self._accept(sentence):
                out.append(piece)
                self._pending_sep = "\n" if "\n" in gap else " "
        return out

    def close(self) -> list[str]:
        rest, self._buffer = self._buffer, ""
        piece = self._accept(rest) if rest.strip() else None
        return [piece] if piece else []

    def _accept(self, sentence: str) -> str | None:
        """One sentence checked and renumbered, with the separator it follows; None when it is dropped."""
        sentence = expand_groups(sentence.strip())
        if _NO_ANSWER.search(sentence):
            return None
        cited: list[Passage] = []

        def known(match: re.Match[str]) -> str:
            n = int(match.group(1))
            if not 1 <= n <= len(self.sources):
                self.dropped_markers.append(n)
                return ""
            cited.append(self.sources[n - 1])
            return match.group(0)

        sentence = MARKER.sub(known, sentence)
        if not cited or not supported(sentence, cited, self.question):
            self.dropped_sentences.append(sentence)
            log.warning(
                "dropped an LLM sentence %s: %.120s",
                "without support" if cited else "without citation",
                sentence,
            )
            return None

        def renumber_one(match: re.Match[str]) -> str:
            p = self.sources[int(match.group(1)) - 1]
            if p.passage_id not in self._mapping:
                self._used.append(p)
                self._mapping[p.passage_id] = len(self._used)
            return f"[{self._mapping[p.passage_id]}]"

        sentence = MARKER.sub(renumber_one, sentence)
        sentence = re.sub(r"(\[\d+\])(?:\s*\1)+", r"\1", sentence)
        sentence = _DOUBLE_SPACE.sub(" ", _SPACE_BEFORE_PUNCT.sub(r"\1", sentence)).strip()
        piece = self._pending_sep + sentence
        self._pieces.append(piece)
        return piece

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
