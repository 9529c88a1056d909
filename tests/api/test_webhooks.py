"""The bot webhooks end to end over real HTTP: the app on loopback posts to fake Telegram and Zalo servers."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import logging
import shutil
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, TypeVar

import httpx
import pytest
from fastapi import FastAPI

from api.app import create_app
from api.settings import Settings
from api.webhooks import BotOptions
from bot.settings import BotSettings, TelegramSettings, ZaloSettings
from bot.state import Subscription
from bot.stores import sqlite_stores
from bot.telegram import ALLOWED_UPDATES
from bot.zalo import TOKEN_KEY, signature
from index.build import build_index
from index.embedding import HashingEmbedder
from index.search import SearchIndex, open_index
from index.settings import IndexSettings
from index.tasks import today
from tests.api.conftest import make_settings, run_server
from tests.bot.channel_fakes import (  # noqa: F401  (the builders the tests below use)
    PUBLIC_URL,
    TG_TOKEN,
    ZALO_APP,
    ZALO_APP_SECRET,
    FakePlatform,
    FakeService,
    directive,
    long_answer,
    tg_anonymous_admin_update,
    tg_command,
    tg_mention,
    tg_topic_update,
    tg_update,
    zalo_chatnow,
    zalo_event,
    zalo_follow,
    zalo_group_event,
)
from tests.conftest import CORPUS

TG_SECRET = "tg-webhook-secret"
ZALO_SECRET = "oa-secret-key"
T = TypeVar("T")
Platform = FakePlatform


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
    fake = FakePlatform()
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
    due = today() + dt.timedelta(days=1)
    service = FakeService(
        {"dài": long_answer(paragraphs=20)}, delay=0.05, directives=[directive(1, deadline=due)]
    )
    app = create_app(
        settings,
        index=index,
        stores=sqlite_stores(":memory:"),
        service_factory=lambda idx, store, llm: service,
    )
    app.state.bot_options = BotOptions(
        max_attempts=3, backoff_base=0.01, backoff_cap=0.05, typing_interval=0.05, reminder_interval=0.05
    )
    with run_server(app) as app_base:
        yield Harness(app_base, fake, service, app)


@pytest.fixture()
def h(harness: Harness) -> Harness:
    harness.idle()
    harness.platform.reset()
    harness.service.calls.clear()
    bots = harness.app.state.bots
    bots.zalo.client._access_token = "zalo-token-1"  # forget what an earlier test refreshed
    bots.zalo.client._refresh_token = "zalo-refresh-1"
    bots.state.put(TOKEN_KEY, "{}")
    return harness


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
    assert sent.body["link_preview_options"] == {"is_disabled": True}
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
    assert all(
        c.body["reply_parameters"]["message_id"] == 77 and c.body["chat_id"] == -1001234567890 for c in sent
    )
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
    event = zalo_event()
    try:
        assert h.zalo(event).status_code == 200
        wait_for(lambda: h.service.waiting == 1)
        assert h.platform.find("zalo") == []
    finally:
        h.service.hold.set()
    [sent] = wait_for(lambda: h.platform.find("zalo"))
    assert sent.headers["access_token"] in h.platform.zalo_valid
    assert sent.body["recipient"] == {"message_id": event["message"]["msg_id"]}
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


# --- what the real platforms do that the first fakes did not -------------------------------------------
def test_zalo_console_probe_without_a_signature_gets_200_and_does_nothing(h: Harness) -> None:
    """2. Saving the webhook URL in the OA console posts an unsigned `{}` and wants 200."""
    r = httpx.post(h.base + "/webhooks/zalo", content=b"{}", headers={"Content-Type": "application/json"})
    assert r.status_code == 200
    h.idle()
    assert h.platform.calls == [] and h.service.calls == []


@pytest.mark.parametrize("sign", [None, "mac=" + "0" * 64])
def test_zalo_events_without_a_good_signature_are_still_refused(h: Harness, sign: str | None) -> None:
    _error(h.zalo(zalo_event(), sign=sign), 401, "unauthorized")
    big_probe = json.dumps({"padding": "x" * 2000}).encode()  # not the console's small probe
    r = httpx.post(h.base + "/webhooks/zalo", content=big_probe)
    _error(r, 401, "unauthorized")


def test_zalo_every_part_of_a_long_answer_is_a_reply_to_the_users_message(h: Harness) -> None:
    """1. recipient.message_id on every part: replies, not proactive messages from the OA's quota."""
    event = zalo_event(text="dài")
    h.zalo(event)
    wait_for(lambda: h.platform.find("zalo"))
    h.idle()
    calls = h.platform.find("zalo")
    assert len(calls) >= 4
    assert all(c.body["recipient"] == {"message_id": event["message"]["msg_id"]} for c in calls)
    assert h.platform.find("zalo", "proactive") == []


