"""The citation contract of API.md, checked by the tests' own code (never the product's `check_markers`)."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence

from bot.models import ChatResponse, Citation


def contract_problems(
    answer: str, citations: Sequence[Citation], source_text: Callable[[str], str]
) -> list[str]:
    """Every [n] has a citation, every citation is used, n is 1..N, each text stands at its offsets."""
    used = {int(n) for n in re.findall(r"\[(\d+)\]", answer)}
    numbers = [c.n for c in citations]
    problems = [f"[{n}] without citation" for n in sorted(used - set(numbers))]
    problems += [f"citation {n} unused" for n in sorted(set(numbers) - used)]
    if sorted(numbers) != list(range(1, len(numbers) + 1)):
        problems.append(f"numbers {numbers} are not 1..N")
    for c in citations:
        if source_text(c.source.file)[c.source.start : c.source.end] != c.text:
            problems.append(f"citation {c.n} not verbatim")
    return problems


def assert_contract(response: ChatResponse, source_text: Callable[[str], str]) -> None:
    assert contract_problems(response.answer, response.citations, source_text) == [], response.answer
    if response.answered:
        assert response.citations, response.answer
    else:
        assert response.citations == []
