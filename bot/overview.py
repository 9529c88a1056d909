"""Whole-document answers: a summary of one Kết luận (what it is, one line per mục, its dated tasks), of the
series (one line per Kết luận), and a side-by-side comparison of two (dates, reports, tasks, deadlines that
moved). Every line cites the passage it comes from."""

from __future__ import annotations

import datetime as dt
import functools
import re
from collections.abc import Sequence

from bot.catalog import KetLuanInfo, coverage, deadline_phrase, folded_words, task_passages, vn_date
from bot.draft import Cites, Draft
from bot.quoting import shorten, split_sentences
from index.models import Directive, Passage
from index.search import SearchIndex
from index.textnorm import fold, normalize, words
from prompts import render

POINT_WORDS = 28
MAX_POINTS = 15  # one line per mục: the Kết luận of the series have up to 10
MAX_TASKS = 6
MAX_NAMED = 2  # tasks of others that name the agency compared
SAME_TASK = 0.45  # word overlap (Jaccard) above which two tasks of two Kết luận are the same task
_POINT_HEAD = re.compile(r"\.m(\d+)\.d1$")


def _date_forms(info: KetLuanInfo) -> list[str]:
    if not info.issued:
        return []
    d, m, y = info.issued.day, info.issued.month, info.issued.year
    return [f"{d}/{m}/{y}", f"{d:02d}/{m:02d}/{y}", f"{d}-{m}-{y}", f"{d} tháng {m} năm {y}", f"{d}/{m}",
            f"{d}-{m}"]  # fmt: skip