def test_zalo_errors_in_a_200_body_refresh_or_back_off(h: Harness) -> None:
    """3. -220 (expired) with HTTP 200 → one refresh, resent; -32 (rate limit) → retried after a pause."""
    h.platform.zalo_failures.extend(
        [
            {"error": -32, "message": "Exceed rate limit"},
            {"error": -220, "message": "Access token has expired"},
        ]
    )
    h.platform.zalo_valid.discard("zalo-token-1")
    h.zalo(zalo_event(user="u-3"))
    wait_for(lambda: len(h.platform.find("zalo")) == 3)
    h.idle()
    assert len(h.platform.find("oauth")) == 1
    assert [c.headers["access_token"] for c in h.platform.find("zalo")] == [
        "zalo-token-1",
        "zalo-token-1",
        "zalo-token-3",
    ]


def test_zalo_group_messages_are_ignored(h: Harness) -> None:
    """4. A group message is acknowledged and never answered, least of all privately."""
    assert h.zalo(zalo_group_event()).status_code == 200
    h.idle()
    assert h.platform.find("zalo") == [] and h.service.calls == []


@pytest.mark.parametrize("event", [zalo_follow, zalo_chatnow])
def test_zalo_greets_who_follows_or_opens_the_chat(h: Harness, event: Callable[[], dict[str, Any]]) -> None:
    data = event()
    h.zalo(data)
    [sent] = wait_for(lambda: h.platform.find("zalo"))
    assert "Xin chào" in sent.body["message"]["text"] and "user_id" in sent.body["recipient"]


def test_zalo_events_older_than_the_window_are_refused_and_dedupe_holds_inside_it(h: Harness) -> None:
    """Issue 14 (10): an event signed with a 2001 timestamp is a replay."""
    _error(h.zalo(zalo_event(timestamp=978307200000)), 401, "unauthorized")
    stale = int((time.time() - 6 * 60) * 1000)
    _error(h.zalo(zalo_event(timestamp=stale)), 401, "unauthorized")
    h.idle()
    assert h.platform.find("zalo") == [] and h.service.calls == []
    fresh = zalo_event(timestamp=int((time.time() - 4 * 60) * 1000))
    assert h.zalo(fresh).status_code == 200 and h.zalo(fresh).status_code == 200
    wait_for(lambda: h.platform.find("zalo"))
    h.idle()
    assert len(h.service.calls) == 1


