"""A question about tasks + the extracted directives → a cited answer: all tasks of an agency, the deadlines in
a window (overdue, upcoming), the deadline of one task, a document the Kết luận mention. Newest Kết luận
first; every item quotes its clause and cites its passage."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Sequence

from bot.catalog import (
    KetLuanInfo,
    coverage,
    deadline_phrase,
    folded_words,
    task_passage,
    task_passages,
    vn_date,
)
from bot.draft import Cites, Draft
from bot.question import Question
from bot.quoting import shorten, split_sentences
from index.errors import NotFound
from index.language.questions import cues
from index.models import Directive, Passage, Reference
from index.search import Hit, SearchIndex
from index.tasks import TaskQuery, UnknownAgency
from index.textnorm import fold
from prompts import render

MAX_ITEMS = 8
MAX_NAMED = 3  # tasks of other agencies that name the one asked about
ACTION_WORDS = 40
WHOLE_WORDS = 90
FEW_TASKS = 4  # an agency's tasks up to this many are quoted whole
DEADLINE_MATCH_MIN = 0.25  # the same for the one task whose deadline is asked
MATCH_MIN = 0.34  # share of the question's content words a task's action must hold to be the one meant
UPCOMING_DAYS = 30


def _issued_key(d: Directive) -> int:
    return -(d.issued or dt.date.min).toordinal()


class TaskAnswers:
    """Answers built on the task tracker's data (index.tasks.TaskBook of the index)."""

    def __init__(self, index: SearchIndex, info: dict[str, KetLuanInfo]) -> None:
        self.index = index
        self.info = info
        self.book = index.tasks

    # --- helpers ---------------------------------------------------------------------------------------
    def _passage(self, d: Directive) -> Passage | None:
        return task_passage(self.index, d)

    def _where(self, d: Directive) -> str:
        info = self.info.get(d.ket_luan)
        return render("ket_luan_name", number=d.ket_luan) + f" ({vn_date(info.issued if info else d.issued)})"

    def agency_of(self, question: Question) -> str | None:
        """The agency the question asks about, as the tasks name it: "Chính phủ" is asked, "Đảng ủy Chính
        phủ" is assigned (a state body's Party committee carries its tasks in these Party documents)."""
        names = [*question.canonical, *question.mentions, *question.agencies]
        present = {a for d in self.book.directives for a in (*d.agencies, *d.partners)}
        for name in names:
            try:
                agency = self.book.canonical_agency(name)
            except UnknownAgency:
                continue
            # "Mặt trận Tổ quốc (Việt Nam)" is one body; "Ban Chỉ đạo Nghị quyết 57" as asked is held by
            # "Thường trực Ban Chỉ đạo Nghị quyết 57", though its canonical name is the long one
            keys = {fold(agency).removesuffix(" viet nam"), fold(name).removesuffix(" viet nam")}
            holders = [a for a in present if a == agency or any(k in fold(a) for k in keys)]
            if holders:
                return max(
                    holders, key=lambda a: (sum(a in d.agencies for d in self.book.directives), a == agency)
                )
        return None

    def _item(self, d: Directive, cites: Cites, agency: str | None = None, whole: bool = False) -> str:
        role = ""
        if agency:
            if agency in d.agencies:
                role = render("task_role_lead")
            elif agency in d.partners:
                role = render("task_role_partner")
            else:
                role = render("task_role_named", agencies=", ".join(d.agencies))
            others = [p for p in (*d.agencies, *d.partners) if p != agency]
            if others:
                role += render("task_with", agencies=", ".join(others))
        elif d.agencies:
            role = ", ".join(d.agencies)
        return render(
            "task_item",
            deadline=deadline_phrase(d),
            action=shorten(d.action, WHOLE_WORDS if whole else ACTION_WORDS).rstrip("."),
            role=role,
            where=self._where(d),
            cite=" ".join(cites.cite(p) for p in task_passages(self.index, d)),
        )

    def _list(self, directives: Sequence[Directive], cites: Cites, agency: str | None = None,
              whole: set[str] = frozenset()) -> list[str]:  # type: ignore[assignment]  # fmt: skip
        return [self._item(d, cites, agency, d.directive_id in whole) for d in directives[:MAX_ITEMS]]

    # --- all tasks of an agency ------------------------------------------------------------------------
    def agency(self, question: Question) -> Draft | None:
        """Every task of the agency the question names (within its Kết luận if it names one)."""
        if not self.book.directives:
            return None
        agency = self.agency_of(question)
        if agency is None:
            return None
        found: list[Directive] = []
        numbers: list[str | None] = [n for n in question.ket_luan if n in self.info] or [None]
        for number in numbers:
            found += self.book.query(TaskQuery(agency=agency, ket_luan=number))
        # tasks of others whose action names the agency ("… phối hợp với Bộ Tư pháp rà soát …")
        key = f" {fold(agency)} "
        named = [
            d for d in self.book.directives
            if d not in found and (numbers == [None] or d.ket_luan in numbers)
            and key in folded_words(d.action)
        ]  # fmt: skip
        if not found and not named:
            return None

        def role(d: Directive) -> int:
            return 0 if agency in d.agencies else (1 if agency in d.partners else 2)

        # its own tasks, newest Kết luận first (within one: what it leads, then co-ordinates); then a few
        # tasks of others that name it
        ordered = sorted(found, key=lambda d: (_issued_key(d), role(d), d.deadline or dt.date.max))
        ordered += sorted(named, key=lambda d: (_issued_key(d), d.deadline or dt.date.max))[:MAX_NAMED]
        # a few tasks are quoted whole: what was asked may lie anywhere in them ("… như: …, người có công, …")
        full: set[str] = {d.directive_id for d in ordered} if len(ordered) <= FEW_TASKS else set()
        if len(question.content) >= 2:
            # the question says which of the agency's tasks it means: those come first, quoted whole
            fit = {d.directive_id: coverage(question.content, d.action) for d in ordered}
            best = max(fit.values())
            asks_tasks = bool(question.ket_luan) and "tasks" in cues(question.folded)
            if best < MATCH_MIN and (len(ordered) > FEW_TASKS or not asks_tasks):
                # none of its tasks is about that: the passages may say more ("phê bình những địa phương nào"),
                # or it is not asked of these texts; only "Kết luận N giao X làm gì" gets its few tasks whatever
                # else it says (often the asker's own situation)
                return None
            ordered.sort(key=lambda d: -fit[d.directive_id])
            if best >= MATCH_MIN:
                full = {d.directive_id for d in ordered if fit[d.directive_id] >= max(MATCH_MIN, best * 0.8)}
            # else a few tasks, none matching the words (often the asker's own situation): all of them, whole
        cites = Cites()
        # newest Kết luận first, whatever order the tasks are listed in
        kls = list(dict.fromkeys(d.ket_luan for d in sorted(ordered, key=_issued_key)))
        dated = sorted(
            (d for d in ordered if d.deadline and role(d) < 2), key=lambda d: d.deadline or dt.date.max
        )
        newest = ""
        if len(kls) > 1:
            first = next(d for d in ordered if d.ket_luan == kls[0])
            newest = render(
                "newest_note",
                number=kls[0],
                date=vn_date(self.info[kls[0]].issued if kls[0] in self.info else first.issued),
            )
        head = render(
            "tasks_of_agency",
            agency=agency,
            count=sum(1 for d in ordered if role(d) < 2),
            lead=sum(1 for d in ordered if role(d) == 0),
            partner=sum(1 for d in ordered if role(d) == 1),
            named=render("tasks_named", count=min(len(named), MAX_NAMED)) if named else "",
            ket_luan=", ".join(render("ket_luan_name", number=n) for n in kls),
            newest=newest,
            more=render("task_more", shown=MAX_ITEMS) if len(ordered) > MAX_ITEMS else "",
            cite=cites.cite(self._passage(ordered[0])),
        )
        lines = [head]
        if dated:
            soonest = dated[0]
            lines.append(render("tasks_soonest", deadline=deadline_phrase(soonest),
                                cite=cites.cite(self._passage(soonest))))  # fmt: skip
        lines += self._list(ordered, cites, agency, full)
        return Draft("\n".join(lines), True, cites.sources, kls, "task")

    # --- deadlines in a window ---------------------------------------------------------------------------
    def window(self, question: Question, today: dt.date) -> Draft | None:
        if not self.book.directives:
            return None
        numbers: list[str | None] = [n for n in question.ket_luan if n in self.info]
        agency = self.agency_of(question)
        head, values = "window_head", dict[str, object]()
        if question.status == "overdue":
            query = TaskQuery(status="overdue", as_of=today)
            head, values = "window_head_overdue", {"as_of": vn_date(today)}
        elif question.window:  # a named window ("tháng 10/2025 có việc gì tới hạn") before "sắp đến hạn"
            query = TaskQuery(due_after=question.window[0], due_before=question.window[1])
            values = {"span": _span(*question.window)}
        elif question.status == "upcoming":
            query = TaskQuery(due_after=today, due_before=today + dt.timedelta(days=UPCOMING_DAYS))
            head, values = "window_head_upcoming", {"as_of": vn_date(today), "days": UPCOMING_DAYS}
        else:
            return None
        found: list[Directive] = []
        for number in numbers or [None]:
            found += self.book.query(query.model_copy(update={"ket_luan": number, "agency": agency}))
        if head == "window_head_upcoming":
            for number in numbers or [None]:
                found += [d for d in self.book.query(TaskQuery(ket_luan=number, agency=agency))
                          if d.recurring and d not in found]  # fmt: skip
        if not found:
            if "span" in values:
                return Draft(render("window_none", span=values["span"]), False, kind="window")
            return Draft(render("window_none_today", as_of=vn_date(today)), False, kind="window")
        cites = Cites()
        more = render("task_more", shown=MAX_ITEMS) if len(found) > MAX_ITEMS else ""
        lines = [
            render(head, count=len(found), more=more, cite=cites.cite(self._passage(found[0])), **values)
        ]
        if len(found) > MAX_ITEMS:
            # every deadline of the window in one line, so a long list still says all its dates
            per_day: dict[str, int] = {}
            for d in found:
                per_day[deadline_phrase(d)] = per_day.get(deadline_phrase(d), 0) + 1
            lines.append(render("window_by_deadline", deadlines="; ".join(f"{k} ({n})" for k, n in per_day.items()),
                                cite=cites.cite(self._passage(found[0]))))  # fmt: skip
        few = {d.directive_id for d in found} if len(found) <= FEW_TASKS else set()
        lines += self._list(found, cites, whole=few)  # a few tasks, quoted whole
        return Draft("\n".join(lines), True, cites.sources, list(dict.fromkeys(d.ket_luan for d in found)),
                     "window")  # fmt: skip

    # --- the deadline of one task ------------------------------------------------------------------------
    def deadline(
        self, question: Question, hits: Sequence[Hit], terms: Sequence[tuple[str, float]]
    ) -> Draft | None:
        """The dated task that the best passages assign and the question describes (agency, words)."""
        if not self.book.directives or not hits:
            return None
        rank = {h.passage.passage_id: (i, h.score) for i, h in enumerate(hits)}
        top = hits[0].score or 1.0
        agency = self.agency_of(question)
        best: tuple[float, Directive] | None = None
        total = sum(w for _, w in terms) or 1.0
        for d in self.book.directives:
            if d.deadline is None and not d.recurring:
                continue
            if question.ket_luan and d.ket_luan not in question.ket_luan:
                continue
            places = [rank[p] for p in (d.passage_id, *d.also_in) if p in rank]
            if not places:
                continue
            position, score = min(places)
            folded = folded_words(d.action)
            weighed = sum(w for t, w in terms if f" {t} " in folded) / total
            if len(question.content) >= 2 and coverage(question.content, d.action) < DEADLINE_MATCH_MIN:
                continue  # the task does not do what the question describes
            if len(terms) >= 2 and weighed < DEADLINE_MATCH_MIN:
                continue  # … weighed by how rare the words are: "khai mạc đại hội" is not "chuẩn bị đại hội"
            value = weighed + 0.5 * score / top - 0.05 * position
            if agency:
                value += 0.6 if agency in d.agencies else (0.2 if agency in d.partners else -0.6)
            if d.recurring and not re.search(r"hang thang|moi thang|dinh ky", question.folded):
                value -= 0.3  # a monthly report is rarely what "by when must X be done" asks for
            if best is None or value > best[0]:
                best = (value, d)
        if best is None or best[0] < 0.35:
            return None
        d = best[1]
        passage = self._passage(d)
        if passage is None:
            return None
        cites = Cites()
        marker = cites.cite(passage)
        lines = [render("deadline_answer", deadline=deadline_phrase(d), where=self._where(d), cite=marker)]
        quote = _sentence_with(passage.text, d.deadline_text or "") or shorten(d.action, ACTION_WORDS)
        lines.append(render("quote_line", quote=quote.rstrip("."), cite=marker))
        who = ", ".join(d.agencies)
        if who:
            lines.append(render("deadline_who", agencies=who, cite=marker))
        return Draft("\n".join(lines), True, cites.sources, [d.ket_luan], "deadline")

    # --- documents the Kết luận mention ------------------------------------------------------------------
    def reference(self, question: Question) -> Draft | None:
        refs: list[Reference] = []
        for number in question.references:
            found = self.book.reference(number) or self._reference_by_key(number)
            if found and found not in refs:
                refs.append(found)
        if not refs:
            return None
        cites = Cites()
        lines: list[str] = []
        for ref in refs:
            mentions = [p for p in (self._by_id(pid) for pid in ref.mentioned_in) if p]
            if question.ket_luan and any(p.ket_luan in question.ket_luan for p in mentions):
                mentions = [p for p in mentions if p.ket_luan in question.ket_luan]
            mentions.sort(key=lambda p: -coverage(question.content, p.text))
            passage = mentions[0] if mentions else None
            if passage is None:
                continue
            marker = cites.cite(passage)
            issued = render("reference_issued", date=vn_date(ref.issued)) if ref.issued else ""
            issuer = render("reference_issuer", issuer=ref.issuer) if ref.issuer else ""
            about = render("about", subject=ref.title) if ref.title else ""
            lines.append(render("reference_answer", kind=ref.kind, number=ref.number, issued=issued,
                                issuer=issuer, about=about, where=passage.label, cite=marker))  # fmt: skip
            quote = _sentence_with(passage.text, ref.mention) or shorten(passage.text, ACTION_WORDS)
            lines.append(render("quote_line", quote=quote.rstrip("."), cite=marker))
        if not lines:
            return None
        return Draft("\n".join(lines), True, cites.sources, [], "reference")

    def mentioned(self, question: Question, kinds: Sequence[str]) -> Draft | None:
        """The documents of the kinds asked ("những quy định nào") that the Kết luận asked about mention."""
        numbers = [n for n in question.ket_luan if n in self.info]
        wanted = {fold(k) for k in kinds}
        found: list[tuple[Reference, Passage]] = []
        for ref in self.book.references:
            if wanted and fold(ref.kind) not in wanted:
                continue
            for pid in ref.mentioned_in:
                p = self._by_id(pid)
                if p is not None and (not numbers or p.ket_luan in numbers):
                    found.append((ref, p))
                    break
        if not found:
            return None
        cites = Cites()
        where = (
            ", ".join(render("ket_luan_name", number=n) for n in numbers) if numbers else render("the_series")
        )
        lines = [render("mentioned_head", where=where, count=len(found), cite=cites.cite(found[0][1]))]
        for ref, p in found:
            issued = render("reference_issued", date=vn_date(ref.issued)) if ref.issued else ""
            about = render("about", subject=ref.title) if ref.title else ""
            written = ref.mention or render("reference_name", kind=ref.kind, number=ref.number) + issued
            lines.append(render("mentioned_item", mention=written, about=about, cite=cites.cite(p)))
        return Draft("\n".join(lines), True, cites.sources, numbers, "list")

    def _reference_by_key(self, key: str) -> Reference | None:
        """A reference named as "nghị quyết 18" rather than by its full number."""
        kind, _, number = key.rpartition(" ")
        if not number:
            return None
        for ref in self.book.references:
            if fold(ref.kind) == kind and ref.number.split("-")[0] == number:
                return ref
        return None

    def _by_id(self, passage_id: str) -> Passage | None:
        try:
            return self.index.passage(passage_id)
        except NotFound:
            return None


def _span(start: dt.date | None, end: dt.date | None) -> str:
    if start and end and start == end:
        return render("span_on", date=vn_date(start))
    if start and end:
        if start.day == 1 and (end + dt.timedelta(days=1)).day == 1 and start.month == end.month:
            return render("span_month", month=start.month, year=start.year)
        if start == dt.date(start.year, 1, 1) and end == dt.date(start.year, 12, 31):
            return render("span_year", year=start.year)
        return render("span_between", start=vn_date(start), end=vn_date(end))
    if end:
        return render("span_before", date=vn_date(end))
    return render("span_after", date=vn_date(start))


def _sentence_with(text: str, needle: str) -> str | None:
    """The sentence of `text` that holds `needle` (verbatim), else None."""
    if not needle:
        return None
    for sentence in split_sentences(text):
        if needle in sentence:
            return sentence
    return None
