"""LLM mode against a fake OpenAI-compatible server on loopback: normal, streamed, slow, garbage, invented
citation numbers, unsupported claims — and the extractive fallback."""

from __future__ import annotations

import asyncio
import json
import re
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from bot.llm import LLMAnswerer
from bot.models import ChatResponse
from bot.service import ChatService, StreamEvent
from bot.settings import BotSettings
from bot.stores import sqlite_stores
from index.search import SearchIndex
from tests.contract import assert_contract

QUESTION = "Trạm y tế cấp xã phải sắp xếp xong trước ngày nào?"


class FakeOpenAI:
    """/v1/chat/completions that quotes the first sentence of source [1]; `mode` picks the misbehaviour."""

    def __init__(self) -> None:
        self.mode = "normal"
        self.requests: list[dict[str, Any]] = []
        self.release = threading.Event()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                fake.requests.append(body)
                fake.respond(self, body)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/v1"

    def close(self) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()

    def content(self, body: dict[str, Any]) -> str:
        user = body["messages"][-1]["content"]
        sources = re.findall(r"^\[(\d+)\] [^\n]*\n(.+)$", user, re.MULTILINE)
        first = re.split(r"(?<=[.;])\s", sources[0][1])[0] if sources else ""
        with_deadline = next((t for _, t in sources if "31/12/2025" in t), "")
        n_deadline = next((n for n, t in sources if "31/12/2025" in t), "1")
        if self.mode == "invented":
            return f"Hạn chót là trước ngày 31/12/2025 [{n_deadline}][9]. Ngoài ra còn nhiều việc khác [17]."
        if self.mode == "only_invented":
            return "Hạn chót là trước ngày 31/12/2025 [12]."
        if self.mode == "unsupported":
            return f"Hạn chót là ngày 30/6/2031 theo Nghị định 99 [{n_deadline}]."
        # failure modes seen with small real models
        if self.mode == "echo":
            return f"{QUESTION} [{n_deadline}]"
        if self.mode == "wrong_agency":
            return f"Bộ Quốc phòng chủ trì sắp xếp các trạm y tế cấp xã trước ngày 31/12/2025 [{n_deadline}]."
        if self.mode == "negated":
            return f"Không cần sắp xếp các trạm y tế cấp xã trước ngày 31/12/2025 [{n_deadline}]."
        if self.mode == "wrong_date":
            return f"Các trạm y tế cấp xã phải sắp xếp xong trước ngày 31/12/2026 [{n_deadline}]."
        if self.mode == "no_answer":
            return "KHÔNG_ĐỦ_THÔNG_TIN"
        assert with_deadline or first
        return (f"Hạn chót là trước ngày 31/12/2025, theo Kết luận 221-KL/TW [{n_deadline}]. "
                f"Văn bản nêu: “{with_deadline or first}” [{n_deadline}].\n- Các tỉnh uỷ, thành uỷ phối hợp "
                f"Bộ Y tế sắp xếp các trạm y tế cấp xã [{n_deadline}, 1].")  # fmt: skip

    def respond(self, handler: BaseHTTPRequestHandler, body: dict[str, Any]) -> None:
        if self.mode == "slow":
            self.release.wait(10)
        if self.mode == "garbage":
            payload = b"<html>502 Bad Gateway</html>{{{"
            handler.send_response(200)
            handler.send_header("Content-Type", "application/json")
            handler.send_header("Content-Length", str(len(payload)))
            handler.end_headers()
            handler.wfile.write(payload)
            return
        if self.mode == "error":
            handler.send_response(500)
            handler.send_header("Content-Length", "0")
            handler.end_headers()
            return
        text = self.content(body)
        base = {"id": "chatcmpl-1", "created": int(time.time()), "model": body.get("model", "m")}
        if body.get("stream"):
            handler.send_response(200)
            handler.send_header("Content-Type", "text/event-stream")
            handler.end_headers()
            pieces = re.findall(r"\S+\s*", text)
            for piece in pieces:
                delta = {"index": 0, "delta": {"content": piece}, "finish_reason": None}
                chunk = {**base, "object": "chat.completion.chunk", "choices": [delta]}  # fmt: skip
                handler.wfile.write(f"data: {json.dumps(chunk, ensure_ascii=False)}\n\n".encode())
                handler.wfile.flush()
            end = {**base, "object": "chat.completion.chunk",
                   "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}  # fmt: skip
            handler.wfile.write(f"data: {json.dumps(end)}\n\ndata: [DONE]\n\n".encode())
            handler.wfile.flush()
            return
        payload = json.dumps({
            **base, "object": "chat.completion",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": text},
                         "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 10, "completion_tokens": 10, "total_tokens": 20},
        }, ensure_ascii=False).encode()  # fmt: skip
        handler.send_response(200)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(len(payload)))
        handler.end_headers()
        handler.wfile.write(payload)


