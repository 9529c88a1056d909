"""What an answer is: the ChatResponse of API.md, built from index passages (never re-derived)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from index.models import Passage


class Citation(Passage):
    """A passage cited in an answer; `n` is the [n] marker used in the answer text (1-based)."""

    n: int = Field(ge=1)


class ChatResponse(BaseModel):
    conversation_id: str
    message_id: str
    answer: str
    answered: bool
    citations: list[Citation]
    mode: Literal["extractive", "llm"]
    latency_ms: float
    suggestions: list[str] = Field(
        default_factory=list,
        description="questions the corpus can answer: the closest ones when unsure or refused, else follow-ups",
    )
    intent: str = Field(default="fact", description="what the question asked, as the service read it")


class Turn(BaseModel):
    """One exchange kept in a conversation's bounded history."""

    message_id: str
    question: str
    answer: str
    answered: bool
    ket_luan: list[str] = Field(default_factory=list, description="Kết luận the answer cited, newest first")
    passage_ids: list[str] = Field(default_factory=list)
    created_at: float = 0.0
