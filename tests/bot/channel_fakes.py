"""Fakes for the Telegram and Zalo bot tests: a chat service with scripted answers and an in-memory store."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

from bot.models import ChatResponse, Citation
from index.errors import UpstreamError
from index.models import Source

PUBLIC_URL = "https://hoidap.example.vn"
LONG_PARAGRAPH = (
    "Các tỉnh uỷ, thành uỷ phải hoàn thành việc sắp xếp trạm y tế cấp xã trước ngày 31/12/2025 [1]. "
)


def citation(n: int, document_id: str = "kl183-621b55", passage: str = "m3.d2") -> Citation:
    return Citation(
        passage_id=f"{document_id}.{passage}",
        document_id=document_id,
        document_title="Kết luận 183-KL/TW",
        ket_luan="183-KL/TW",
        label=f"Kết luận 183-KL/TW, mục 3, đoạn {n} <&>",
        text="…",
        source=Source(file="000.txt", start=0, end=1),
        url=f"/documents/{document_id}#{document_id}.{passage}",
        n=n,
    )


def long_answer(paragraphs: int = 12, sentences: int = 6) -> str:
    """Paragraphs of about 600 characters each, numbered so their order can be checked."""
    return "\n\n".join(f"Đoạn {i}: " + LONG_PARAGRAPH * sentences for i in range(1, paragraphs + 1))


class FakeService:
    """Answers by script: `answers[message]` (or a default echo), citing [1] and [2]; `fail` raises."""

    def __init__(self, answers: dict[str, str] | None = None, delay: float = 0.0) -> None:
        self.answers = dict(answers or {})
        self.delay = delay
        self.hold = threading.Event()  # clear it to keep answers pending until it is set again
        self.hold.set()
        self.waiting = 0  # answers started and held
        self.calls: list[tuple[str, str | None]] = []
        self.resets: list[str] = []
        self.llm = None

    def _respond(self, message: str, conversation_id: str | None) -> ChatResponse:
        self.calls.append((message, conversation_id))
        if message == "lỗi":
            raise UpstreamError("the answering core is down")
        answer = self.answers.get(message, f"Trả lời cho <{message}> & chi tiết [1] [2].")
        return ChatResponse(
            conversation_id=conversation_id or f"c_new{len(self.calls)}",
            message_id=f"m{len(self.calls)}",
            answer=answer,
            answered=True,
            citations=[citation(1), citation(2, passage="m4.d1")],
            mode="extractive",
            latency_ms=1.0,
        )

    async def answer_async(
        self, message: str, conversation_id: str | None = None, filters: Any = None
    ) -> ChatResponse:
        if self.delay:
            await asyncio.sleep(self.delay)
        if not self.hold.is_set():
            self.waiting += 1
            try:
                await asyncio.to_thread(self.hold.wait, 30)
            finally:
                self.waiting -= 1
        return self._respond(message, conversation_id)

    def answer(self, message: str, conversation_id: str | None = None, filters: Any = None) -> ChatResponse:
        return self._respond(message, conversation_id)

    def reset(self, conversation_id: str) -> None:
        self.resets.append(conversation_id)


class FakeStore:
    """The store methods the bots use, in memory."""

    def __init__(self) -> None:
        self.seen: set[tuple[str, str]] = set()
        self.created: set[str] = set()
        self.values: dict[tuple[str, str], str] = {}

    def mark_seen(self, namespace: str, key: str, ttl_seconds: int) -> bool:
        if (namespace, key) in self.seen:
            return False
        self.seen.add((namespace, key))
        return True

    def create(self, conversation_id: str) -> None:
        self.created.add(conversation_id)

    def get_value(self, namespace: str, key: str) -> str | None:
        return self.values.get((namespace, key))

    def set_value(self, namespace: str, key: str, value: str) -> None:
        self.values[(namespace, key)] = value
