"""The bot webhooks end to end over real HTTP: the app on loopback posts to fake Telegram and Zalo servers."""

from __future__ import annotations

import asyncio
import json
import logging
import shutil
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, TypeVar
from urllib.parse import parse_qs

import httpx
import pytest
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from api.app import create_app
from api.settings import Settings
from api.webhooks import BotOptions
from bot.settings import BotSettings, TelegramSettings, ZaloSettings
from bot.store import SQLiteStore
from bot.zalo import signature
from index.build import build_index
from index.embedding import HashingEmbedder
from index.search import SearchIndex, open_index
from index.settings import IndexSettings
from tests.api.conftest import make_settings, run_server
from tests.bot.channel_fakes import PUBLIC_URL, FakeService, long_answer
from tests.conftest import CORPUS

TG_TOKEN, TG_SECRET = "123456:TEST-TOKEN", "tg-webhook-secret"
ZALO_APP, ZALO_SECRET, ZALO_APP_SECRET = "4321", "oa-secret-key", "app-secret"
T = TypeVar("T")


# --- fake Telegram Bot API and Zalo OA API, one real HTTP server --------------------------------
@dataclass
class Call:
    kind: str  # "telegram", "zalo", "oauth"
    method: str
    body: dict[str, Any]
    headers: dict[str, str]
    at: float = field(default_factory=time.monotonic)


