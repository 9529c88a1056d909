"""Question + numbered source passages + history → an LLM answer with [n] markers, from any
OpenAI-compatible endpoint through langchain-openai (whole or streamed). Checking and fallback live in
bot/citations.py and bot/service.py."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from typing import Any

from bot.models import Turn
from bot.settings import BotSettings
from index.models import Passage
from prompts import load, render

MAX_SOURCE_CHARS = 1800
HISTORY_TURNS_IN_PROMPT = 3


class LLMAnswerer:
    """Async answers from an OpenAI-compatible chat endpoint."""

    def __init__(self, settings: BotSettings, model: Any | None = None) -> None:
        if model is None:
            from langchain_openai import ChatOpenAI

            if not settings.llm_base_url:
                raise ValueError("KETLUAN_LLM_BASE_URL is not set")
            key = settings.llm_api_key.get_secret_value() if settings.llm_api_key else "not-needed"
            model = ChatOpenAI(
                base_url=settings.llm_base_url,
                model=settings.llm_model,
                api_key=key,  # type: ignore[arg-type]
                timeout=settings.llm_timeout,
                max_retries=0,  # a retry would blow the latency budget; the extractive answer is the retry
                temperature=0,
                streaming=True,
            )
        self.model = model
        self.settings = settings

    @classmethod
    def from_settings(cls, settings: BotSettings) -> LLMAnswerer | None:
        return cls(settings) if settings.llm_base_url else None

    def messages(self, question: str, sources: Sequence[Passage], history: Sequence[Turn]) -> list[Any]:
        from langchain_core.messages import HumanMessage, SystemMessage

        numbered = "\n\n".join(
            render(
                "llm_source",
                n=i,
                label=p.label,
                text=p.text[:MAX_SOURCE_CHARS],
                issued=f"{p.issued.day}/{p.issued.month}/{p.issued.year}" if p.issued else "không rõ",
            )
            for i, p in enumerate(sources, 1)
        )
        turns = [t for t in history if t.answered][-HISTORY_TURNS_IN_PROMPT:]
        past = (
            render(
                "llm_history", turns="\n".join(f"- Hỏi: {t.question}\n  Đáp: {t.answer[:400]}" for t in turns)
            )
            if turns
            else ""
        )
        user = render("llm_user", sources=numbered, history=past, question=question)
        return [SystemMessage(content=load("system")), HumanMessage(content=user)]

    async def complete(self, question: str, sources: Sequence[Passage], history: Sequence[Turn]) -> str:
        reply = await self.model.ainvoke(self.messages(question, sources, history))
        content = reply.content
        if not isinstance(content, str):
            raise TypeError(f"unexpected LLM content of type {type(content).__name__}")
        return content

    async def stream(
        self, question: str, sources: Sequence[Passage], history: Sequence[Turn]
    ) -> AsyncIterator[str]:
        async for chunk in self.model.astream(self.messages(question, sources, history)):
            content = chunk.content
            if isinstance(content, str) and content:
                yield content
