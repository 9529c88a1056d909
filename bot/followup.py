"""A message + the conversation's bounded history → the question it really asks.

"Còn Bộ Tư pháp thì sao?" after a question on Kết luận 183 is about Kết luận 183: follow-ups (short
questions with "còn … thì sao", "thế còn", "vậy", pronouns) inherit the Kết luận, agency, kind and topic
of the previous question, which may itself have been a follow-up.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace

from bot.models import Turn
from bot.question import Question, merge


def resolve(message: str, history: Sequence[Turn], analyze: Callable[[str], Question]) -> Question:
    previous: Question | None = None
    for turn in history:
        previous = _step(analyze(turn.question), previous)
    question = _step(analyze(message), previous)
    if question.followup and history and history[-1].passage_ids:
        # "vậy phải xong trước bữa nào?", "kết luận được dẫn chiếu trong đoạn đó": about what was just quoted
        question = replace(question, earlier=tuple(history[-1].passage_ids))
    return question


def _step(question: Question, previous: Question | None) -> Question:
    if previous is None or not question.followup or question.kind == "greeting":
        return question
    return merge(question, previous)
