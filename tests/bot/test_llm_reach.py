"""Which questions reach the LLM: those the extractive gate refuses still may (spoken phrasing, prose
summaries), but never one about a Kết luận the corpus does not hold; an out-of-scope question whose
generated answer the passages do not support stays refused."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterator
from typing import Any

import pytest

from bot.answerability import Answerability
from bot.service import ChatService
from index.search import SearchIndex
from tests.bot.test_llm import FakeOpenAI, make_service


class Scripted(FakeOpenAI):
    """Answers with `reply(sources)`, where sources are the numbered passage texts of the prompt."""

    def __init__(self) -> None:
        super().__init__()
        self.reply = lambda sources: "KHÔNG_ĐỦ_THÔNG_TIN"

    def content(self, body: dict[str, Any]) -> str:
        user = body["messages"][-1]["content"]
        sources = dict(re.findall(r"^\[(\d+)\] [^\n]*\n(.+)$", user, re.MULTILINE))
        return self.reply(sources)


@pytest.fixture()
def scripted() -> Iterator[Scripted]:
    server = Scripted()
    yield server
    server.close()


def _quote_first_sentence_with(word: str) -> Any:
    def reply(sources: dict[str, str]) -> str:
        n, text = next((n, t) for n, t in sources.items() if word in t)
        sentence = next(s for s in re.split(r"(?<=[.;])\s", text) if word in s)
        return f"Văn bản nêu: “{sentence.rstrip('.;')}” [{n}]."

    return reply


def test_a_question_the_extractive_gate_refuses_still_reaches_the_llm(
    kl_index: SearchIndex, scripted: Scripted
) -> None:
    service: ChatService = make_service(kl_index, scripted)
    model = service.extractive.model
    service.extractive.model = Answerability(
        model.weights, model.bias, threshold=1.01
    )  # refuses all it decides
    message = "bà con hỏi vụ trạm y tế ở xã, rốt cuộc văn bản nói sao về việc sắp xếp trạm y tế?"
    assert not service.prepare(message).draft.answered
    scripted.reply = _quote_first_sentence_with("trạm y tế")
    response = asyncio.run(service.answer_async(message))
    assert scripted.requests, "the LLM was not asked"
    assert response.mode == "llm" and response.answered
    assert "trạm y tế" in response.answer


def test_no_llm_call_for_a_ket_luan_the_corpus_does_not_hold(
    kl_index: SearchIndex, scripted: Scripted
) -> None:
    response = asyncio.run(make_service(kl_index, scripted).answer_async("Kết luận 998-KL/TW yêu cầu gì?"))
    assert not scripted.requests
    assert not response.answered


def test_an_out_of_scope_answer_the_passages_do_not_support_stays_refused(
    kl_index: SearchIndex, scripted: Scripted
) -> None:
    scripted.reply = lambda sources: "Giá vàng SJC hôm nay là 152 triệu đồng một lượng [1]."
    response = asyncio.run(
        make_service(kl_index, scripted).answer_async("giá vàng hôm nay bao nhiêu một lượng")
    )
    assert not response.answered and response.citations == []
    assert "152" not in response.answer
