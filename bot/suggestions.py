"""Questions the corpus can answer, made from its own data (agencies with tasks, dated tasks, Kết luận): the
closest 2–3 to a question that could not be answered, starters for a greeting, follow-ups after an answer."""

from __future__ import annotations

from rapidfuzz import fuzz, process

from bot.catalog import KetLuanInfo
from bot.draft import Draft
from bot.question import Question
from bot.quoting import shorten
from index.search import SearchIndex
from index.textnorm import fold
from prompts import render

LIMIT = 3
ACTION_WORDS = 9


class Suggester:
    def __init__(self, index: SearchIndex, info: dict[str, KetLuanInfo]) -> None:
        self.info = info
        book = index.tasks
        questions: list[str] = []
        for number in info:
            questions.append(render("suggest_summary", number=number.split("-")[0]))
        agencies = sorted({a for d in book.directives for a in d.agencies},
                          key=lambda a: -sum(a in d.agencies for d in book.directives))  # fmt: skip
        questions += [render("suggest_agency", agency=a) for a in agencies[:12]]
        for d in book.directives:
            if d.deadline:
                questions.append(render("suggest_deadline", action=_topic(d.action)))
        self.questions = list(dict.fromkeys(questions))
        self._folded = [fold(q) for q in self.questions]

    def starters(self) -> list[str]:
        out = [render("suggest_window_upcoming")]
        if self.info:
            out.append(render("suggest_summary", number=next(iter(self.info)).split("-")[0]))
        agency = next(
            (q for q in self.questions if q.endswith(render("suggest_agency", agency="").strip())), None
        )
        if agency:
            out.append(agency)
        return out[:LIMIT]

    def closest(self, question: Question) -> list[str]:
        """The corpus's questions nearest in words to one it could not answer."""
        if not self.questions:
            return []
        found = process.extract(fold(question.text), self._folded, scorer=fuzz.token_set_ratio, limit=LIMIT)
        return [self.questions[i] for _, score, i in found if score >= 30] or self.starters()

    def follow_ups(self, question: Question, draft: Draft) -> list[str]:
        """What people ask next after this kind of answer."""
        out: list[str] = []
        number = draft.ket_luan[0].split("-")[0] if draft.ket_luan else None
        if question.kind in ("deadline", "generic", "list", "who") and question.mentions:
            out.append(render("suggest_agency", agency=question.mentions[0]))
        if question.kind in ("task", "deadline", "generic", "list", "window") and number:
            out.append(render("suggest_summary", number=number))
        if question.kind == "summary" and len(self.info) > 1 and number:
            other = next(n for n in self.info if not n.startswith(number + "-"))
            out.append(render("suggest_compare", a=number, b=other.split("-")[0]))
        if question.kind != "window":
            out.append(render("suggest_window_upcoming"))
        return list(dict.fromkeys(out))[:LIMIT]


_DANGLING = frozenset(
    [
        "và",
        "với",
        "của",
        "các",
        "cho",
        "để",
        "theo",
        "trong",
        "tại",
        "về",
        "hoặc",
        "những",
        "là",
        "ở",
        "từ",
        "đến",
    ]
)


def _topic(action: str) -> str:
    """A task's action as the subject of a question: its first words up to a whole phrase (never ending on
    "và", "của" or a comma), the verb in lower case ("Hoàn thiện …" → "hoàn thiện …")."""
    words = shorten(action, ACTION_WORDS).rstrip(" …").split()
    for i, word in enumerate(words):
        if word.endswith((",", ";", ":")) and i >= 2:
            words = words[: i + 1]
            break
    words[-1] = words[-1].rstrip(",;:.")
    while len(words) > 2 and words[-1].lower() in _DANGLING:
        words.pop()
    # a verb starts lower case in the question; a name ("Bộ Nội vụ …") keeps its capitals
    if len(words) > 1 and not words[1][:1].isupper():
        words[0] = words[0][:1].lower() + words[0][1:]
    return " ".join(words)