def test_deeply_nested_bodies_are_a_client_error_never_a_500(
    h: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    """Issue 14 (9): 20,000 "[" with a bogus signature: 401 before any parsing; with the right Telegram
    secret: 400. No traceback either way."""
    nested = b"[" * 20000
    base = h.base
    with caplog.at_level(logging.ERROR):
        z = httpx.post(
            base + "/webhooks/zalo", content=nested, headers={"X-ZEvent-Signature": "mac=" + "1" * 64}
        )
        t = httpx.post(
            base + "/webhooks/telegram",
            content=nested,
            headers={"X-Telegram-Bot-Api-Secret-Token": TG_SECRET},
        )
        probe = httpx.post(base + "/webhooks/zalo", content=b"[" * 1000)
    _error(z, 401, "unauthorized")
    _error(t, 400, "invalid_json")
    _error(probe, 401, "unauthorized")
    assert "Traceback" not in caplog.text and "RecursionError" not in caplog.text


def test_telegram_lone_surrogate_gets_the_bad_question_note(h: Harness) -> None:
    """Issue 14 (12)."""
    body = tg_update("PLACEHOLDER")
    raw = json.dumps(body).replace("PLACEHOLDER", "Tr\\ud800m y t\\u1ebf?").encode()
    r = httpx.post(h.base + "/webhooks/telegram", content=raw,
                   headers={"X-Telegram-Bot-Api-Secret-Token": TG_SECRET, "Content-Type": "application/json"})  # fmt: skip
    assert r.status_code == 200
    [sent] = wait_for(lambda: h.platform.find("telegram", "sendMessage"))
    assert "chưa hiểu câu hỏi" in sent.body["text"] and "sự cố" not in sent.body["text"]


def test_telegram_forum_topic_replies_stay_in_the_topic(h: Harness) -> None:
    """6."""
    h.platform.topics.add((-1001234567890, 5))
    h.telegram(tg_topic_update("/hoi@KetLuanBot dài", thread_id=5))
    wait_for(lambda: len(h.platform.find("telegram", "sendMessage")) >= 3)
    h.idle()
    parts = h.platform.find("telegram", "sendMessage")
    assert all(c.body.get("message_thread_id") == 5 for c in parts)
    assert all(c.body.get("message_thread_id") == 5 for c in h.platform.find("telegram", "sendChatAction"))


def test_telegram_anonymous_admin_and_privacy_mode_command(h: Harness) -> None:
    """7 and 8: an anonymous admin's "/hoi@KetLuanBot …" is answered."""
    h.telegram(tg_anonymous_admin_update("/hoi@KetLuanBot Trạm y tế cấp xã?"))
    [sent] = wait_for(lambda: h.platform.find("telegram", "sendMessage"))
    assert h.service.calls[0][0] == "Trạm y tế cấp xã?" and sent.body["chat_id"] == -1001234567890


def test_reminders_go_out_from_the_running_service_once(h: Harness) -> None:
    state = h.app.state.bots.state
    state.subscribe(Subscription("telegram", "42", "Bộ Nội vụ"))
    try:
        [sent] = wait_for(lambda: h.platform.find("telegram", "sendMessage"))
        assert "Nhắc hạn nhiệm vụ của Bộ Nội vụ" in sent.body["text"] and "còn 1 ngày" in sent.body["text"]
        wait_for(lambda: len(state.subscriptions()) == 1)  # let a few more ticks pass …
        time_after = time.monotonic() + 0.3
        wait_for(lambda: time.monotonic() > time_after or None)
        assert len(h.platform.find("telegram", "sendMessage")) == 1  # … sent once
    finally:
        state.unsubscribe("telegram", "42")


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
    stores = sqlite_stores(":memory:")
    app = create_app(settings, index=index, stores=stores)
    app.state.bot_options = BotOptions(max_attempts=3, backoff_base=0.01, typing_interval=0.05)
    with run_server(app) as app_base:
        real = Harness(app_base, fake, FakeService(), app)
        for question in ("Kết luận 221-KL/TW yêu cầu gì?", "Còn trường học thì sao?"):
            real.telegram(tg_update(question))
            real.idle()
        sent = fake.find("telegram", "sendMessage")
        assert len(sent) == 2 and all(c.body["text"].strip() for c in sent)
        assert app.state.bots.zalo is None
        # Zalo not configured: a hostile body is still refused before it is parsed (issue 14, 9)
        hostile = httpx.post(
            app_base + "/webhooks/zalo", content=b"[" * 20000, headers={"X-ZEvent-Signature": "mac=1"}
        )
        _error(hostile, 401, "unauthorized")
        conversation = app.state.bots.telegram.conversations.conversation_id("42")
        assert len(stores.conversations.history(conversation)) == 2


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
    assert call.body["secret_token"] == TG_SECRET and call.body["allowed_updates"] == ALLOWED_UPDATES
    assert "callback_query" in call.body["allowed_updates"]
    [menu] = fake.find("telegram", "setMyCommands")  # the fake refuses invalid names and descriptions
    assert {"command": "nhiemvu", "description": "Nhiệm vụ và thời hạn của một cơ quan"} in menu.body[
        "commands"
    ]


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
    [help_text] = [t for t in texts if "Ví dụ câu hỏi" in t]
    [answer] = [c.body for c in fake.find("telegram", "sendMessage") if c.body["text"] != help_text]
    # answered: URL buttons for its sources; refused: buttons for the questions the corpus can answer
    assert answer["text"].strip() and answer["reply_markup"]["inline_keyboard"]


@pytest.mark.parametrize(
    ("public_url", "warned"), [(None, True), ("http://192.168.1.5:8000", True), (PUBLIC_URL, False)]
)
def test_cli_poll_warns_when_links_will_not_open_on_a_phone(
    bot_cli: Platform, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
    public_url: str | None, warned: bool,
) -> None:  # fmt: skip
    import api.cli_bots
    from api.cli import main

    async def no_polling(*args: Any, **kw: Any) -> None:
        return None

    monkeypatch.setattr(api.cli_bots, "_poll", no_polling)
    if public_url is None:
        monkeypatch.delenv("KETLUAN_PUBLIC_URL")  # the default, http://127.0.0.1:8000
    else:
        monkeypatch.setenv("KETLUAN_PUBLIC_URL", public_url)
    with pytest.raises(SystemExit):
        main(["telegram", "poll"])
    assert ("will not open on a phone" in capsys.readouterr().err) is warned