class Platform:
    """Records every call; scripted failures are queued per Telegram method or for the Zalo OA API."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        with self.lock:
            self.calls: list[Call] = []
            self.telegram_failures: dict[str, list[tuple[int, dict[str, Any]]]] = {}
            self.zalo_failures: list[int] = []
            self.updates: list[dict[str, Any]] = []
            self.zalo_valid = {"zalo-token-1", "zalo-token-2"}

    def fail_telegram(self, method: str, *responses: tuple[int, dict[str, Any]]) -> None:
        with self.lock:
            self.telegram_failures.setdefault(method, []).extend(responses)

    def find(self, kind: str, method: str | None = None) -> list[Call]:
        with self.lock:
            return [c for c in self.calls if c.kind == kind and (method is None or c.method == method)]

    def _record(self, call: Call) -> None:
        with self.lock:
            self.calls.append(call)

    def app(self) -> FastAPI:
        app = FastAPI()

        @app.post("/bot{token}/{method}")
        async def telegram(token: str, method: str, request: Request) -> Any:
            body = json.loads(await request.body() or b"{}")
            self._record(Call("telegram", method, body, dict(request.headers)))
            if token != TG_TOKEN:
                return JSONResponse({"ok": False, "error_code": 401, "description": "Unauthorized"}, 401)
            with self.lock:
                queued = self.telegram_failures.get(method) or []
                failure = queued.pop(0) if queued else None
            if failure is not None:
                return JSONResponse(failure[1], status_code=failure[0])
            if method == "getUpdates":
                with self.lock:
                    pending, self.updates = self.updates, []
                if not pending:
                    await asyncio.sleep(0.05)  # a (very) short long poll
                return {"ok": True, "result": pending}
            if method == "getWebhookInfo":
                return {"ok": True, "result": {"url": "", "pending_update_count": 0}}
            if method == "getMe":
                return {"ok": True, "result": {"id": 999, "is_bot": True, "username": "KetLuanBot"}}
            if method == "sendMessage":
                return {"ok": True, "result": {"message_id": len(self.find("telegram", "sendMessage"))}}
            return {"ok": True, "result": True}

        @app.post("/v3.0/oa/message/cs")
        async def zalo(request: Request) -> Any:
            body = json.loads(await request.body())
            self._record(Call("zalo", "send", body, dict(request.headers)))
            with self.lock:
                failure = self.zalo_failures.pop(0) if self.zalo_failures else None
                valid = request.headers.get("access_token") in self.zalo_valid
            if failure is not None:
                return JSONResponse({"error": -1, "message": "busy"}, status_code=failure)
            if not valid:
                return {"error": -216, "message": "Access token is invalid"}
            return {"error": 0, "message": "Success", "data": {"message_id": "x"}}

        @app.post("/v4/oa/access_token")
        async def oauth(request: Request) -> Any:
            form = {k: v[0] for k, v in parse_qs((await request.body()).decode()).items()}
            self._record(Call("oauth", "refresh", form, dict(request.headers)))
            if (
                form.get("refresh_token") != "zalo-refresh-1"
                or request.headers.get("secret_key") != ZALO_APP_SECRET
            ):
                return {"error": -14014, "error_description": "Invalid refresh token"}
            with self.lock:
                self.zalo_valid.add("zalo-token-3")
            return {"access_token": "zalo-token-3", "refresh_token": "zalo-refresh-2", "expires_in": "90000"}

        return app


@dataclass
class Harness:
    base: str
    platform: Platform
    service: FakeService
    app: FastAPI

    def idle(self) -> None:
        """Wait until the app has no background bot work left (so "nothing else happened" is true)."""
        wait_for(lambda: len(self.app.state.bots.tasks) == 0 or None)

    def telegram(self, update: dict[str, Any], secret: str | None = TG_SECRET) -> httpx.Response:
        headers = {"X-Telegram-Bot-Api-Secret-Token": secret} if secret is not None else {}
        return httpx.post(self.base + "/webhooks/telegram", json=update, headers=headers, timeout=10)

    def zalo(self, event: dict[str, Any], sign: str | None = "good") -> httpx.Response:
        body = json.dumps(event, ensure_ascii=False).encode()
        headers = {"Content-Type": "application/json"}
        if sign == "good":
            headers["X-ZEvent-Signature"] = signature(ZALO_APP, body, event["timestamp"], ZALO_SECRET)
        elif sign is not None:
            headers["X-ZEvent-Signature"] = sign
        return httpx.post(self.base + "/webhooks/zalo", content=body, headers=headers, timeout=10)


def wait_for(probe: Callable[[], T | None], timeout: float = 15.0) -> T:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = probe()
        if value:
            return value
        time.sleep(0.01)
    raise AssertionError("condition not reached in time")


@pytest.fixture(scope="module")
def platform() -> Iterator[tuple[Platform, str]]:
    fake = Platform()
    with run_server(fake.app()) as base:
        yield fake, base


@pytest.fixture(scope="module")
def small_index(tmp_path_factory: pytest.TempPathFactory) -> tuple[IndexSettings, SearchIndex]:
    """One shipped document indexed with the hashing embedder: the bots never search (the service is fake),
    but the app needs a loaded index to be ready, and this one builds in a second."""
    data = tmp_path_factory.mktemp("bots-data")
    (data / "corpus").mkdir()
    source = sorted(CORPUS.glob("*.txt"))[1]
    shutil.copy(source, data / "corpus" / source.name)
    settings = IndexSettings(data_dir=data, embedding_model="hashing-64")
    build_index(
        [data / "corpus"], settings.index_dir, HashingEmbedder(64), progress=False, log=lambda _: None
    )
    return settings, open_index(settings)


@pytest.fixture(scope="module")
def harness(
    platform: tuple[Platform, str], small_index: tuple[IndexSettings, SearchIndex]
) -> Iterator[Harness]:
    index_settings, index = small_index
    fake, base = platform
    plain = make_settings(index_settings)
    settings = Settings(
        plain.index,
        BotSettings(llm_base_url=None, redis_url=None, public_url=PUBLIC_URL),
        plain.api,
        TelegramSettings(
            telegram_bot_token=TG_TOKEN, telegram_webhook_secret=TG_SECRET, telegram_api_base=base
        ),
        ZaloSettings(
            zalo_app_id=ZALO_APP,
            zalo_oa_secret_key=ZALO_SECRET,
            zalo_access_token="zalo-token-1",
            zalo_refresh_token="zalo-refresh-1",
            zalo_app_secret=ZALO_APP_SECRET,
            zalo_api_base=base,
            zalo_oauth_base=base,
        ),
    )
    service = FakeService({"dài": long_answer(paragraphs=20)}, delay=0.05)
    app = create_app(
        settings,
        index=index,
        store=SQLiteStore(":memory:"),
        service_factory=lambda idx, store, llm: service,
    )
    app.state.bot_options = BotOptions(
        max_attempts=3, backoff_base=0.01, backoff_cap=0.05, typing_interval=0.05
    )
    with run_server(app) as app_base:
        yield Harness(app_base, fake, service, app)


@pytest.fixture()
def h(harness: Harness) -> Harness:
    harness.idle()
    harness.platform.reset()
    harness.service.calls.clear()
    return harness


_ids = iter(range(1000, 10**6))


def tg_update(
    text: str | None = "Trạm y tế cấp xã sắp xếp thế nào?", chat: str = "private", **message: Any
) -> dict[str, Any]:
    msg: dict[str, Any] = {
        "message_id": 77,
        "date": 1718000000,
        "chat": {"id": 42 if chat == "private" else -1001, "type": chat},
        "from": {"id": 42, "is_bot": False, "first_name": "An"},
        **message,
    }
    if text is not None:
        msg["text"] = text
    return {"update_id": next(_ids), "message": msg}


def zalo_event(
    name: str = "user_send_text", text: str | None = "Trạm y tế?", user: str = "u-1"
) -> dict[str, Any]:
    message: dict[str, Any] = {"msg_id": f"msg-{next(_ids)}"}
    if text is not None:
        message["text"] = text
    return {
        "app_id": ZALO_APP,
        "event_name": name,
        "timestamp": str(int(time.time() * 1000)),
        "sender": {"id": user},
        "recipient": {"id": "oa-1"},
        "message": message,
    }


def _error(response: httpx.Response, status: int, code: str) -> None:
    assert response.status_code == status, response.text
    assert response.json()["error"]["code"] == code
    assert response.json()["error"]["message"]


# --- Telegram ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("secret", [None, "", "wrong", TG_SECRET + "x", "tg-webhook-secreT", "ăâ"])
def test_telegram_without_the_right_secret_is_401_and_does_nothing(h: Harness, secret: str | None) -> None:
    if secret == "ăâ":  # not ASCII: must be a plain 401, not a TypeError in compare_digest
        headers = {"X-Telegram-Bot-Api-Secret-Token": secret.encode()}
        r = httpx.post(h.base + "/webhooks/telegram", json=tg_update(), headers=headers)
    else:
        r = h.telegram(tg_update(), secret=secret)
    _error(r, 401, "unauthorized")
    h.idle()
    assert h.platform.find("telegram") == [] and h.service.calls == []


def test_telegram_malformed_update_is_400(h: Harness) -> None:
    r = httpx.post(h.base + "/webhooks/telegram", content=b"{not json",
                   headers={"X-Telegram-Bot-Api-Secret-Token": TG_SECRET})  # fmt: skip
    _error(r, 400, "invalid_json")


def test_telegram_private_question_is_acknowledged_at_once_and_answered_with_sources(h: Harness) -> None:
    h.service.hold.clear()  # the answer stays pending: the webhook must not wait for it
    try:
        r = h.telegram(tg_update())
        assert r.status_code == 200
        wait_for(lambda: h.service.waiting == 1)
        assert h.platform.find("telegram", "sendMessage") == []
    finally:
        h.service.hold.set()
    [sent] = wait_for(lambda: h.platform.find("telegram", "sendMessage"))
    typing = h.platform.find("telegram", "sendChatAction")
    assert typing and typing[0].at <= sent.at and typing[0].body == {"chat_id": 42, "action": "typing"}
    assert sent.body["chat_id"] == 42 and sent.body["parse_mode"] == "HTML"
    assert sent.body["disable_web_page_preview"] is True
    assert "&lt;Trạm y tế cấp xã sắp xếp thế nào?&gt; &amp; chi tiết [1] [2]" in sent.body["text"]
    assert f'[1] <a href="{PUBLIC_URL}/documents/kl183-621b55#kl183-621b55.m3.d2">' in sent.body["text"]


def test_telegram_retried_update_is_answered_once(h: Harness) -> None:
    update = tg_update()
    assert h.telegram(update).status_code == 200
    assert h.telegram(update).status_code == 200
    wait_for(lambda: h.platform.find("telegram", "sendMessage"))
    h.idle()
    assert len(h.platform.find("telegram", "sendMessage")) == 1
    assert len(h.service.calls) == 1


def test_telegram_long_answer_arrives_in_order_in_parts_below_4096(h: Harness) -> None:
    h.telegram(tg_update("dài"))
    wait_for(lambda: h.platform.find("telegram", "sendMessage"))
    h.idle()
    texts = [c.body["text"] for c in h.platform.find("telegram", "sendMessage")]
    assert len(texts) >= 3
    assert all(len(t) < 4096 for t in texts)
    joined = "\n\n".join(texts)
    positions = [joined.index(f"Đoạn {i}:") for i in range(1, 21)]
    assert positions == sorted(positions)
    assert texts[-1].rstrip().endswith("</a>")


def test_telegram_429_is_retried_after_retry_after(h: Harness) -> None:
    too_many = {"ok": False, "error_code": 429, "description": "Too Many Requests: retry after 1",
                "parameters": {"retry_after": 1}}  # fmt: skip
    h.platform.fail_telegram("sendMessage", (429, too_many))
    h.telegram(tg_update())
    first, second = wait_for(lambda: (s := h.platform.find("telegram", "sendMessage")) and len(s) == 2 and s)
    assert second.at - first.at >= 0.9
    assert second.body == first.body


def test_telegram_5xx_is_retried_then_logged_with_chat_and_update(
    h: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    down = (502, {"ok": False, "error_code": 502, "description": "Bad Gateway"})
    h.platform.fail_telegram("sendMessage", down, down, down)
    update = tg_update()
    with caplog.at_level(logging.ERROR, logger="bot.telegram"):
        h.telegram(update)
        wait_for(lambda: len(h.platform.find("telegram", "sendMessage")) == 3)
        h.idle()
    assert len(h.platform.find("telegram", "sendMessage")) == 3  # max_attempts, then given up
    [record] = [r for r in caplog.records if "could not be sent" in r.getMessage()]
    assert "chat 42" in record.getMessage() and f"update {update['update_id']}" in record.getMessage()


def test_telegram_5xx_then_success(h: Harness) -> None:
    h.platform.fail_telegram("sendMessage", (500, {"ok": False, "error_code": 500, "description": "oops"}))
    h.telegram(tg_update())
    wait_for(lambda: len(h.platform.find("telegram", "sendMessage")) == 2)
    h.idle()
    assert len(h.platform.find("telegram", "sendMessage")) == 2


def test_telegram_group_answers_only_when_mentioned_or_replied_to(h: Harness) -> None:
    h.telegram(tg_update("chuyện riêng của nhóm", chat="supergroup"))
    h.telegram(tg_update(None, chat="supergroup", sticker={"file_id": "s"}))
    h.idle()
    assert h.platform.find("telegram", "sendMessage") == []
    text = "@KetLuanBot Kết luận 221 nói gì?"
    h.telegram(tg_update(text, chat="supergroup", entities=[{"type": "mention", "offset": 0, "length": 11}]))
    h.telegram(tg_update("Còn trường học?", chat="supergroup", reply_to_message={"from": {"id": 999}}))
    wait_for(lambda: len(h.platform.find("telegram", "sendMessage")) == 2)
    h.idle()
    sent = h.platform.find("telegram", "sendMessage")
    assert all(c.body["reply_to_message_id"] == 77 and c.body["chat_id"] == -1001 for c in sent)
    assert sorted(q for q, _ in h.service.calls) == ["Còn trường học?", "Kết luận 221 nói gì?"]
    # one conversation per group chat
    assert len({cid for _, cid in h.service.calls}) == 1


def test_telegram_commands(h: Harness) -> None:
    h.telegram(tg_update("/start"))
    wait_for(lambda: h.platform.find("telegram", "sendMessage"))
    h.telegram(tg_update("/new"))
    wait_for(lambda: len(h.platform.find("telegram", "sendMessage")) == 2)
    start, new = [c.body["text"] for c in h.platform.find("telegram", "sendMessage")]
    assert "Ví dụ câu hỏi" in start and "cuộc trò chuyện mới" in new


# --- Zalo --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("sign", [None, "", "mac=" + "0" * 64, "wrong"])
def test_zalo_wrong_or_missing_signature_is_401_and_does_nothing(h: Harness, sign: str | None) -> None:
    _error(h.zalo(zalo_event(), sign=sign), 401, "unauthorized")
    h.idle()
    assert h.platform.find("zalo") == [] and h.service.calls == []


def test_zalo_signature_over_a_tampered_body_is_401(h: Harness) -> None:
    event = zalo_event()
    good = signature(ZALO_APP, json.dumps(event).encode(), event["timestamp"], ZALO_SECRET)
    tampered = json.dumps({**event, "sender": {"id": "u-evil"}}).encode()
    r = httpx.post(h.base + "/webhooks/zalo", content=tampered, headers={"X-ZEvent-Signature": good})
    _error(r, 401, "unauthorized")


def test_zalo_text_is_acknowledged_within_2_seconds_and_answered(h: Harness) -> None:
    # Zalo wants the webhook answered within 2 s: it is answered before the answer exists at all
    h.service.hold.clear()
    try:
        assert h.zalo(zalo_event()).status_code == 200
        wait_for(lambda: h.service.waiting == 1)
        assert h.platform.find("zalo") == []
    finally:
        h.service.hold.set()
    [sent] = wait_for(lambda: h.platform.find("zalo"))
    assert sent.headers["access_token"] in h.platform.zalo_valid
    assert sent.body["recipient"] == {"user_id": "u-1"}
    text = sent.body["message"]["text"]
    assert "Trả lời cho <Trạm y tế?> & chi tiết [1] [2]." in text
    assert f"[1] Kết luận 183-KL/TW, mục 3, đoạn 1 <&>: {PUBLIC_URL}/documents/kl183-621b55#" in text


def test_zalo_redelivered_event_is_answered_once(h: Harness) -> None:
    event = zalo_event()
    h.zalo(event)
    h.zalo(event)
    wait_for(lambda: h.platform.find("zalo"))
    h.idle()
    assert len(h.platform.find("zalo")) == 1 and len(h.service.calls) == 1


def test_zalo_non_text_events(h: Harness) -> None:
    for name in ("user_send_image", "user_send_sticker", "user_send_file"):
        assert h.zalo(zalo_event(name, None)).status_code == 200
    assert h.zalo(zalo_event("follow", None)).status_code == 200
    assert h.zalo(zalo_event("user_seen_message", None)).status_code == 200
    wait_for(lambda: len(h.platform.find("zalo")) == 3)
    h.idle()
    texts = [c.body["message"]["text"] for c in h.platform.find("zalo")]
    assert len(texts) == 3 and all("chỉ trả lời câu hỏi dạng văn bản" in t for t in texts)
    assert h.service.calls == []


def test_zalo_long_answer_is_split_at_2000(h: Harness) -> None:
    h.zalo(zalo_event(text="dài"))
    wait_for(lambda: h.platform.find("zalo"))
    h.idle()
    texts = [c.body["message"]["text"] for c in h.platform.find("zalo")]
    assert len(texts) >= 4 and all(len(t) <= 2000 for t in texts)
    assert "Nguồn:" in texts[-1]


def test_zalo_5xx_is_retried(h: Harness) -> None:
    h.platform.zalo_failures.extend([503, 500])
    h.zalo(zalo_event())
    wait_for(lambda: len(h.platform.find("zalo")) == 3)
    h.idle()
    assert len(h.platform.find("zalo")) == 3


def test_zalo_expired_token_is_refreshed_and_the_reply_resent(h: Harness) -> None:
    h.platform.zalo_valid = {"zalo-token-9"}  # every token the app knows is now expired
    h.zalo(zalo_event(user="u-2"))
    wait_for(lambda: [c for c in h.platform.find("zalo") if c.headers["access_token"] == "zalo-token-3"])
    h.idle()
    [refresh] = h.platform.find("oauth")
    assert refresh.body == {
        "app_id": ZALO_APP,
        "grant_type": "refresh_token",
        "refresh_token": "zalo-refresh-1",
    }
    assert refresh.headers["secret_key"] == ZALO_APP_SECRET
    tokens = [c.headers["access_token"] for c in h.platform.find("zalo")]
    assert tokens[-1] == "zalo-token-3" and tokens.count("zalo-token-3") == 1


def test_zalo_and_telegram_conversations_are_per_user_and_chat(h: Harness) -> None:
    h.zalo(zalo_event(text="một", user="u-5"))
    h.zalo(zalo_event(text="hai", user="u-5"))
    h.zalo(zalo_event(text="ba", user="u-6"))
    h.telegram(tg_update("bốn"))
    wait_for(lambda: len(h.service.calls) == 4)
    h.idle()
    by_question = {q: c for q, c in h.service.calls}
    assert by_question["một"] == by_question["hai"]
    assert len({by_question["một"], by_question["ba"], by_question["bốn"]}) == 3


# --- with the real answering core --------------------------------------------------------------------
def test_telegram_with_the_real_chat_service_keeps_one_conversation_per_chat(
    h: Harness, platform: tuple[Platform, str], small_index: tuple[IndexSettings, SearchIndex]
) -> None:
    fake, base = platform  # shared with `h`, whose app is idle now
    index_settings, index = small_index
    plain = make_settings(index_settings)
    settings = Settings(
        plain.index,
        BotSettings(llm_base_url=None, redis_url=None, public_url=PUBLIC_URL),
        plain.api,
        TelegramSettings(
            telegram_bot_token=TG_TOKEN, telegram_webhook_secret=TG_SECRET, telegram_api_base=base
        ),
        ZaloSettings(),
    )
    store = SQLiteStore(":memory:")
    app = create_app(settings, index=index, store=store)
    app.state.bot_options = BotOptions(max_attempts=3, backoff_base=0.01, typing_interval=0.05)
    with run_server(app) as app_base:
        real = Harness(app_base, fake, FakeService(), app)
        for question in ("Kết luận 221-KL/TW yêu cầu gì?", "Còn trường học thì sao?"):
            real.telegram(tg_update(question))
            real.idle()
        sent = fake.find("telegram", "sendMessage")
        assert len(sent) == 2 and all(c.body["text"].strip() for c in sent)
        assert app.state.bots.zalo is None
        conversation = app.state.bots.telegram.conversations.conversation_id("42")
        assert len(store.history(conversation)) == 2


# --- the command line ----------------------------------------------------------------------------------
@pytest.fixture()
def bot_cli(
    h: Harness,
    platform: tuple[Platform, str],
    small_index: tuple[IndexSettings, SearchIndex],
    monkeypatch: pytest.MonkeyPatch,
) -> Platform:
    """The fake platform (reset by `h`), with the environment the bot commands read pointed at it."""
    fake, base = platform
    data_dir = small_index[0].data_dir
    monkeypatch.setenv("KETLUAN_TELEGRAM_BOT_TOKEN", TG_TOKEN)
    monkeypatch.setenv("KETLUAN_TELEGRAM_WEBHOOK_SECRET", TG_SECRET)
    monkeypatch.setenv("KETLUAN_TELEGRAM_API_BASE", base)
    monkeypatch.setenv("KETLUAN_PUBLIC_URL", PUBLIC_URL)
    monkeypatch.setenv("KETLUAN_DATA_DIR", str(data_dir))
    monkeypatch.setenv("KETLUAN_EMBEDDING_MODEL", "hashing-64")
    for name in (
        "KETLUAN_REDIS_URL",
        "KETLUAN_LLM_BASE_URL",
        "KETLUAN_ZALO_ACCESS_TOKEN",
        "KETLUAN_ZALO_REFRESH_TOKEN",
    ):
        monkeypatch.delenv(name, raising=False)
    return fake


def test_cli_set_webhook_registers_the_url_with_the_secret(bot_cli: Platform) -> None:
    from api.cli import main

    fake = bot_cli
    with pytest.raises(SystemExit) as done:
        main(["telegram", "set-webhook"])
    assert done.value.code == 0
    [call] = fake.find("telegram", "setWebhook")
    assert call.body["url"] == PUBLIC_URL + "/webhooks/telegram"
    assert call.body["secret_token"] == TG_SECRET and call.body["allowed_updates"] == ["message"]


def test_cli_poll_answers_updates_with_increasing_offsets(bot_cli: Platform) -> None:
    from api.cli_bots import _poll

    fake = bot_cli
    first, second = tg_update("Kết luận 221-KL/TW yêu cầu gì?"), tg_update("/help")
    fake.updates = [first, second]

    async def run() -> None:
        stop = asyncio.Event()
        task = asyncio.create_task(_poll(Settings.load(), timeout=1, stop=stop))
        while len(fake.find("telegram", "sendMessage")) < 2:
            assert not task.done(), task
            await asyncio.sleep(0.02)
        stop.set()
        await asyncio.wait_for(task, 10)

    asyncio.run(run())
    offsets = [c.body.get("offset") for c in fake.find("telegram", "getUpdates")]
    assert offsets[0] is None and second["update_id"] + 1 in offsets
    texts = [c.body["text"] for c in fake.find("telegram", "sendMessage")]
    assert any("Ví dụ câu hỏi" in t for t in texts) and any("Nguồn:" in t for t in texts)