class Overview:
    def __init__(self, index: SearchIndex, info: dict[str, KetLuanInfo]) -> None:
        self.index = index
        self.info = info

    def _passages(self, info: KetLuanInfo) -> list[Passage]:
        return [p for d in info.documents for p in self.index.passages_of(d.document_id)]

    def meta_passage(self, info: KetLuanInfo) -> Passage | None:
        """The passage that states the Kết luận's date (its header or press lead), else its first one."""
        order = {"metadata": 0, "preamble": 1, "signature": 2}
        candidates = sorted(self._passages(info), key=lambda p: order.get(p.kind, 3))
        forms = _date_forms(info)
        for p in candidates:
            if any(f in normalize(p.text) for f in forms):
                return p
        return candidates[0] if candidates else None

    def _tasks(self, number: str) -> list[Directive]:
        return [d for d in self.index.tasks.directives if d.ket_luan == number]

    def _cite_task(self, d: Directive, cites: Cites) -> str:
        return " ".join(cites.cite(p) for p in task_passages(self.index, d))

    def identity(self, info: KetLuanInfo, cites: Cites) -> str:
        about = render("about", subject=info.subject) if info.subject else ""
        signer = render("signed_by", signer=info.signer) if info.signer else ""
        report = render("based_on_report", report=info.report) if info.report else ""
        return render("summary_identity", number=info.number, date=vn_date(info.issued), about=about,
                      signer=signer, report=report, cite=cites.cite(self.meta_passage(info)))  # fmt: skip

    # --- one Kết luận ----------------------------------------------------------------------------------
    def summary(self, number: str) -> Draft:
        info = self.info[number]
        cites = Cites()
        lines = [self.identity(info, cites)]
        doc = info.documents[0]
        passages = [p for p in self.index.passages_of(doc.document_id) if p.kind in ("paragraph", "item")]
        points = [p for p in passages if _POINT_HEAD.search(p.passage_id)] or passages
        if points:
            lines.append(render("summary_points", cite=cites.cite(points[0])))
            for p in points[:MAX_POINTS]:
                first = split_sentences(p.text)
                if first:
                    lines.append(render("summary_point", label=_short_label(p.label),
                                        text=shorten(first[0], POINT_WORDS).rstrip("."), cite=cites.cite(p)))  # fmt: skip
        tasks = self._tasks(number)
        dated = sorted((d for d in tasks if d.deadline), key=lambda d: d.deadline or dt.date.max)
        recurring = [d for d in tasks if d.recurring and not d.deadline]  # "hằng tháng": always shown
        count = len(dated) + len(recurring)
        dated = dated[:MAX_TASKS] + recurring
        if dated:
            lines.append(render("summary_tasks", count=count, cite=self._cite_task(dated[0], cites)))
            for d in dated:
                lines.append(render("summary_task", deadline=deadline_phrase(d), agencies=", ".join(d.agencies),
                                    action=shorten(d.action, 20).rstrip("."), cite=self._cite_task(d, cites)))  # fmt: skip
        return Draft("\n".join(lines), bool(cites.sources), cites.sources, [number], "summary")

    # --- the series --------------------------------------------------------------------------------------
    def series(self, numbers: Sequence[str] | None = None) -> Draft:
        """One line per Kết luận, newest first (only `numbers` when given)."""
        cites = Cites()
        infos = [i for i in self.info.values() if numbers is None or i.number in numbers]
        lines = [
            render(
                "series_head", count=len(infos), cite=cites.cite(self.meta_passage(infos[0])) if infos else ""
            )
        ]
        for info in infos:
            tasks = self._tasks(info.number)
            dated = sorted(d.deadline for d in tasks if d.deadline)
            soonest = render("series_soonest", date=vn_date(dated[0])) if dated else ""
            lines.append(render("series_item", number=info.number, date=vn_date(info.issued),
                                subject=info.subject or "", tasks=len(tasks), soonest=soonest,
                                cite=cites.cite(self.meta_passage(info))))  # fmt: skip
        return Draft(
            "\n".join(lines), bool(cites.sources), cites.sources, [i.number for i in infos], "series"
        )

    # --- two Kết luận side by side ---------------------------------------------------------------------
    def compare(
        self,
        numbers: Sequence[str],
        agency: str | None = None,
        deadlines: bool = False,
        topic: Sequence[str] = (),
    ) -> Draft:
        a, b = sorted((self.info[n] for n in numbers[:2]), key=lambda i: i.issued or i.number)  # older first
        cites = Cites()
        if agency:
            return self._compare_agency(a, b, agency, cites)
        lines = [render("compare_head", older=a.number, newer=b.number)]
        for info in (a, b):
            tasks = self._tasks(info.number)
            lines.append(render("compare_side", number=info.number, date=vn_date(info.issued),
                                report=render("compare_report", report=info.report) if info.report else "",
                                subject=info.subject or "", tasks=len(tasks),
                                dated=sum(1 for d in tasks if d.deadline),
                                cite=cites.cite(self.meta_passage(info))))  # fmt: skip
        if deadlines:  # "hạn chót trong 179 với 183 khác nhau sao": each one's deadlines, soonest first
            for info in (a, b):
                # the tasks about what was asked first ("hạn nộp báo cáo"), then the soonest; monthly ones too
                dated = sorted((d for d in self._tasks(info.number) if d.deadline or d.recurring),
                               key=lambda d: (-coverage(topic, d.action), d.deadline or dt.date.max))  # fmt: skip
                if not dated:
                    continue
                lines.append(render("compare_deadlines", number=info.number, count=len(dated),
                                    cite=self._cite_task(dated[0], cites)))  # fmt: skip
                for d in dated[:MAX_TASKS]:
                    lines.append(render("summary_task", deadline=deadline_phrase(d), agencies=", ".join(d.agencies),
                                        action=shorten(d.action, 18).rstrip("."), cite=self._cite_task(d, cites)))  # fmt: skip
        old, new = self._tasks(a.number), self._tasks(b.number)
        repeated: list[tuple[Directive, Directive]] = []
        for d in new:
            match = max(old, key=lambda o: _overlap(o.action, d.action), default=None)
            if match is not None and _overlap(match.action, d.action) >= SAME_TASK:
                repeated.append((match, d))
        moved = [(o, d) for o, d in repeated if (o.deadline, o.recurring) != (d.deadline, d.recurring)]
        fresh = [d for d in new if all(d is not r for _, r in repeated)]
        if moved:
            lines.append(render("compare_moved", cite=self._cite_task(moved[0][1], cites)))
            for o, d in moved[:MAX_TASKS]:
                lines.append(render("compare_moved_item", action=shorten(d.action, 18).rstrip("."),
                                    old=deadline_phrase(o), new=deadline_phrase(d),
                                    cite_old=self._cite_task(o, cites), cite_new=self._cite_task(d, cites)))  # fmt: skip
        if repeated:
            lines.append(render("compare_repeated", count=len(repeated), newer=b.number,
                                cite=self._cite_task(repeated[0][1], cites)))  # fmt: skip
        if fresh and not deadlines:
            lines.append(
                render("compare_new", newer=b.number, count=len(fresh), cite=self._cite_task(fresh[0], cites))
            )
            for d in fresh[:MAX_TASKS]:
                lines.append(render("compare_new_item", deadline=deadline_phrase(d),
                                    action=shorten(d.action, 18).rstrip("."), cite=self._cite_task(d, cites)))  # fmt: skip
        return Draft("\n".join(lines), True, cites.sources, [b.number, a.number], "compare")

    def _compare_agency(self, a: KetLuanInfo, b: KetLuanInfo, agency: str, cites: Cites) -> Draft:
        """One agency's tasks in two Kết luận, side by side, each with its deadline."""
        lines = [render("compare_agency_head", agency=agency, older=a.number, newer=b.number,
                        cite=cites.cite(self.meta_passage(b)))]  # fmt: skip
        key = " " + " ".join(words(fold(agency))) + " "
        for info in (a, b):
            all_tasks = self._tasks(info.number)
            tasks = [d for d in all_tasks if agency in d.agencies or agency in d.partners]
            # tasks of others that name it ("… gửi báo cáo về Ban Tổ chức Trung ương chậm nhất trước ngày 25 …")
            named = [d for d in all_tasks if d not in tasks and key in folded_words(d.action)][:MAX_NAMED]
            lines.append(render("compare_agency_side", number=info.number, date=vn_date(info.issued),
                                count=len(tasks), cite=cites.cite(self.meta_passage(info))))  # fmt: skip
            for d in [*tasks[:MAX_TASKS], *named]:
                # its role and who works with it: what differs between two Kết luận is often just that
                if d in named:
                    role = render("task_role_named", agencies=", ".join(d.agencies))
                else:
                    role = render("task_role_lead" if agency in d.agencies else "task_role_partner")
                others = [x for x in (*d.agencies, *d.partners) if x != agency]
                if others and d not in named:
                    role += render("task_with", agencies=", ".join(others))
                lines.append(render("compare_agency_item", deadline=deadline_phrase(d), role=role,
                                    action=shorten(d.action, 18).rstrip("."), cite=self._cite_task(d, cites)))  # fmt: skip
        return Draft("\n".join(lines), True, cites.sources, [b.number, a.number], "compare")


def _short_label(label: str) -> str:
    """ "Kết luận 183-KL/TW, mục 3, đoạn 1" → "Mục 3"."""
    m = re.search(r"mục (\d+)", label)
    return f"Mục {m.group(1)}" if m else label.split(", ", 1)[-1]


def _overlap(a: str, b: str) -> float:
    wa, wb = _word_set(a), _word_set(b)
    return len(wa & wb) / len(wa | wb) if wa and wb else 0.0


@functools.lru_cache(maxsize=16384)
def _word_set(text: str) -> frozenset[str]:
    """Folded words of a task's action, kept: comparing two Kết luận compares every pair of their tasks."""
    return frozenset(words(fold(text)))
