"""An answer before numbering (text with [n] markers into its own source list) and the helper that
hands out those markers."""

from __future__ import annotations

from dataclasses import dataclass, field

from index.models import Passage


@dataclass
class Draft:
    """An answer before numbering: markers [n] point into `sources` (1-based)."""

    answer: str
    answered: bool
    sources: list[Passage] = field(default_factory=list)
    ket_luan: list[str] = field(default_factory=list)
    kind: str = "generic"
    suggestions: list[str] = field(default_factory=list)
    confidence: float = 1.0  # the answerability model's probability that the answer is right
    gated: bool = False  # True when the answerability model decided (answers from retrieved sentences)


class Cites:
    """Sources in order of first citation; `cite(p)` gives the marker of passage p."""

    def __init__(self) -> None:
        self.sources: list[Passage] = []

    def cite(self, passage: Passage | None) -> str:
        if passage is None:
            return ""
        ids = [p.passage_id for p in self.sources]
        if passage.passage_id not in ids:
            self.sources.append(passage)
            ids.append(passage.passage_id)
        return f"[{ids.index(passage.passage_id) + 1}]"