@pytest.fixture()
def fake() -> Iterator[FakeOpenAI]:
    server = FakeOpenAI()
    yield server
    server.close()


def make_service(index: SearchIndex, fake: FakeOpenAI, timeout: float = 10.0) -> ChatService:
    settings = BotSettings(llm_base_url=fake.base_url, llm_model="fake", llm_timeout=timeout, redis_url=None)
    return ChatService(index, sqlite_stores(":memory:"), settings, LLMAnswerer(settings))


def assert_valid(response: ChatResponse, index: SearchIndex) -> None:
    assert_contract(response, index.source_text)


def test_llm_answer_is_used_and_checked(kl_index: SearchIndex, fake: FakeOpenAI) -> None:
    response = asyncio.run(make_service(kl_index, fake).answer_async(QUESTION))
    assert response.mode == "llm" and response.answered
    assert "31/12/2025" in response.answer
    assert response.answer.count("[1]") >= 2
    assert_valid(response, kl_index)
    prompt = fake.requests[0]["messages"]
    assert prompt[0]["role"] == "system" and "[n]" in prompt[0]["content"]
    assert "[1] Kết luận" in prompt[1]["content"] and QUESTION in prompt[1]["content"]


def test_llm_stream_tokens_join_to_the_answer(kl_index: SearchIndex, fake: FakeOpenAI) -> None:
    service = make_service(kl_index, fake)

    async def collect() -> list[StreamEvent]:
        return [e async for e in service.stream(QUESTION)]

    events = asyncio.run(collect())
    assert [e.event for e in events][-2:] == ["citations", "done"]
    tokens = [e.data["text"] for e in events if e.event == "token"]
    done = events[-1].data
    assert len(tokens) >= 2 and done["mode"] == "llm"
    assert "".join(tokens) == done["answer"]
    assert events[-2].data == done["citations"]
    assert fake.requests[0]["stream"] is True


def test_invented_citation_numbers_are_dropped(kl_index: SearchIndex, fake: FakeOpenAI) -> None:
    fake.mode = "invented"
    response = asyncio.run(make_service(kl_index, fake).answer_async(QUESTION))
    assert response.mode == "llm"
    assert "[9]" not in response.answer and "[17]" not in response.answer
    assert len(response.citations) == 1 and response.citations[0].n == 1
    assert "Ngoài ra" not in response.answer  # its only marker was invented
    assert_valid(response, kl_index)


@pytest.mark.parametrize(
    "mode",
    [
        "only_invented",
        "unsupported",
        "echo",
        "wrong_agency",
        "negated",
        "wrong_date",
        "no_answer",
        "garbage",
        "error",
    ],
)
def test_bad_llm_answers_fall_back_to_extractive(kl_index: SearchIndex, fake: FakeOpenAI, mode: str) -> None:
    fake.mode = mode
    service = make_service(kl_index, fake)
    response = asyncio.run(service.answer_async(QUESTION))
    assert response.mode == "extractive" and response.answered
    assert "31/12/2025" in response.answer
    assert fake.requests  # the LLM was asked
    assert_valid(response, kl_index)


def test_slow_llm_times_out_to_extractive(kl_index: SearchIndex, fake: FakeOpenAI) -> None:
    fake.mode = "slow"
    service = make_service(kl_index, fake, timeout=0.5)
    started = time.perf_counter()
    response = asyncio.run(service.answer_async(QUESTION))
    elapsed = time.perf_counter() - started
    assert response.mode == "extractive" and response.answered
    assert elapsed < 5


def test_slow_llm_stream_falls_back(kl_index: SearchIndex, fake: FakeOpenAI) -> None:
    fake.mode = "slow"
    service = make_service(kl_index, fake, timeout=0.5)

    async def collect() -> list[StreamEvent]:
        return [e async for e in service.stream(QUESTION)]

    events = asyncio.run(collect())
    done = events[-1].data
    assert done["mode"] == "extractive"
    assert "".join(e.data["text"] for e in events if e.event == "token") == done["answer"]


def test_refused_questions_never_reach_the_llm(kl_index: SearchIndex, fake: FakeOpenAI) -> None:
    response = asyncio.run(make_service(kl_index, fake).answer_async("giá vàng hôm nay"))
    assert not response.answered and response.citations == []
    assert fake.requests == []


def test_metadata_questions_stay_extractive(kl_index: SearchIndex, fake: FakeOpenAI) -> None:
    response = asyncio.run(make_service(kl_index, fake).answer_async("Ai ký Kết luận 221?"))
    assert response.mode == "extractive" and "Trần Cẩm Tú" in response.answer
    assert fake.requests == []


def test_no_llm_without_base_url() -> None:
    assert LLMAnswerer.from_settings(BotSettings(llm_base_url=None)) is None
