"""A question + the index → an extractive answer: direct answer first, trimmed source sentences, [n] markers.

Offline and deterministic. Metadata questions (date, signer, report, newest) are answered from Document
metadata; the rest from the sentences of the best passages that name what was asked. The answer's markers
refer to positions in `Draft.sources` (1-based); bot/citations.py turns them into Citations.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

from bot.question import AttestedPhrases, Question, analyze
from index.lexical import query_segments
from index.models import Document, Passage
from index.search import Hit, SearchFilters, SearchIndex
from index.textnorm import fold, normalize, words
from prompts import load, render

SEARCH_K = 8
# Answerability, tuned on the probe questions in tests/bot/test_extractive.py: the best passage must be
# close in meaning (dense cosine) and cover enough of the question's content words.
DENSE_SURE = 0.875
DENSE_MIN = 0.835
COVERAGE_MIN = 0.5
COVERAGE_WEAK = 0.7
MAX_QUOTE_WORDS = 70
MAX_LIST_ITEMS = 5

_STOPWORDS_TEXT = """
quy_dinh van_de de_cap la gi nao khi bao gio bao_gio ai the the_nao co khong duoc cua cho ve va voi cac nhung nhu trong tai
den thi sao con vay hay hoac phai lam viec o do nay no hien hien_nay hom hom_nay se da dang de ra
vao len can muon biet hoi xin toi ban minh chung ta ket luan ket_luan kl tw so ngay nam thang nhat
moi a nhi oi nua gi_do dieu dieu_gi mot cai ve_viec noi noi_dung gom bao_gom liet ke liet_ke han
han_chot chot thoi_han thoi han_cuoi cuoi khi_nao luc nao bao_nhieu nhieu bo_chinh_tri chinh tri
chinh_tri bi thu bi_thu ban_bi_thu yeu cau yeu_cau giao duoc_giao nhiem vu nhiem_vu trach nhiem
trach_nhiem ra_sao sao the_con vay_con thi_sao nhu_the_nao nhu_the truoc sau hoan thanh hoan_thanh
ky ban_hanh hanh
"""
STOPWORDS = frozenset(_STOPWORDS_TEXT.split())

_LEAD_MARKER = re.compile(r"^\s*(?:\d{1,2}\.|\((?:\d{1,2}|[ivx]{1,6})\)|[a-zđ]\)|[-–•+])\s+")
_SENTENCE_SPLIT = re.compile(r"(?<=[.!?…])\s+(?=[\"“(]?[A-ZĐÀ-Ỹ0-9])")
_PRAISE = re.compile(r"\b(biểu dương|ghi nhận|khen)", re.IGNORECASE)
_ASSIGN = re.compile(r"\b(giao|yêu cầu|chủ trì|phối hợp|khẩn trương|chỉ đạo|trách nhiệm)\b", re.IGNORECASE)
_DEADLINE = re.compile(
    r"(?:hoàn thành(?: dứt điểm)? )?(?:chậm nhất )?"
    r"trước ngày \d{1,2}(?:[/-]\d{1,2}(?:[/-]\d{4})?)?(?: hằng tháng)?"
    r"|hoàn thành trong (?:năm|tháng|quý) [\d/-]+"
    r"|trong tuần đầu tháng [\d/-]+"
    r"|chậm nhất (?:là )?(?:ngày|trước ngày) [\d/-]+"
    r"|vào tháng [\d/-]+",
    re.IGNORECASE,
)


@dataclass
class Draft:
    """An answer before numbering: markers [n] point into `sources` (1-based)."""

    answer: str
    answered: bool
    sources: list[Passage] = field(default_factory=list)
    ket_luan: list[str] = field(default_factory=list)
    kind: str = "generic"


@dataclass(frozen=True)
class KetLuanInfo:
    number: str  # "183-KL/TW"
    issued: dt.date | None
    signer: str | None
    report: str | None
    subject: str
    documents: tuple[Document, ...]


@dataclass
class _Sentence:
    passage: Passage
    rank: int
    quote: str
    folded: str
    score: float = 0.0
    role: float = 0.0


def vn_date(day: dt.date | None) -> str:
    return f"{day.day}/{day.month}/{day.year}" if day else "(không rõ ngày)"


def _date_forms(day: dt.date) -> list[str]:
    d, m, y = day.day, day.month, day.year
    return [
        f"{d}/{m}/{y}",
        f"{d:02d}/{m:02d}/{y}",
        f"{d}-{m}-{y}",
        f"{d} thang {m} nam {y}",
        f"{d}/{m}",
        f"{d}-{m}",
        f"{d:02d}/{m:02d}",
    ]


def split_sentences(text: str) -> list[str]:
    """Sentences of a passage as verbatim pieces of it (list markers at the start removed)."""
    body = _LEAD_MARKER.sub("", text.strip(), count=1)
    out = []
    for piece in _SENTENCE_SPLIT.split(body):
        piece = piece.strip()
        if len(words(piece)) >= 3:
            out.append(piece)
    return out


def _weight(text: str, focus: Sequence[tuple[str, float]]) -> float:
    flat = " " + " ".join(words(fold(text))) + " "
    return sum(w for t, w in focus if f" {t} " in flat)


def trim(sentence: str, focus: Sequence[tuple[str, float]], max_words: int = MAX_QUOTE_WORDS) -> str:
    """A long sentence → the clauses (split at ";") that hold most of the focus words, in order, with "…"
    where something was left out. A list announced with ":" keeps its items."""
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


class ExtractiveAnswerer:
    """Built once per index: agency gazetteer, Kết luận metadata (newest first), coverage text."""

    def __init__(self, index: SearchIndex) -> None:
        self.index = index
        self.attested = AttestedPhrases([p.text for p in index.passages])
        self.ket_luan = self._ket_luan_info(index)
        self._df: dict[str, int] = {}
        self._folded_passages = [
            " " + " ".join(words(fold(normalize(f"{p.text} {p.context}")))) + " " for p in index.passages
        ]

    # --- metadata ------------------------------------------------------------------------------------
    @staticmethod
    def _ket_luan_info(index: SearchIndex) -> dict[str, KetLuanInfo]:
        groups: dict[str, list[Document]] = {}
        for doc in index.documents.values():
            if doc.ket_luan:
                groups.setdefault(doc.ket_luan, []).append(doc)
        info: dict[str, KetLuanInfo] = {}
        for number, docs in groups.items():
            docs.sort(
                key=lambda d: (not d.official, -sum(x is not None for x in (d.issued, d.signer, d.report)))
            )
            subject = next((d.title.split(" về ", 1)[1] for d in docs if " về " in d.title), "")
            info[number] = KetLuanInfo(
                number=number,
                issued=next((d.issued for d in docs if d.issued), None),
                signer=next((d.signer for d in docs if d.signer), None),
                report=next((d.report for d in docs if d.report), None),
                subject=subject,
                documents=tuple(docs),
            )
        return dict(sorted(info.items(), key=lambda kv: kv[1].issued or dt.date.min, reverse=True))

    def coverage(self) -> str:
        lines = [
            render("coverage_item", ket_luan=k.number, issued=vn_date(k.issued), subject=k.subject or "")
            for k in self.ket_luan.values()
        ]
        others = [d for d in self.index.documents.values() if not d.ket_luan]
        lines += [f"- {d.title}" for d in others[:10]]
        return "\n".join(lines)

    def refusal(self, question: Question | None = None) -> Draft:
        missing = [n for n in (question.ket_luan if question else ()) if n not in self.ket_luan]
        if missing:
            text = render("refusal_unknown_ket_luan", number=", ".join(missing), coverage=self.coverage())
        else:
            text = render("refusal", coverage=self.coverage())
        return Draft(text, False, kind=question.kind if question else "generic")

    def greeting(self) -> Draft:
        return Draft(render("greeting", coverage=self.coverage()), False, kind="greeting")

    def _find_passage(self, info: KetLuanInfo, needles: Sequence[str]) -> Passage | None:
        """The passage of this Kết luận whose text states one of the needles, metadata passages first."""
        order = {"metadata": 0, "signature": 1, "preamble": 2}
        candidates = [p for d in info.documents for p in self.index.passages_of(d.document_id)]
        candidates.sort(key=lambda p: order.get(p.kind, 3))
        for p in candidates:
            text = " ".join(words(fold(normalize(p.text))))
            flat = fold(normalize(p.text))
            if any(re.search(rf"(?<![\d/-]){re.escape(n)}(?![\d])", text) or n in flat for n in needles):
                return p
        return None

    def _metadata(self, question: Question, numbers: list[str]) -> Draft:
        infos = [self.ket_luan[n] for n in numbers] if numbers else list(self.ket_luan.values())
        sources: list[Passage] = []

        def cite(p: Passage | None) -> str:
            if p is None:
                return ""
            if p not in sources:
                sources.append(p)
            return f" [{sources.index(p) + 1}]"

        lines: list[str] = []
        kind = question.kind
        for info in infos:
            if kind == "signer":
                p = self._find_passage(info, [fold(info.signer)] if info.signer else [])
                if info.signer and p:
                    lines.append(
                        f"Kết luận {info.number} (ngày {vn_date(info.issued)}) do đồng chí {info.signer} "
                        f"ký, thay mặt Bộ Chính trị, Ban Bí thư{cite(p)}."
                    )
            elif kind == "report":
                p = self._find_passage(
                    info, [fold(info.report).replace("-", " ")[:3], fold(info.report)] if info.report else []
                )
                if info.report and p:
                    lines.append(
                        f"Kết luận {info.number} (ngày {vn_date(info.issued)}) được ban hành trên cơ sở "
                        f"Báo cáo số {info.report}{cite(p)}."
                    )
            else:  # date, newest, documents, summary header
                p = self._find_passage(info, _date_forms(info.issued)) if info.issued else None
                if info.issued and p:
                    about = f" về {info.subject}" if info.subject else ""
                    lines.append(
                        f"Kết luận {info.number} được ban hành ngày {vn_date(info.issued)}{about}{cite(p)}."
                    )
        if not lines:
            return self.refusal(question)
        numbers_cited = [i.number for i in infos]
        if kind == "newest":
            newest = infos[0]
            head = lines[0].replace(
                f"Kết luận {newest.number} được ban hành",
                f"Kết luận mới nhất là Kết luận {newest.number}, ban hành",
            )
            rest = [f"- {line}" for line in lines[1:]]
            text = head + (
                "\n" + f"Các Kết luận trước đó, từ mới đến cũ{cite(sources[0])}:\n" + "\n".join(rest)
                if rest
                else ""
            )
        elif kind == "documents":
            text = (
                f"Dịch vụ đang tra cứu {len(lines)} Kết luận, từ mới đến cũ{cite(sources[0])}:\n"
                + "\n".join(f"- {line}" for line in lines)
            )
        elif len(lines) == 1:
            text = lines[0]
        else:
            intro = {
                "signer": "Các Kết luận đều có người ký như sau",
                "report": "Các Kết luận căn cứ các báo cáo sau",
                "date": "Ngày ban hành của các Kết luận, từ mới đến cũ",
            }.get(kind, "Các Kết luận")
            text = f"{intro}{cite(sources[0])}:\n" + "\n".join(f"- {line}" for line in lines)
        return Draft(text, True, sources, numbers_cited, kind)

    # --- evidence ------------------------------------------------------------------------------------
    def terms(self, text: str) -> list[tuple[str, float]]:
        """Content segments of the question (folded, "a b" for compounds) with an IDF weight."""
        out: list[tuple[str, float]] = []
        seen: set[str] = set()
        n = len(self._folded_passages)
        for seg in query_segments(text, self.index.compounds):
            if seg in STOPWORDS or (seg.isdigit() and len(seg) < 4) or len(seg) < 2 or seg in seen:
                continue
            parts = seg.split("_")
            if all(p in STOPWORDS for p in parts):
                continue
            seen.add(seg)
            phrase = " ".join(parts)
            if phrase not in self._df:
                self._df[phrase] = sum(1 for t in self._folded_passages if f" {phrase} " in t)
            df = self._df[phrase]
            out.append((phrase, math.log(1 + (n + 1) / (df + 0.5))))
        return out

    @staticmethod
    def covered(terms: Sequence[tuple[str, float]], folded_text: str) -> float:
        total = sum(w for _, w in terms)
        if total == 0:
            return 0.0
        return sum(w for t, w in terms if f" {t} " in folded_text) / total

    def search(self, question: Question, filters: SearchFilters | None) -> list[Hit]:
        return self.index.search_hits(question.topic or question.text, SEARCH_K, filters)

    def effective_filters(self, question: Question, filters: SearchFilters | None) -> SearchFilters | None:
        if question.ket_luan:
            numbers = [n for n in question.ket_luan if n in self.ket_luan]
            base = filters.model_copy() if filters else SearchFilters()
            return base.model_copy(update={"ket_luan": numbers})
        return filters

    def answerable(self, hits: Sequence[Hit], terms: Sequence[tuple[str, float]], question: Question) -> bool:
        if not hits:
            return False
        top = hits[0]
        cov = max(self.covered(terms, self._folded_passages[h.index]) for h in hits[:3]) if terms else 0.0
        if question.agencies and question.kind == "task":
            return True  # the agency is named in the corpus; the sentence filter below finds it or refuses
        if question.ket_luan and top.dense >= DENSE_MIN:
            return cov >= COVERAGE_MIN or not terms
        if top.dense >= DENSE_SURE:
            return cov >= COVERAGE_MIN * 0.6 or not terms
        if top.dense >= DENSE_MIN:
            # one common syllable ("tổng" of "tổng hợp") is no evidence: want a word of 2+ syllables or 2 words
            best = max(hits[:3], key=lambda h: self.covered(terms, self._folded_passages[h.index]))
            found = [t for t, _ in terms if f" {t} " in self._folded_passages[best.index]]
            return cov >= COVERAGE_WEAK and (len(found) >= 2 or any(" " in t for t in found))
        return False

    def features(self, question: Question, filters: SearchFilters | None = None) -> dict[str, float]:
        """The answerability evidence of a question (for tuning and tests)."""
        hits = self.search(question, self.effective_filters(question, filters))
        terms = self.terms(question.topic)
        cov = max((self.covered(terms, self._folded_passages[h.index]) for h in hits[:3]), default=0.0)
        return {"dense": hits[0].dense if hits else 0.0, "coverage": cov, "terms": float(len(terms))}

    # --- answering -----------------------------------------------------------------------------------
    def analyze(self, message: str) -> Question:
        return analyze(message, self.attested)

    def answer(self, question: Question, filters: SearchFilters | None = None) -> Draft:
        if question.kind == "greeting":
            return self.greeting()
        if any(n not in self.ket_luan for n in question.ket_luan):
            return self.refusal(question)
        if question.unknown_agencies and not question.agencies:
            return self.refusal(question)
        numbers = list(question.ket_luan)
        if not numbers and filters and filters.ket_luan:
            numbers = [n for n in (_norm(x) for x in filters.ket_luan) if n and n in self.ket_luan]
        kind = question.kind
        if kind == "summary" and question.agencies:
            kind = "task"
        elif kind == "summary" and self.terms(question.topic):
            kind = "generic"  # "Kết luận 179 nói gì về tôn giáo?" asks about a topic, not for a summary
        if kind in ("signer", "date", "report", "newest", "documents"):
            if kind in ("newest", "documents"):
                numbers = []
            return self._metadata(replace(question, kind=kind), numbers)
        if kind == "summary" and numbers:
            return self._summary(numbers[0])
        hits = self.search(question, self.effective_filters(question, filters))
        terms = self.terms(question.topic)
        if not self.answerable(hits, terms, question):
            return self.refusal(question)
        sentences = self._sentences(hits, terms, question, kind)
        if not sentences:
            return self._agency_not_named(question, numbers) or self.refusal(question)
        return self._compose(sentences, question, kind)

    def _agency_not_named(self, question: Question, numbers: Sequence[str]) -> Draft | None:
        """The refusal for an agency that the Kết luận asked about never names (checked over every passage
        of it), pointing to the Kết luận that do name it; None when that is not the reason."""
        if not question.agencies or not numbers:
            return None
        agency = question.agencies[0]
        naming = {
            p.ket_luan
            for p, folded in zip(self.index.passages, self._folded_passages, strict=True)
            if p.ket_luan and f" {agency} " in folded
        }
        if naming & set(numbers):
            return None
        name = self.attested.spelling(agency) or (question.mentions[0] if question.mentions else agency)
        others = sorted(naming, key=lambda n: int(n.split("-")[0]))
        elsewhere = ""
        if others:
            example = f"Kết luận {others[-1].split('-')[0]} giao {name} làm gì?"
            elsewhere = "\n" + render("refusal_agency_elsewhere", agency=name,
                                      others=", ".join(f"Kết luận {n}" for n in others), example=example)  # fmt: skip
        text = render("refusal_agency_not_named", ket_luan=", ".join(f"Kết luận {n}" for n in numbers),
                      agency=name, elsewhere=elsewhere, coverage=self.coverage())  # fmt: skip
        return Draft(text, False, kind=question.kind)

    def _sentences(
        self, hits: Sequence[Hit], terms: Sequence[tuple[str, float]], question: Question, kind: str
    ) -> list[_Sentence]:
        top_score = hits[0].score or 1.0
        focus_agency = question.agencies
        out: list[_Sentence] = []
        for rank, hit in enumerate(hits):
            p = hit.passage
            if p.kind in ("metadata", "signature"):
                continue
            context_folded = fold(p.context)
            for piece in split_sentences(p.text):
                folded = " " + " ".join(words(fold(piece))) + " "
                score = self.covered(terms, folded) + 0.4 * (hit.score / top_score) - 0.04 * rank
                if focus_agency:
                    in_sentence = any(f" {a} " in folded for a in focus_agency)
                    in_context = any(a in context_folded for a in focus_agency)
                    if not (in_sentence or in_context):
                        continue
                    score += 1.0 if in_sentence else 0.5
                    if kind == "task" and _PRAISE.search(piece) and not _ASSIGN.search(piece):
                        score -= 0.8  # praised, not tasked
                    role = _role(folded, focus_agency) if in_sentence else 0.0
                    if kind == "task":
                        score += role
                if kind == "deadline":
                    if not _DEADLINE.search(piece):
                        continue
                    score += 0.5
                out.append(_Sentence(p, rank, piece, folded, score, role if focus_agency else 0.0))
        if not out:  # e.g. no sentence of the hits names the agency asked about
            return []
        out.sort(key=lambda s: -s.score)
        if kind == "task" and any(s.role >= 0.6 for s in out):
            out = [s for s in out if s.role >= 0]  # the agency acts somewhere: drop mere mentions
        best = out[0].score
        limit = MAX_LIST_ITEMS if kind in ("list", "task") else 3
        picked: list[_Sentence] = []
        for s in out:
            if s.score < best * (0.55 if kind in ("list", "task") else 0.75):
                break
            if any(x.passage.passage_id == s.passage.passage_id for x in picked) and kind not in ("list",):
                continue
            picked.append(s)
            if len(picked) == limit:
                break
        return self._with_list_items(picked)

    def _with_list_items(self, picked: list[_Sentence]) -> list[_Sentence]:
        """A picked passage that announces a list ("… như sau:") brings its items along."""
        out: list[_Sentence] = []
        for s in picked:
            out.append(s)
            if not s.passage.text.rstrip().endswith(":"):
                continue
            prefix = s.passage.passage_id + "."
            items = [
                p for p in self.index.passages_of(s.passage.document_id) if p.passage_id.startswith(prefix)
            ]
            for i, p in enumerate(items[:MAX_LIST_ITEMS]):
                if any(x.passage.passage_id == p.passage_id for x in picked):
                    continue
                text = _LEAD_MARKER.sub("", p.text.strip(), count=1)
                out.append(_Sentence(p, s.rank, text, fold(text), s.score - 0.001 * (i + 1)))
        return out

    def _issued(self, p: Passage) -> dt.date:
        info = self.ket_luan.get(p.ket_luan or "")
        return (info.issued if info else None) or p.issued or dt.date.min

    def _compose(self, picked: list[_Sentence], question: Question, kind: str) -> Draft:
        sources: list[Passage] = []

        def cite(p: Passage) -> str:
            if p not in sources:
                sources.append(p)
            return f"[{sources.index(p) + 1}]"

        focus = [(a, 3.0) for a in question.agencies] + self.terms(question.topic)
        # the newest Kết luận first; within one, the best sentence first
        picked.sort(key=lambda s: (-self._issued(s.passage).toordinal(), -s.score))
        numbers: list[str] = []
        for s in picked:
            if s.passage.ket_luan and s.passage.ket_luan not in numbers:
                numbers.append(s.passage.ket_luan)
        subject = " ".join(question.mentions) if question.mentions else ""

        def where(p: Passage) -> str:
            if p.ket_luan:
                return f"Kết luận {p.ket_luan} (ngày {vn_date(self._issued(p))})"
            return p.document_title

        def quote(s: _Sentence) -> str:
            budget = MAX_QUOTE_WORDS * 3 // 2 if kind in ("list", "who") else MAX_QUOTE_WORDS
            return f"“{trim(s.quote, focus, budget).rstrip('.')}”"

        lines: list[str] = []
        first = picked[0]
        if kind == "deadline":
            deadlines = []
            for s in picked:
                m = _DEADLINE.search(s.quote)
                if m:
                    deadlines.append((s, m.group(0)))
            s0, d0 = deadlines[0]
            lines.append(f"Thời hạn là {_deadline_phrase(d0)}, theo {where(s0.passage)} {cite(s0.passage)}.")
            lines.append(f"Văn bản nêu: {quote(s0)} {cite(s0.passage)}.")
            for s, _ in deadlines[1:]:
                lines.append(f"- {where(s.passage)}: {quote(s)} {cite(s.passage)}.")
        elif kind in ("task", "list") or len(picked) > 1:
            if kind == "task" and subject:
                head = (
                    f"{subject} được giao"
                    if len(numbers) <= 1
                    else f"{subject} được giao nhiệm vụ ở {len(numbers)} Kết luận"
                )
            else:
                head = "Các nội dung liên quan"
            if len(numbers) > 1:
                head += f"; mới nhất là Kết luận {numbers[0]} (ngày {vn_date(self._issued(first.passage))})"
            if len(picked) == 1:
                lead = f"{subject} được giao: " if subject and kind == "task" else ""
                lines.append(f"Theo {where(first.passage)}, {lead}{quote(first)} {cite(first.passage)}.")
            else:
                lines.append(f"{head} {cite(first.passage)}:")
                for s in picked:
                    newest = " — mới nhất" if len(numbers) > 1 and s is first else ""
                    lines.append(f"- {where(s.passage)}{newest}: {quote(s)} {cite(s.passage)}.")
        else:
            lines.append(f"Theo {where(first.passage)}: {quote(first)} {cite(first.passage)}.")
        text = "\n".join(_tidy(line) for line in lines)
        return Draft(text, True, sources, numbers, kind)

    def _summary(self, number: str) -> Draft:
        info = self.ket_luan[number]
        sources: list[Passage] = []

        def cite(p: Passage) -> str:
            if p not in sources:
                sources.append(p)
            return f"[{sources.index(p) + 1}]"

        doc = info.documents[0]
        passages = [p for p in self.index.passages_of(doc.document_id) if p.kind in ("paragraph", "item")]
        meta = self._find_passage(info, _date_forms(info.issued)) if info.issued else None
        about = f" về {info.subject}" if info.subject else ""
        lines = []
        if meta:
            lines.append(
                f"Kết luận {number} của Bộ Chính trị, Ban Bí thư được ban hành ngày {vn_date(info.issued)}"
                f"{about} {cite(meta)}."
            )
        points = [p for p in passages if re.search(r"\.m\d+\.d1$", p.passage_id)]
        points = points or [p for p in passages if p.kind == "paragraph"] or passages
        if points:
            lines.append(f"Các nội dung chính {cite(points[0])}:")
            for p in points[:6]:
                first = split_sentences(p.text)
                if first:
                    lines.append(f"- “{trim(first[0], [], 40).rstrip('.')}” {cite(p)}.")
        text = "\n".join(_tidy(line) for line in lines)
        return Draft(text, bool(sources), sources, [number], "summary")


def _norm(raw: str) -> str | None:
    from index.structure import normalize_ket_luan

    return normalize_ket_luan(raw) or normalize_ket_luan(f"{raw.strip()}-KL/TW")


_ACTOR_BEFORE = re.compile(r"(?:^| )(?:giao|yeu cau|chi dao|doi voi|de nghi)(?: \w+){0,2} $")
_ACTOR_AFTER = re.compile(
    r"^ (?:khan truong|chu tri|co trach nhiem|duoc giao|tiep tuc|can|phai|lanh dao|chiu trach nhiem|theo doi)"
)
_MENTION_BEFORE = re.compile(r"(?:^| )(?:cua|voi|va|cac)(?: \w+)? $")


def _role(folded: str, agencies: Sequence[str]) -> float:
    """How much a sentence makes the agency do something: "giao Bộ X …", "Bộ X khẩn trương …" score high,
    "báo cáo của Bộ X" low."""
    best = -0.3
    for a in agencies:
        for m in re.finditer(rf" {re.escape(a)} ", folded):
            before, after = folded[: m.start() + 1], folded[m.end() - 1 :]
            if m.start() <= 2 or _ACTOR_BEFORE.search(before) or _ACTOR_AFTER.match(after):
                best = max(best, 0.6)
            elif _MENTION_BEFORE.search(before):
                best = max(best, 0.1 if before.endswith((" voi ", " va ")) else -0.3)
            else:
                best = max(best, 0.0)
    return best


def _deadline_phrase(found: str) -> str:
    phrase = found.strip()
    phrase = re.sub(r"^hoàn thành (dứt điểm )?", "", phrase, flags=re.IGNORECASE)
    phrase = re.sub(r"(\d{1,2})-(\d{1,2})-(\d{4})", r"\1/\2/\3", phrase)
    return phrase[:1].lower() + phrase[1:]


def _tidy(line: str) -> str:
    return re.sub(r"[ \t]{2,}", " ", line).strip()


__all__ = ["Draft", "ExtractiveAnswerer", "load", "split_sentences", "trim", "vn_date"]
