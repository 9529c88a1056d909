"""A question + the index → an extractive answer: direct answer first, trimmed source sentences, [n] markers.

Offline and deterministic. The question's intent picks the answer: metadata from Document fields; tasks of an
agency, deadlines in a window, one task's deadline and referenced documents from the extracted directives
(bot/tasks_answers.py); summaries and comparisons (bot/overview.py); the rest from the sentences of the best
passages, when the answerability model (bot/answerability.py) is confident enough. Markers refer to
positions in `Draft.sources` (1-based); bot/citations.py turns them into Citations.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, replace

from bot.answerability import Answerability, Evidence
from bot.catalog import KetLuanInfo, catalogue, vn_date
from bot.draft import Cites, Draft
from bot.overview import Overview
from bot.question import (
    METADATA_KINDS,
    AttestedPhrases,
    Lexicon,
    Question,
    QuestionKind,
    Reader,
    content_words,
)
from bot.quoting import LEAD_MARKER, MAX_QUOTE_WORDS, split_sentences, trim
from bot.suggestions import Suggester
from bot.tasks_answers import TaskAnswers
from index.language import agencies as agency_names
from index.language.questions import cues, stopwords
from index.language.references import ket_luan_spans, normalize_ket_luan
from index.lexical import query_segments
from index.models import Passage
from index.search import Hit, SearchFilters, SearchIndex
from index.tasks import today as vn_today
from index.textnorm import fold, normalize, words
from prompts import load, render

SEARCH_K = 8
DEADLINE_SENTENCE_MIN = 0.3  # share of the question's weighed words the sentence giving a deadline must hold
HEDGE_MARGIN = 0.15  # answers this close to the refusal threshold open with a one-sentence hedge
MAX_LIST_ITEMS = 5
STOPWORDS = stopwords()

_PRAISE = re.compile(r"\b(biểu dương|ghi nhận|khen)", re.IGNORECASE)
_ASSIGN = re.compile(r"\b(giao|yêu cầu|chủ trì|phối hợp|khẩn trương|chỉ đạo|trách nhiệm)\b", re.IGNORECASE)
_NAMED = re.compile(r"[\"“][^\"“”]{2,60}[\"”]")
_DEADLINE = re.compile(
    r"(?:hoàn thành(?: dứt điểm)? )?(?:chậm nhất )?"
    r"trước ngày \d{1,2}(?:[/-]\d{1,2}(?:[/-]\d{4})?)?(?: hằng tháng)?"
    r"|hoàn thành trong (?:năm|tháng|quý) [\d/-]+"
    r"|trong tuần đầu tháng [\d/-]+"
    r"|chậm nhất (?:là )?(?:ngày|trước ngày) [\d/-]+"
    r"|vào tháng [\d/-]+",
    re.IGNORECASE,
)


_ASKS_DOCUMENTS = re.compile(
    r"\b(quy dinh|nghi quyet|ke hoach|van ban|chi thi|quyet dinh|ket luan|bao cao)( \w+){0,3} (nao|gi|so may|so bao nhieu)\b"
)
# "Kết luận 183 nhắc đến những quy định nào?", "… hoàn thành nhiệm vụ tại kế hoạch nào": the documents it cites
# (not "ban hành những văn bản nào", which asks what to write)
_LISTS_DOCUMENTS = re.compile(
    r"\b(nhac|nhac den|dan chieu|dan|neu|trich|can cu|tai|theo|thuc hien|cua|xong|hoan thanh)( \w+){0,3} "
    r"(nhung |cac |may |mot so )?(cai )?(nghi quyet|quy dinh|quyet dinh|ke hoach|chi thi)([ ,]+\w+){0,5}[ ,]+"
    r"(nao|gi|so may|so bao nhieu)\b"
    r"|\b(nghi quyet|quy dinh|quyet dinh|ke hoach|chi thi)( \w+){0,2} (duoc )?(nhac|dan|dan chieu|neu|trich)\b"
)
_DOCUMENT_KINDS = {"nghi quyet": "Nghị quyết", "quy dinh": "Quy định", "quyet dinh": "Quyết định",
                   "ke hoach": "Kế hoạch", "chi thi": "Chỉ thị", "bao cao": "Báo cáo", "ket luan": "Kết luận"}  # fmt: skip
_DOCUMENT_NUMBER = re.compile(r"\d{1,4}-[A-ZĐ]+/[A-ZĐ]+")


@dataclass
class _Sentence:
    passage: Passage
    rank: int
    quote: str
    folded: str
    score: float = 0.0
    role: float = 0.0
    pos: int = 0  # the sentence's place in its passage
    extra: str = ""  # the next sentence of the passage, when it answers too


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


class ExtractiveAnswerer:
    """Built once per index: the reader, the Kết luận catalogue (newest first), task and overview answers."""

    def __init__(self, index: SearchIndex) -> None:
        self.index = index
        self.attested = AttestedPhrases([p.text for p in index.passages])
        self.ket_luan: dict[str, KetLuanInfo] = catalogue(index)
        referenced = frozenset(fold(r.number) for r in index.tasks.references)
        newest = next(iter(self.ket_luan), None)  # the catalogue is newest first
        self.reader = Reader(
            Lexicon(self.attested, frozenset(self.ket_luan), referenced, index.restore, vn_today, newest)
        )
        self.tasks = TaskAnswers(index, self.ket_luan)
        self.overview = Overview(index, self.ket_luan)
        self.model = Answerability.load()
        self.suggester = Suggester(index, self.ket_luan)
        # the subject the whole series shares ("chính quyền địa phương 2 cấp"): words in the subjects of at
        # least half of the Kết luận say which series is meant, not which topic within it
        subjects = [set(words(fold(i.subject))) for i in self.ket_luan.values() if i.subject]
        self._series_words = frozenset(
            w for w in set().union(*subjects) if 2 * sum(w in s for s in subjects) >= len(subjects)
        ) if subjects else frozenset()  # fmt: skip
        self._df: dict[str, int] = {}
        self._folded_passages = [
            " " + " ".join(words(fold(normalize(f"{p.text} {p.context}")))) + " " for p in index.passages
        ]

    # --- metadata ------------------------------------------------------------------------------------
    def coverage(self) -> str:
        """The Kết luận the service answers from, in one short line."""
        numbers = ", ".join(self.ket_luan)
        others = len([d for d in self.index.documents.values() if not d.ket_luan])
        return render(
            "coverage",
            numbers=numbers or "—",
            others=render("coverage_others", count=others) if others else "",
        )

    def refusal(self, question: Question | None = None) -> Draft:
        missing = [n for n in (question.ket_luan if question else ()) if n not in self.ket_luan]
        if missing:
            text = render("refusal_unknown_ket_luan", number=", ".join(missing), coverage=self.coverage())
        else:
            text = render("refusal", coverage=self.coverage())
        suggestions = self.suggester.closest(question) if question else self.suggester.starters()
        return Draft(text, False, kind=question.kind if question else "generic", suggestions=suggestions)

    def greeting(self) -> Draft:
        return Draft(render("greeting", coverage=self.coverage()), False, kind="greeting",
                     suggestions=self.suggester.starters())  # fmt: skip

    def _find_passage(
        self, info: KetLuanInfo, needles: Sequence[str], body_first: bool = False
    ) -> Passage | None:
        """The passage of this Kết luận whose text states one of the needles, metadata passages first (or, with
        `body_first`, the Kết luận's own sentence first: "sau khi nghe Báo cáo số 428-BC/BTCTW …")."""
        order = {"metadata": 0, "signature": 1, "preamble": 2}
        if (
            body_first
        ):  # the opening ("Tại phiên họp …, sau khi nghe Báo cáo …"), then the body, then the header
            order = {"preamble": 0, "paragraph": 1, "item": 1, "metadata": 2, "signature": 3}
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
        if question.kind == "oldest":
            infos.reverse()  # the catalogue is newest first
        cites = Cites()
        sources = cites.sources

        def cite(p: Passage | None) -> str:
            marker = cites.cite(p)
            return f" {marker}" if marker else ""

        lines: list[str] = []
        kind = question.kind
        for info in infos:
            if kind == "signer":
                p = self._find_passage(info, [fold(info.signer)] if info.signer else [])
                if info.signer and p:
                    lines.append(render("meta_signer", number=info.number, date=vn_date(info.issued),
                                        signer=info.signer, cite=cite(p)))  # fmt: skip
            elif kind == "report":
                p = self._find_passage(
                    info,
                    [fold(info.report).replace("-", " ")[:3], fold(info.report)] if info.report else [],
                    body_first=True,
                )
                if info.report and p:
                    ref = next((r for r in self.index.tasks.references if r.number == info.report), None)
                    detail = ""
                    if ref is not None and (ref.issued or ref.issuer):
                        detail = render("report_detail",
                                        date=render("report_date", date=vn_date(ref.issued)) if ref.issued else "",
                                        issuer=render("report_issuer", issuer=ref.issuer) if ref.issuer else "")  # fmt: skip
                    lines.append(render("meta_report", number=info.number, date=vn_date(info.issued),
                                        report=info.report, detail=detail, cite=cite(p)))  # fmt: skip
            else:  # date, newest, documents, summary header
                p = self._find_passage(info, _date_forms(info.issued)) if info.issued else None
                if info.issued and p:
                    about = render("about", subject=info.subject) if info.subject else ""
                    lines.append(render("meta_date", number=info.number, date=vn_date(info.issued), about=about,
                                        cite=cite(p)))  # fmt: skip
        if not lines:
            return self.refusal(question)
        numbers_cited = [i.number for i in infos]
        if kind in ("newest", "oldest"):
            first = infos[0]
            about = render("about", subject=first.subject) if first.subject else ""
            head = render(f"meta_{kind}", number=first.number, date=vn_date(first.issued), about=about,
                          cite=cite(sources[0]))  # fmt: skip
            rest = [render("list_line", line=line) for line in lines[1:]]
            more = "meta_earlier" if kind == "newest" else "meta_later"
            text = head + (
                "\n" + render(more, cite=cite(sources[0])) + "\n" + "\n".join(rest) if rest else ""
            )
        elif kind == "documents":
            text = render("meta_documents", count=len(lines), cite=cite(sources[0])) + "\n"
            text += "\n".join(render("list_line", line=line) for line in lines)
        elif len(lines) == 1:
            text = lines[0]
        else:
            intro = render(
                f"meta_many_{kind}" if kind in ("signer", "report", "date") else "meta_many",
                cite=cite(sources[0]),
            )
            text = intro + "\n" + "\n".join(render("list_line", line=line) for line in lines)
        return Draft(text, True, sources, numbers_cited, kind)

    # --- evidence ------------------------------------------------------------------------------------
    def terms(self, text: str, everyday: frozenset[str] = frozenset()) -> list[tuple[str, float]]:
        """Content segments of the question (folded, "a b" for compounds) with an IDF weight; segments made
        only of `everyday` words are left out (the documents' words added for them are weighed instead)."""
        out: list[tuple[str, float]] = []
        seen: set[str] = set()
        n = len(self._folded_passages)
        for seg in query_segments(text, self.index.compounds):
            if seg in STOPWORDS or (seg.isdigit() and len(seg) < 4) or len(seg) < 2 or seg in seen:
                continue
            parts = seg.split("_")
            if all(p in STOPWORDS or p in everyday for p in parts):
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
        known = replace(question, ket_luan=tuple(n for n in question.ket_luan if n in self.ket_luan))
        hits = self.index.search_hits(known.search_query(filters), SEARCH_K)
        if question.earlier:
            # a follow-up asks first about what the previous answer quoted
            hits.sort(key=lambda h: h.passage.passage_id not in question.earlier)
        return hits

    def effective_filters(self, question: Question, filters: SearchFilters | None) -> SearchFilters | None:
        if question.ket_luan:
            numbers = [n for n in question.ket_luan if n in self.ket_luan]
            base = filters.model_copy() if filters else SearchFilters()
            return base.model_copy(update={"ket_luan": numbers})
        return filters

    # --- answering -----------------------------------------------------------------------------------
    def analyze(self, message: str, today: dt.date | None = None) -> Question:
        return self.reader.read(self._by_month(message), today)

    def _by_month(self, message: str) -> str:
        """ "cái kết luận hồi đầu tháng 8" → "kết luận 183" when one Kết luận of the corpus was issued that month
        (a Kết luận named by when it came out, not a window of deadlines)."""
        m = _KET_LUAN_BY_MONTH.search(message)
        if m is None or ket_luan_spans(message):
            return message
        month, year = int(m.group(3)), int(m.group(4)) if m.group(4) else None
        issued = [n for n, i in self.ket_luan.items()
                  if i.issued and i.issued.month == month and (year is None or i.issued.year == year)]  # fmt: skip
        if len(issued) != 1:
            return message
        return message[: m.start()] + f"{m.group(1)} {issued[0].split('-')[0]}" + message[m.end() :]

    def answer(
        self, question: Question, filters: SearchFilters | None = None, today: dt.date | None = None
    ) -> Draft:
        draft = self._answer(question, filters, today or vn_today())
        if draft.answered and not draft.suggestions:
            draft.suggestions = self.suggester.follow_ups(question, draft)
        elif not draft.answered and not draft.suggestions and question.kind != "greeting":
            draft.suggestions = self.suggester.closest(question)
        return draft

    def _answer(self, question: Question, filters: SearchFilters | None, today: dt.date) -> Draft:
        kind = question.kind
        if kind == "greeting":
            return self.greeting()
        if question.quantity is not None and kind in ("task", "deadline", "window"):
            kind = "generic"  # "bao lâu", "bao nhiêu": a fact to find in the text, not a task list
            question = replace(question, kind=kind)
        if question.earlier and _POINTS_BACK.search(question.folded):
            # "Kết luận được dẫn chiếu trong đoạn đó ban hành ngày nào?": the documents the quoted passages name
            named = [
                r for r in self.index.tasks.references if any(p in question.earlier for p in r.mentioned_in)
            ]
            asked_kinds = {v for k, v in _DOCUMENT_KINDS.items() if f" {k} " in f" {question.folded} "}
            # "kết luận được dẫn chiếu": the Kết luận among them
            if any(r.kind in asked_kinds for r in named):
                named = [r for r in named if r.kind in asked_kinds]
            if named:
                refs = tuple(r.number for r in named)
                found = self.tasks.reference(replace(question, references=refs, kind="reference"))
                if found is not None:
                    return found
        if (
            not question.references
            and (day := _NAMED_DAY.search(question.folded))
            and _DOCUMENT_KIND_WORD.search(question.folded)
        ):
            # "Kết luận 183 dẫn quy định nào ban hành ngày 2/1/2020?": the document of that day it mentions
            on = _day(day)
            refs = tuple(r.number for r in self.index.tasks.references if on and r.issued == on)
            if refs:
                found = self.tasks.reference(replace(question, references=refs, kind="reference"))
                if found is not None:
                    return found
        if kind == "reference":
            return self.tasks.reference(question) or self.refusal(question)
        missing = [n for n in question.ket_luan if n not in self.ket_luan]
        if missing:
            # a Kết luận the corpus only mentions ("Kết luận số 192-KL/TW (ngày 19-9-2025)") is a reference
            mentioned = replace(question, references=tuple(missing), kind="reference")
            return self.tasks.reference(mentioned) or self.refusal(question)
        if question.unknown_agencies and not question.agencies:
            return self.refusal(question)
        numbers = list(question.ket_luan)
        if not numbers and filters and filters.ket_luan:
            numbers = [n for n in (_norm(x) for x in filters.ket_luan) if n and n in self.ket_luan]
        if len(numbers) == 1 and (side := _BESIDE_ONE.search(question.folded)):
            # "sau cái 179 thì còn mấy kết luận nữa, mỗi cái nói gì": the series after (or before) that one
            pivot = self.ket_luan[numbers[0]].issued
            after = side.group(1) != "truoc"
            others = [n for n, i in self.ket_luan.items()
                      if pivot and i.issued and (i.issued > pivot if after else i.issued < pivot)]  # fmt: skip
            if others:
                return self.overview.series(others)
        if kind in METADATA_KINDS:
            return self._metadata(question, [] if kind in ("newest", "oldest", "documents") else numbers)
        if (asked := _LISTS_DOCUMENTS.search(question.folded)) and not (
            kind == "task" and question.canonical
        ):
            # "Kết luận 183 nhắc đến những quy định nào?": the documents it mentions, from the references
            kinds = [v for k, v in _DOCUMENT_KINDS.items() if k in asked.group(0)]
            found = self.tasks.mentioned(replace(question, ket_luan=tuple(numbers)), kinds)
            if found is not None:
                return found
        if kind == "series" and len([w for w in question.content if w not in self._series_words]) >= 2:
            # "các kết luận nói gì về chuyển đổi số": what each says about that, not what each is about
            found = self._across(question)
            if found is not None:
                return found
            kind = "generic"
            question = replace(question, kind=kind)
        if kind == "series" or (kind == "summary" and not numbers):
            return self.overview.series()
        if kind == "summary":
            return self.overview.summary(numbers[0])
        if kind == "compare" and len(numbers) >= 2:
            agency = self.tasks.agency_of(question)
            if agency is None and len([w for w in question.content if w not in self._series_words]) >= 2:
                # "so sánh hạn giải quyết hồ sơ tồn đọng trong KL 195 với hạn sắp xếp trường học trong KL 221":
                # the clause each Kết luận gives on what was asked, side by side
                asks: QuestionKind = "deadline" if "deadline" in cues(question.folded) else "generic"
                found = self._across(question, numbers[:2], asks)
                if found is not None:
                    return found
            # "so sánh hạn KL179 vs KL183": beside two Kết luận, a bare "hạn" is their deadlines
            deadlines = "deadline" in cues(question.folded) or bool(_BARE_DEADLINE.search(question.folded))
            topic = [w for w in question.content if w not in self._series_words]
            return self.overview.compare(numbers, agency, deadlines=deadlines, topic=topic)
        if kind == "window":
            found = self.tasks.window(replace(question, ket_luan=tuple(numbers)), today)
            if found is not None:
                return found
        if kind == "task":
            found = self.tasks.agency(replace(question, ket_luan=tuple(numbers)))
            if found is not None:
                return found
        hits = self.search(question, self.effective_filters(question, filters))
        terms = self.terms(question.topic, question.everyday)
        evidence = self.evidence(hits, terms, question)
        if kind == "deadline" and _EACH.search(question.text) and (found := self._both(question)) is not None:
            return found
        if kind == "deadline":
            found = self.tasks.deadline(question, hits, terms)
            # a follow-up on the passage the previous answer quoted was judged relevant then
            quoted = bool(found and found.sources and found.sources[0].passage_id in question.earlier)
            if found is not None and (quoted or self.model.accepts(replace(evidence, answer_type=1.0))):
                found.confidence = self.model.probability(replace(evidence, answer_type=1.0))
                return found
        if question.quantity is not None and evidence.answer_type < 0:
            return self.refusal(question)  # "bao nhiêu …" with no such number in the passages: never guess
        if not self.model.accepts(evidence):
            refused = self._agency_not_named(question, numbers) or self.refusal(question)
            refused.gated = True
            refused.confidence = self.model.probability(evidence)
            return refused
        sentences = self._sentences(hits, terms, question, kind)
        if not sentences:
            return self._agency_not_named(question, numbers) or self.refusal(question)
        draft = self._compose(sentences, question, kind)
        draft.confidence = self.model.probability(evidence)
        draft.gated = True
        if draft.confidence < self.model.threshold + HEDGE_MARGIN:
            # answerable, but not by much: say so in one sentence before the quotes
            draft.answer = render("hedge") + " " + draft.answer
        return draft

    def _across(
        self, question: Question, numbers: Sequence[str] | None = None, kind: QuestionKind = "generic"
    ) -> Draft | None:
        """A topic through the series (or the Kết luận named): the best sentence of each Kết luận that answers
        on it (newest first; a deadline when `kind` is "deadline"), each Kết luận's passages judged by the
        answerability model on their own; None unless two answer."""
        whole = replace(question, kind=kind, ket_luan=())
        parts = _parts(question.text, numbers) if numbers else {}
        asked: list[tuple[Question, SearchFilters | None]] = []
        for number in numbers or list(self.ket_luan):
            one = whole
            if part := parts.get(number):
                # what is asked of this Kết luận: the words that go with its number
                one = replace(self.reader.read(part), kind=kind, ket_luan=())
            asked.append((one, SearchFilters(ket_luan=[number])))
        return self._each(asked, kind)

    def _each(
        self, asked: Sequence[tuple[Question, SearchFilters | None]], kind: QuestionKind
    ) -> Draft | None:
        """The best sentence for each of several questions asked in one message, each judged by the
        answerability model on its own; None unless two answer."""
        picked: list[_Sentence] = []
        confidence = 1.0
        one = asked[0][0] if asked else None
        for one, filters in asked:
            terms = self.terms(one.topic, one.everyday)
            hits = self.search(one, filters)
            evidence = self.evidence(hits, terms, one)
            if not hits or not self.model.accepts(evidence):
                continue
            sentences = [s for s in self._sentences(hits, terms, one, kind) if s not in picked]
            if sentences and all(s.passage.passage_id != sentences[0].passage.passage_id for s in picked):
                picked.append(sentences[0])
                confidence = min(confidence, self.model.probability(evidence))
        if len(picked) < 2 or one is None:
            return None
        draft = self._compose(picked, replace(one, kind="generic"), "generic")
        draft.confidence = confidence
        draft.gated = True
        return draft

    def _both(self, question: Question) -> Draft | None:
        """ "vụ hồ sơ tồn đọng với vụ sáp nhập trường học, mỗi cái hạn bao giờ": the deadline of each thing
        named, when the message asks of each and names two."""
        text = _EACH.split(question.text, maxsplit=1)[0]
        pieces = [p.strip(" ,") for p in _AND.split(text, maxsplit=1)]
        if len(pieces) != 2 or any(len(content_words(fold(p))) < 2 for p in pieces):
            return None
        asked = [(replace(self.reader.read(p), kind="deadline"), None) for p in pieces]
        return self._each(asked, "deadline")

    def evidence(
        self, hits: Sequence[Hit], terms: Sequence[tuple[str, float]], question: Question
    ) -> Evidence:
        """What the answerability model weighs: how close the best passages are, in meaning and in words."""
        if not hits:
            return Evidence()
        covs = [self.covered(terms, self._folded_passages[h.index]) for h in hits[:3]] if terms else [0.0]
        best = max(range(len(covs)), key=lambda i: covs[i])
        top_text = self._folded_passages[hits[best].index]
        agency = 0.0
        if question.agencies:
            # "Mặt trận Tổ quốc Việt Nam" asked, "Mặt trận Tổ quốc" written: the same body
            names = {n for a in question.agencies for n in (a, a.removesuffix(" viet nam"))}
            named = any(f" {a} " in top_text for a in names)
            if not named and question.kind in ("deadline", "task"):
                # who must act, named in other words: "các bộ, ngành, địa phương phải …" names Các địa phương
                written = {m.agency.name for m in agency_names.find(hits[best].passage.text)}
                named = bool(written & set(question.canonical))
            agency = 1.0 if named else -1.0
        answer_type = 0.0
        if question.kind == "deadline":
            answer_type = 1.0 if any(_DEADLINE.search(h.passage.text) for h in hits[:3]) else -1.0
        if question.quantity is not None:
            answer_type = (
                1.0 if any(_has_quantity(h.passage.text, question.quantity) for h in hits[:3]) else -1.0
            )
        found = [t for t, _ in terms if f" {t} " in top_text]
        return Evidence(
            dense=hits[0].dense,
            dense_gap=hits[0].dense - hits[min(2, len(hits) - 1)].dense,
            coverage=covs[best],
            coverage_top=covs[0],
            terms=float(len(terms)),
            matched_compound=1.0 if any(" " in t for t in found) or len(found) >= 2 else 0.0,
            agency=agency,
            ket_luan=1.0 if any(n in self.ket_luan for n in question.ket_luan) else 0.0,
            answer_type=answer_type,
            lexical=hits[0].lexical / (hits[0].lexical + 5.0),
            lexical_gap=_gap(sorted((h.lexical for h in hits), reverse=True)),
        )

    def features(self, question: Question, filters: SearchFilters | None = None) -> dict[str, float]:
        """The answerability evidence of a question (for fitting the model and for tests)."""
        hits = self.search(question, self.effective_filters(question, filters))
        return self.evidence(hits, self.terms(question.topic, question.everyday), question).as_dict()

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
            example = render("suggest_agency_in", number=others[-1].split("-")[0], agency=name)
            elsewhere = "\n" + render("refusal_agency_elsewhere", agency=name,
                                      others=", ".join(render("ket_luan_name", number=n) for n in others), example=example)  # fmt: skip
        text = render("refusal_agency_not_named", ket_luan=", ".join(render("ket_luan_name", number=n) for n in numbers),
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
            named_before = False  # a sentence after one that names the agency has it as its implicit subject
            for pos, piece in enumerate(split_sentences(p.text)):
                folded = " " + " ".join(words(fold(piece))) + " "
                score = self.covered(terms, folded) + 0.4 * (hit.score / top_score) - 0.04 * rank
                if focus_agency:
                    in_sentence = any(f" {a} " in folded for a in focus_agency)
                    in_context = named_before or any(a in context_folded for a in focus_agency)
                    named_before = named_before or in_sentence
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
                    if terms and self.covered(terms, folded) < DEADLINE_SENTENCE_MIN:
                        continue  # a deadline of something else the passage also names
                    score += 0.5
                if question.besides:  # "ngoài việc X, còn …": a sentence about X is what was set aside
                    score -= 0.6 * sum(f" {w} " in folded for w in question.besides) / len(question.besides)
                if question.quantity is not None and not _has_quantity(piece, question.quantity):
                    continue  # "bao lâu", "bao nhiêu tiền": only a sentence that states such a number answers
                out.append(_Sentence(p, rank, piece, folded, score, role if focus_agency else 0.0, pos))
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
        return self._with_list_items([self._with_next(s, out, best) for s in picked])

    @staticmethod
    def _with_next(s: _Sentence, candidates: list[_Sentence], best: float) -> _Sentence:
        """A sentence and the next one of its passage when that one also answers ("… Trong đó, ưu tiên …")."""
        following = next((c for c in candidates if c.passage.passage_id == s.passage.passage_id
                          and c.pos == s.pos + 1), None)  # fmt: skip
        if following is None or following.score < best * 0.6:
            return s
        return replace(s, extra=following.quote, folded=f"{s.folded} {following.folded}")

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
                text = LEAD_MARKER.sub("", p.text.strip(), count=1)
                out.append(_Sentence(p, s.rank, text, fold(text), s.score - 0.001 * (i + 1)))
        return out

    def _issued(self, p: Passage) -> dt.date:
        info = self.ket_luan.get(p.ket_luan or "")
        return (info.issued if info else None) or p.issued or dt.date.min

    def _compose(self, picked: list[_Sentence], question: Question, kind: str) -> Draft:
        cites = Cites()
        sources, cite = cites.sources, cites.cite
        focus = [(a, 3.0) for a in question.agencies] + self.terms(question.topic, question.everyday)
        # the newest Kết luận first; within one, the best sentence first
        picked.sort(key=lambda s: (-self._issued(s.passage).toordinal(), -s.score))
        numbers: list[str] = []
        for s in picked:
            if s.passage.ket_luan and s.passage.ket_luan not in numbers:
                numbers.append(s.passage.ket_luan)
        subject = " ".join(question.mentions) if question.mentions else ""

        def where(p: Passage) -> str:
            if p.ket_luan:
                return render("where_ket_luan", number=p.ket_luan, date=vn_date(self._issued(p)))
            return p.document_title

        asks_documents = bool(_ASKS_DOCUMENTS.search(question.folded))

        def quote(s: _Sentence) -> str:
            budget = MAX_QUOTE_WORDS * 3 // 2 if kind in ("list", "who") else MAX_QUOTE_WORDS
            # never cut away what was asked: the deadline, the documents asked for
            text = f"{s.quote} {s.extra}" if s.extra else s.quote
            # a deadline of the quoted clause ("(hoàn thành trước ngày 31/8/2025)") and a named standard in
            # quotation marks ("đúng-đủ-sạch-sống") are what people ask for: never trimmed away
            keep = [m.group(0) for m in _DEADLINE.finditer(text)] + _NAMED.findall(text)
            if asks_documents:
                keep += _DOCUMENT_NUMBER.findall(text)
            if s.extra:  # two sentences: each trimmed on its own, the one that answers more gets more room
                first, second = (
                    trim(t, focus, budget * 2 // 3, [k for k in keep if k in t]) for t in (s.quote, s.extra)
                )
                return f"“{first} {second.rstrip('.')}”"
            return f"“{trim(s.quote, focus, budget, keep).rstrip('.')}”"

        lines: list[str] = []
        first = picked[0]
        if kind == "deadline":
            deadlines = []
            for s in picked:
                m = _DEADLINE.search(s.quote)
                if m:
                    deadlines.append((s, m.group(0)))
            s0, d0 = deadlines[0]
            lines.append(render("deadline_answer", deadline=_deadline_phrase(d0), where=where(s0.passage),
                                cite=cite(s0.passage)))  # fmt: skip
            lines.append(render("quote_line", quote=quote(s0)[1:-1], cite=cite(s0.passage)))
            for s, _ in deadlines[1:]:
                lines.append(
                    render("quote_item", where=where(s.passage), quote=quote(s), cite=cite(s.passage))
                )
        elif kind in ("task", "list") or len(picked) > 1:
            if kind == "task" and subject:
                head = (
                    render("assigned_head", agency=subject)
                    if len(numbers) <= 1
                    else render("assigned_head_many", agency=subject, count=len(numbers))
                )
            else:
                head = render("related_head")
            if len(numbers) > 1:
                head += render("newest_note", number=numbers[0], date=vn_date(self._issued(first.passage)))
            if len(picked) == 1:
                lead = render("assigned_lead", agency=subject) if subject and kind == "task" else ""
                lines.append(render("according_lead", where=where(first.passage), lead=lead, quote=quote(first),
                                    cite=cite(first.passage)))  # fmt: skip
            else:
                lines.append(render("list_head", head=head, cite=cite(first.passage)))
                for s in picked:
                    newest = render("newest_mark") if len(numbers) > 1 and s is first else ""
                    lines.append(render("quote_item", where=where(s.passage) + newest, quote=quote(s),
                                        cite=cite(s.passage)))  # fmt: skip
        else:
            lines.append(
                render("according", where=where(first.passage), quote=quote(first), cite=cite(first.passage))
            )
        text = "\n".join(_tidy(line) for line in lines)
        return Draft(text, True, sources, numbers, kind)


_NUMBER_WORDS = r"(?:\d(?:[\d.,]*\d)?|một|hai|ba|bốn|năm|sáu|bảy|tám|chín|mười)"


_BARE_DEADLINE = re.compile(r"\bhan\b(?! che)")
# "kết luận hồi đầu tháng 8", "kl ra tháng 11 năm 2025": a Kết luận named by the month it came out
_KET_LUAN_BY_MONTH = re.compile(
    r"\b(k[eế]t lu[aậ]n|kl)\s+(?:(?:h[oồ]i|ra|ban h[aà]nh|v[aà]o|c[uủ]a|(?:đ|d)[aầ]u|gi[uữ]a|cu[oố]i)\s+){0,4}"
    r"(th[aá]ng)\s+(\d{1,2})\b(?!\s*[/-]\s*\d)(?:\s+n[aă]m\s+(\d{4}))?",
    re.IGNORECASE,
)
# a message that asks of each of two things ("…, cái nào phải xong trước, mỗi cái hạn bao giờ")
_EACH = re.compile(r",?\s*(?:cái nào (?:phải )?(?:xong |làm |hoàn thành )?trước|mỗi (?:cái|việc|vụ)|từng (?:cái|việc|vụ))\b",
                   re.IGNORECASE)  # fmt: skip
_AND = re.compile(r"\s(?:với|và|vs|hay|hoặc)\s", re.IGNORECASE)
# "sau (cái/kl) 179 còn những kết luận nào", "trước kết luận 221 có mấy kết luận"
_BESIDE_ONE = re.compile(
    r"\b(sau|truoc)( cai| kl| ket luan| van ban)?( so)? \d{2,4}\b.*\b(ket luan|kl|van ban|cai)\b.*"
    r"\b(nao|nua|gi|may|nhung|tung|moi)\b"
)
_DOCUMENT_KIND_WORD = re.compile(r"\b(quy dinh|nghi quyet|ke hoach|van ban|chi thi|quyet dinh|bao cao|qd)\b")
_NAMED_DAY = re.compile(r"\bngay (\d{1,2})\s*[/-]\s*(\d{1,2})\s*[/-]\s*(\d{4})\b")


def _gap(scores: Sequence[float]) -> float:
    """How far the best score stands above the second, as a share of the best: one passage says what was asked
    in its words, though a spoken question adds words of its own ("… xã em cứ bị lỗi hoài")."""
    if not scores or scores[0] <= 0:
        return 0.0
    return (scores[0] - (scores[1] if len(scores) > 1 else 0.0)) / scores[0]


def _day(m: re.Match[str]) -> dt.date | None:
    try:
        return dt.date(int(m.group(3)), int(m.group(2)), int(m.group(1)))
    except ValueError:
        return None


# a follow-up about a document the previous answer's passage names ("được dẫn chiếu trong đoạn đó")
_POINTS_BACK = re.compile(
    r"\b(duoc )?(dan chieu|nhac (den|toi)|vien dan|de cap)\b.*\b(doan|cau|van ban|noi dung|trich dan)"
    r"( (do|tren|nay|vua roi|vua neu|ay))\b"
)


def _parts(text: str, numbers: Sequence[str]) -> dict[str, str]:
    """Kết luận number → the words of a comparison that go with it: "so sánh hạn A trong KL 195 với hạn B
    trong KL 221" (each topic before its number) or "so sánh KL 195 về A với KL 221 về B" (after it); {}
    unless each named Kết luận has words of its own."""
    spans = [(start, end, n) for start, end, n in ket_luan_spans(text) if n in numbers]
    if len(spans) < 2:
        return {}
    if len(words(fold(text[: spans[0][0]]))) <= 3:
        bounds = [
            (e, spans[i + 1][0] if i + 1 < len(spans) else len(text)) for i, (_, e, _) in enumerate(spans)
        ]
    else:
        bounds = [(spans[i - 1][1] if i else 0, s) for i, (s, _, _) in enumerate(spans)]
    out = {n: text[a:b].strip(" ,.?") for (a, b), (_, _, n) in zip(bounds, spans, strict=True)}
    return out if all(len(words(fold(part))) >= 3 for part in out.values()) else {}


def _has_quantity(text: str, noun: str) -> bool:
    """Does `text` state a number of `noun` ("15 năm", "30%", "2 tháng")? Any number when noun is ""."""
    folded = fold(normalize(text))
    number = fold(_NUMBER_WORDS)
    if noun in ("phan tram", "%"):
        return bool(re.search(r"\d\s*%|phan tram", folded))
    if noun == "nguoi":  # a person's name: "đồng chí Trần Cẩm Tú", "ông Nguyễn Văn A"
        return bool(re.search(r"\b(?:đồng chí|ông|bà)\s+[A-ZĐ][\w]+(?:\s+[A-ZĐ][\w]+){1,3}", text))
    if noun == "dong":
        # an amount of money: "500 triệu đồng", "2 tỷ" ("3 đồng chí" is no amount)
        return bool(re.search(rf"{number}\s+(?:dong(?! (?:chi|thoi|bo|y|bao))|trieu|ty|nghin)\b", folded))
    if noun == "thoi gian":
        return bool(re.search(rf"{number}\s+(?:nam|thang|tuan|ngay|gio)\b", folded))
    if not noun:
        return bool(re.search(r"(?<![\d/-])\d+(?![\d/-])", folded))
    if noun == "lan" and re.search(
        rf"{number}\s+(?:nam|thang|tuan|ngay)\s*/\s*lan\b|\b(?:hang|moi) (?:nam|thang|tuan|ngay)\b", folded
    ):
        return True  # "họp mấy lần": how often, "1 tháng/lần", "hằng tháng"
    return bool(re.search(rf"\b{number}\s+(?:\w+\s+)?{re.escape(noun)}\b", folded))


def _norm(raw: str) -> str | None:
    return normalize_ket_luan(raw)


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
