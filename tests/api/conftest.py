"""API fixtures: settings over the shipped-corpus index, a fake chat service, and real loopback servers.

`live_server` (session) is the whole app on 127.0.0.1 with the real lifespan, store and ChatService over the
kl_settings data dir, already ready (/readyz 200); it returns the base URL. `serve_app(app)` runs any other
app the same way, for tests that need other settings (API keys, a small rate limit …).
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import uvicorn
from fastapi import FastAPI

from api.app import create_app
from api.settings import ApiSettings, Settings
from bot.models import ChatResponse, Citation
from bot.settings import BotSettings, TelegramSettings, ZaloSettings
from index.errors import BadQuery, NotFound
from index.search import SearchIndex, SearchQuery
from index.settings import IndexSettings

ServeApp = Callable[[FastAPI], contextlib.AbstractContextManager[str]]


def make_settings(index: IndexSettings, **api: Any) -> Settings:
    """Settings for tests: nothing from the environment that changes behaviour (keys, LLM, Redis)."""
    api.setdefault("api_keys", None)
    api.setdefault("cors_origins", "*")
    api.setdefault("rate_limit_per_minute", 100_000)
    bot = BotSettings(llm_base_url=None, redis_url=None)
    return Settings(index, bot, ApiSettings(**api), TelegramSettings(), ZaloSettings())


@pytest.fixture(scope="session")
def api_settings(kl_settings: IndexSettings) -> Settings:
    return make_settings(kl_settings)


# --- a fake chat service, for routes tested without the answering core ----------------------------
@dataclass(frozen=True)
class FakeEvent:
    event: str
    data: Any


class FakeChatService:
    """Answers with the first search hit, quoted and cited [1]; remembers conversations in memory."""

    def __init__(self, index: SearchIndex, fail_stream_after: int | None = None) -> None:
        self.index = index
        self.fail_stream_after = fail_stream_after
        self.turns: dict[str, list[str]] = {}
        self.feedback_given: list[tuple[str, str, str, str | None]] = []
        self.llm = None

    def search_query(self, text: str, filters: Any = None) -> SearchQuery:
        return SearchQuery(text=text, filters=filters)

    def answer(self, message: str, conversation_id: str | None = None, filters: Any = None) -> ChatResponse:
        if not message.strip():
            raise BadQuery("message is empty or blank")
        cid = conversation_id if conversation_id in self.turns else f"c{len(self.turns) + 1}"
        mid = f"m{sum(map(len, self.turns.values())) + 1}"
        self.turns.setdefault(cid, []).append(mid)
        hits = self.index.search(message, 1, filters)
        if not hits:
            return ChatResponse(conversation_id=cid, message_id=mid, answer="Không có.", answered=False,
                                citations=[], mode="extractive", latency_ms=1.0)  # fmt: skip
        citation = Citation(**dict(hits[0]), n=1)
        answer = f"“{hits[0].text}” [1]"
        return ChatResponse(conversation_id=cid, message_id=mid, answer=answer, answered=True,
                            citations=[citation], mode="extractive", latency_ms=1.0)  # fmt: skip

    async def answer_async(
        self, message: str, conversation_id: str | None = None, filters: Any = None
    ) -> Any:
        return self.answer(message, conversation_id, filters)

    async def stream(self, message: str, conversation_id: str | None = None, filters: Any = None
                     ) -> AsyncIterator[FakeEvent]:  # fmt: skip
        response = self.answer(message, conversation_id, filters)
        for n, word in enumerate(response.answer.split(" ")):
            if self.fail_stream_after is not None and n >= self.fail_stream_after:
                raise BadQuery("stream broke")
            yield FakeEvent("token", {"text": word + " "})
        yield FakeEvent("citations", [c.model_dump(mode="json") for c in response.citations])
        yield FakeEvent("done", response.model_dump(mode="json"))

    def feedback(self, conversation_id: str, message_id: str, rating: str, comment: str | None) -> None:
        if message_id not in self.turns.get(conversation_id, []):
            raise NotFound(f"no message {message_id!r} in conversation {conversation_id!r}")
        self.feedback_given.append((conversation_id, message_id, rating, comment))


@pytest.fixture()
def fake_service_factory(kl_index: SearchIndex) -> Callable[[SearchIndex, Any, Any], FakeChatService]:
    return lambda index, store, llm: FakeChatService(index)


# --- real servers on loopback ---------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_ready(base_url: str, timeout: float = 120.0, path: str = "/readyz") -> httpx.Response:
    """Poll until `path` answers 200; the last response otherwise (the caller asserts on it)."""
    deadline = time.monotonic() + timeout
    last: httpx.Response | None = None
    while time.monotonic() < deadline:
        try:
            last = httpx.get(base_url + path, timeout=5.0)
            if last.status_code == 200:
                return last
        except httpx.TransportError:
            pass
        time.sleep(0.05)
    assert last is not None, f"{base_url} never answered"
    return last


@contextlib.contextmanager
def run_server(app: FastAPI) -> Iterator[str]:
    """Serve `app` with uvicorn in a thread on a free loopback port; yields the base URL once it accepts."""
    port = free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", access_log=False,
                            lifespan="on", timeout_graceful_shutdown=5, proxy_headers=False)  # fmt: skip
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name=f"uvicorn-{port}", daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started:
        assert thread.is_alive(), "uvicorn stopped during start-up"
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(15)


@pytest.fixture()
def serve_app() -> ServeApp:
    return run_server


@pytest.fixture(scope="session")
def live_server(api_settings: Settings) -> Iterator[str]:
    """The full app (real store, ChatService, index loaded by the lifespan) on loopback; its base URL."""
    with run_server(create_app(api_settings)) as base_url:
        response = wait_ready(base_url)
        assert response.status_code == 200, response.text
        yield base_url
