"""A message + the conversation's bounded history → the question it really asks.

"Còn Bộ Tư pháp thì sao?" after a question on Kết luận 183 is about Kết luận 183: follow-ups (short
questions with "còn … thì sao", "thế còn", "vậy", pronouns) inherit the Kết luận, agency, kind and topic
of the previous question, which may itself have been a follow-up.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from bot.models import Turn
from bot.question import Question, merge


def resolve(message: str, history: Sequence[Turn], analyze: Callable[[str], Question]) -> Question:
    previous: Question | None = None
    for turn in history:
        previous = _step(analyze(turn.question), previous)
    return _step(analyze(message), previous)


def _step(question: Question, previous: Question | None) -> Question:
    if previous is None or not question.followup or question.kind == "greeting":
        return question
    return merge(question, previous)
