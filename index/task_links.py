"""The tasks of several Kết luận → the same tasks linked across them: a later Kết luận that gives the same
lead agency nearly the same action (repeating it, or moving its deadline) is linked both ways, so the task
tracker shows the earlier and the later deadline side by side."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

from index.models import Directive, TaskLink
from index.textnorm import fold, words

SAME_TASK = 0.45  # word overlap (Jaccard) from which two tasks of one agency are the same task


def _words(action: str) -> frozenset[str]:
    return frozenset(words(fold(action)))


def overlap(a: frozenset[str], b: frozenset[str]) -> float:
    return len(a & b) / len(a | b) if a and b else 0.0


def _link(d: Directive, other: Directive) -> TaskLink:
    timed = (d.deadline or d.recurring) and (other.deadline or other.recurring)
    moved = bool(timed) and (d.deadline, d.recurring) != (other.deadline, other.recurring)
    return TaskLink(directive_id=d.directive_id, ket_luan=d.ket_luan, issued=d.issued, deadline=d.deadline,
                    deadline_text=d.deadline_text, recurring=d.recurring, moved=moved, label=d.label,
                    url=d.url)  # fmt: skip


def link_tasks(directives: Sequence[Directive]) -> list[Directive]:
    """The directives, in the same order, with `earlier` and `later` filled. A task of a later Kết luận is
    linked to the one task of each earlier Kết luận that shares a lead agency and most of its words."""
    dated = [d for d in directives if d.issued is not None and d.agencies]
    by_agency: dict[str, list[int]] = defaultdict(list)
    for i, d in enumerate(dated):
        for agency in set(d.agencies):
            by_agency[agency].append(i)
    said = [_words(d.action) for d in dated]
    pairs: set[tuple[int, int]] = set()  # (earlier, later)
    for j, later in enumerate(dated):
        best: dict[str, tuple[float, int]] = {}  # earlier Kết luận → its closest task
        for agency in set(later.agencies):
            for i in by_agency[agency]:
                earlier = dated[i]
                if earlier.ket_luan == later.ket_luan or earlier.issued >= later.issued:  # type: ignore[operator]
                    continue
                score = overlap(said[i], said[j])
                if score >= SAME_TASK and score > best.get(earlier.ket_luan, (0.0, -1))[0]:
                    best[earlier.ket_luan] = (score, i)
        pairs.update((i, j) for _, i in best.values())
    if not pairs:
        return list(directives)
    earlier_of: dict[str, list[Directive]] = defaultdict(list)
    later_of: dict[str, list[Directive]] = defaultdict(list)
    for i, j in pairs:
        earlier_of[dated[j].directive_id].append(dated[i])
        later_of[dated[i].directive_id].append(dated[j])

    def oldest_first(found: list[Directive], d: Directive) -> list[TaskLink]:
        return [_link(o, d) for o in sorted(found, key=lambda o: (o.issued, o.directive_id))]

    out: list[Directive] = []
    for d in directives:
        if d.directive_id in earlier_of or d.directive_id in later_of:
            d = d.model_copy(update={"earlier": oldest_first(earlier_of[d.directive_id], d),
                                     "later": oldest_first(later_of[d.directive_id], d)})  # fmt: skip
        out.append(d)
    return out
