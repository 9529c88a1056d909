"""Zalo OA logic against the fake OA API: signatures, event routing, replies by message_id with buttons,
errors in HTTP 200 bodies, token refresh shared by workers."""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import json
import logging
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from bot.channels import Conversations
from bot.reminders import Follows
from bot.state import BotState, RedisState, SQLiteState
from bot.zalo import (
    TOKEN_KEY,
    ZALO_LIMIT,
    ZaloBot,
    ZaloClient,
    ZaloError,
    ZaloTokenExpired,
    buttons,
    format_plain,
    is_fresh,
    parse_event,
    route,
    signature,
    verify_raw,
    verify_signature,
)
from tests.bot.channel_fakes import (
    PUBLIC_URL,
    ZALO_APP,
    ZALO_APP_SECRET,
    FakePlatform,
    FakeService,
    FakeStores,
    directive,
    long_answer,
    zalo_chatnow,
    zalo_event,
    zalo_follow,
    zalo_group_event,
)
from tests.redis_server import RedisServer

SECRET = "oa-secret"


# --- signatures ----------------------------------------------------------------------------------
def signed(data: dict[str, Any]) -> tuple[bytes, str]:
    body = json.dumps(data, ensure_ascii=False).encode()
    return body, signature(ZALO_APP, body, data["timestamp"], SECRET)


def test_signature_is_mac_sha256_of_app_body_timestamp_secret() -> None:
    body = b'{"a":1}'
    assert signature("1", body, "2", "s") == "mac=" + hashlib.sha256(b'1{"a":1}2s').hexdigest()


def test_a_correct_signature_verifies_on_the_raw_body() -> None:
    data = zalo_event()
    body, header = signed(data)
    assert verify_raw(header, body, ZALO_APP, SECRET) == data["timestamp"]
    assert verify_raw(header, body, None, SECRET) == data["timestamp"]  # the app id from the body
    assert verify_signature(header, body, data, ZALO_APP, SECRET)


@pytest.mark.parametrize(
    "tamper", ["header", "body", "timestamp", "secret", "missing", "no secret configured", "other app"]
)
def test_a_wrong_or_missing_signature_fails(tamper: str) -> None:
    data = zalo_event()
    body, header = signed(data)
    secret: str | None = SECRET
    app_id = ZALO_APP
    if tamper == "header":
        header = header[:-1] + ("0" if header[-1] != "0" else "1")
    elif tamper == "body":
        body = body.replace("Trạm".encode(), b"Tram")
    elif tamper == "timestamp":
        body = body.replace(data["timestamp"].encode(), str(int(data["timestamp"]) + 1).encode())
    elif tamper == "secret":
        secret = "guess"
    elif tamper == "missing":
        header = ""
    elif tamper == "no secret configured":
        secret = None
    elif tamper == "other app":
        app_id = "9999"
    assert verify_raw(header, body, app_id, secret) is None


def test_a_deeply_nested_body_is_refused_without_being_parsed() -> None:
    body = b"[" * 20000
    assert verify_raw("mac=" + "0" * 64, body, ZALO_APP, SECRET) is None


@pytest.mark.parametrize(
    ("age_seconds", "fresh"), [(0, True), (290, True), (-290, True), (310, False), (-310, False)]
)
def test_freshness_window(age_seconds: float, fresh: bool) -> None:
    now = 1_718_000_000.0
    assert is_fresh(str(int((now - age_seconds) * 1000)), 300, now) is fresh
    assert not is_fresh("978307200000", 300, now)  # 2001


# --- routing and formatting ----------------------------------------------------------------------
@pytest.mark.parametrize(
    ("event", "expected"),
    [
        (zalo_event("user_send_text", "Trạm y tế?"), "answer"),
        (zalo_event("user_send_text", "  "), "ignore"),
        (zalo_event("user_send_image", None), "text_only"),
        (zalo_event("user_send_sticker", None), "text_only"),
        (zalo_event("user_send_file", None), "text_only"),
        (zalo_follow(), "greet"),
        (zalo_chatnow(), "greet"),
        (zalo_event("user_seen_message", None), "ignore"),
        (zalo_event("oa_send_text", "x"), "ignore"),
        # 4. group chats: never answered, least of all privately
        (zalo_group_event(), "ignore"),
        (zalo_event("user_send_group_image", None), "ignore"),
        (zalo_event("user_send_group_sticker", None), "ignore"),
    ],
)
def test_route(event: dict[str, Any], expected: str) -> None:
    assert route(parse_event(event)) == expected


def test_follow_and_chatnow_name_their_user() -> None:
    assert parse_event(zalo_follow("u-9")).sender_id == "u-9"
    assert parse_event(zalo_chatnow("u-8")).sender_id == "u-8"


def test_plain_reply_has_numbered_source_links_and_splits_at_2000() -> None:
    answer = long_answer(paragraphs=10)
    parts = format_plain(FakeService({"q": answer}).answer("q"), PUBLIC_URL)
    assert len(parts) >= 3 and all(len(p) <= ZALO_LIMIT for p in parts)
    assert parts[0].startswith("Đoạn 1:")
    assert f"[1] Kết luận 183-KL/TW, mục 3, đoạn 1 <&>: {PUBLIC_URL}/documents/kl183-621b55#" in parts[-1]
    body = "\n\n".join(parts)
    positions = [body.index(f"Đoạn {i}:") for i in range(1, 11)]
    assert positions == sorted(positions)


def test_buttons_suggestions_first_then_sources_at_most_five() -> None:
    suggestions = [f"Câu hỏi gợi ý {i}?" for i in range(4)]
    response = FakeService(suggestions=suggestions).answer("q")
    made = buttons(response, PUBLIC_URL)
    assert [b["type"] for b in made] == ["oa.query.show"] * 3 + ["oa.open.url"] * 2
    assert made[0]["payload"] == "Câu hỏi gợi ý 0?"
    assert made[3]["payload"] == {"url": f"{PUBLIC_URL}/documents/kl183-621b55#kl183-621b55.m3.d2"}
    assert all(len(b["title"]) <= 100 for b in made)
    assert [b["type"] for b in buttons(response, "http://127.0.0.1:8000")] == ["oa.query.show"] * 3


# --- the client: sending, errors in 200 bodies, token refresh ---------------------------------------
def zalo_client(platform: FakePlatform, state: BotState | None = None, **kw: Any) -> ZaloClient:
    sleeps: list[float] = []

    async def sleep(s: float) -> None:
        sleeps.append(s)

    options: dict[str, Any] = {
        "access_token": "zalo-token-1",
        "refresh_token": "zalo-refresh-1",
        "app_id": ZALO_APP,
        "app_secret": ZALO_APP_SECRET,
        "api_base": "https://oa.test",
        "oauth_base": "https://oauth.test",
        **kw,
    }
    client = ZaloClient(platform.client(), state=state, sleep=sleep, backoff_base=0.25, **options)
    client.sleeps = sleeps  # type: ignore[attr-defined]
    return client


def test_reply_posts_to_message_cs_with_the_message_id_and_the_token_header() -> None:
    platform = FakePlatform()
    asyncio.run(zalo_client(platform).reply("msg-1", "xin chào"))
    [call] = platform.find("zalo")
    assert call.method == "reply" and call.headers["access_token"] == "zalo-token-1"
    assert call.body == {"recipient": {"message_id": "msg-1"}, "message": {"text": "xin chào"}}


@pytest.mark.parametrize("code", [-216, -220])
def test_an_invalid_or_expired_token_in_a_200_body_is_refreshed_once_and_the_message_resent(
    code: int,
) -> None:
    """3. Zalo reports token errors with HTTP 200; the refreshed pair is kept for every worker."""
    platform, state = FakePlatform(), SQLiteState(":memory:")
    platform.zalo_failures.append({"error": code, "message": "Access token is invalid or expired"})
    platform.zalo_valid.discard("zalo-token-1")
    client = zalo_client(platform, state)
    asyncio.run(client.reply("m1", "một"))
    asyncio.run(client.reply("m2", "hai"))
    [refresh] = platform.find("oauth")
    assert refresh.body == {
        "app_id": ZALO_APP,
        "grant_type": "refresh_token",
        "refresh_token": "zalo-refresh-1",
    }
    assert refresh.headers["secret_key"] == ZALO_APP_SECRET
    assert [c.headers["access_token"] for c in platform.find("zalo")] == [
        "zalo-token-1",
        "zalo-token-3",
        "zalo-token-3",
    ]
    assert json.loads(state.get(TOKEN_KEY) or "{}") == {"access": "zalo-token-3", "refresh": "zalo-refresh-3"}


def test_a_token_still_rejected_after_the_refresh_is_an_error_not_a_loop() -> None:
    platform = FakePlatform()
    platform.zalo_failures.extend(
        [{"error": -216, "message": "invalid"}, {"error": -220, "message": "expired"}]
    )
    with pytest.raises(ZaloTokenExpired):
        asyncio.run(zalo_client(platform).reply("m1", "x"))
    assert len(platform.find("oauth")) == 1 and len(platform.find("zalo")) == 2


def test_rate_limit_in_a_200_body_backs_off_and_retries_a_bounded_number_of_times() -> None:
    """3. -32 is Zalo's rate limit, with HTTP 200."""
    platform = FakePlatform()
    platform.zalo_failures.extend([{"error": -32, "message": "Exceed rate limit"}] * 2)
    client = zalo_client(platform)
    asyncio.run(client.reply("m1", "x"))
    assert len(platform.find("zalo")) == 3 and client.sleeps == [0.25, 0.5]  # type: ignore[attr-defined]
    platform.reset()
    platform.zalo_failures.extend([{"error": -32, "message": "Exceed rate limit"}] * 10)
    with pytest.raises(ZaloError) as info:
        asyncio.run(zalo_client(platform, max_attempts=3).reply("m1", "x"))
    assert info.value.error == -32 and len(platform.find("zalo")) == 3


def test_other_errors_are_not_retried_and_say_what_zalo_said(caplog: pytest.LogCaptureFixture) -> None:
    platform = FakePlatform()
    conversations = Conversations(lambda: FakeService(), FakeStores(), "zalo", key=SECRET)
    bot = ZaloBot(zalo_client(platform), conversations, PUBLIC_URL)
    platform.zalo_failures.append({"error": -201, "message": "Parameters are invalid"})
    with caplog.at_level(logging.ERROR, logger="bot.zalo"):
        asyncio.run(bot.handle_event(zalo_event(msg_id="m-9")))
    assert len(platform.find("zalo")) == 1
    [record] = [r for r in caplog.records if "could not be sent" in r.getMessage()]
    assert (
        "Parameters are invalid (error -201)" in record.getMessage() and "msg_id m-9" in record.getMessage()
    )


def test_5xx_and_429_are_retried_with_backoff() -> None:
    platform = FakePlatform()
    platform.zalo_failures.extend([503, 429, 500])
    client = zalo_client(platform)
    asyncio.run(client.reply("m1", "x"))
    assert len(platform.find("zalo")) == 4 and client.sleeps == [0.25, 0.5, 1.0]  # type: ignore[attr-defined]


def test_without_a_refresh_token_the_error_is_logged_clearly(caplog: pytest.LogCaptureFixture) -> None:
    platform = FakePlatform()
    platform.zalo_valid.clear()
    with caplog.at_level(logging.ERROR, logger="bot.zalo"), pytest.raises(ZaloTokenExpired):
        asyncio.run(zalo_client(platform, refresh_token=None).reply("m1", "x"))
    assert "no refresh token is configured" in caplog.text and "KETLUAN_ZALO_REFRESH_TOKEN" in caplog.text
    assert platform.find("oauth") == []


def test_a_token_another_worker_refreshed_is_used_without_refreshing_again() -> None:
    platform, state = FakePlatform(), SQLiteState(":memory:")
    platform.zalo_valid = {"zalo-token-7"}
    state.put(TOKEN_KEY, json.dumps({"access": "zalo-token-7", "refresh": "zalo-refresh-7"}))
    asyncio.run(zalo_client(platform, state).reply("m1", "x"))
    assert platform.find("oauth") == []
    assert [c.headers["access_token"] for c in platform.find("zalo")] == ["zalo-token-1", "zalo-token-7"]


@pytest.fixture(params=["sqlite", "redis"])
def shared_state_factory(request: pytest.FixtureRequest, tmp_path: Path) -> Any:
    """Makes a separate connection per "worker" to one shared backend, as separate processes would have."""
    if request.param == "sqlite":
        path = tmp_path / "state" / "ketluan.sqlite3"
        return lambda: SQLiteState(path)
    import redis

    server: RedisServer = request.getfixturevalue("redis_server")
    prefix = f"t{time.monotonic_ns()}:"
    return lambda: RedisState(redis.Redis.from_url(server.url, decode_responses=True), prefix)


def test_two_workers_refreshing_at_once_spend_the_refresh_token_once(shared_state_factory: Any) -> None:
    """5. Zalo refresh tokens are single use. Two workers (threads, each with its own event loop, HTTP
    client and state connection) get the rejection at the same moment; the refresh endpoint waits a
    moment for a second caller, which comes only if the lock across workers is missing."""
    platform = FakePlatform()
    platform.zalo_valid.clear()
    both_rejected = threading.Barrier(2, timeout=10)
    second_refresh = threading.Event()

    def on_send(token: str) -> None:
        if token == "zalo-token-1":
            both_rejected.wait()

    def on_refresh() -> None:
        if len(platform.find("oauth")) > 1:
            second_refresh.set()
        else:
            second_refresh.wait(1.0)  # bounded: a second refresh would arrive now if there were no lock

    platform.on_zalo_send, platform.on_refresh = on_send, on_refresh
    errors: list[BaseException] = []

    def worker(n: int) -> None:
        state = shared_state_factory()
        try:
            asyncio.run(zalo_client(platform, state).reply(f"m{n}", f"tin {n}"))
        except BaseException as exc:
            errors.append(exc)
        finally:
            state.close()

    threads = [threading.Thread(target=worker, args=(n,)) for n in (1, 2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert errors == []
    assert len(platform.find("oauth")) == 1
    resent = [
        c.headers["access_token"]
        for c in platform.find("zalo")
        if c.headers["access_token"] != "zalo-token-1"
    ]
    assert resent == ["zalo-token-3", "zalo-token-3"]


# --- the bot ---------------------------------------------------------------------------------------
def zalo_bot(platform: FakePlatform, service: FakeService, state: BotState | None = None) -> ZaloBot:
    state = state or SQLiteState(":memory:")
    conversations = Conversations(lambda: service, FakeStores(), "zalo", key=SECRET)
    return ZaloBot(zalo_client(platform, state), conversations, PUBLIC_URL, follows=Follows(state, 3))


def texts(platform: FakePlatform) -> list[str]:
    return [c.body["message"]["text"] for c in platform.find("zalo")]


def test_every_part_of_an_answer_replies_to_the_users_message() -> None:
    """1. recipient.message_id makes each part a (free) reply; recipient.user_id spends the OA's quota."""
    platform, service = FakePlatform(), FakeService({"dài": long_answer(paragraphs=20)})
    asyncio.run(zalo_bot(platform, service).handle_event(zalo_event(text="dài", msg_id="msg-42")))
    calls = platform.find("zalo")
    assert len(calls) >= 4 and all(len(t) <= ZALO_LIMIT for t in texts(platform))
    assert all(c.body["recipient"] == {"message_id": "msg-42"} for c in calls)
    assert platform.find("zalo", "proactive") == []


def test_text_is_answered_once_even_when_redelivered_with_buttons_on_the_last_part() -> None:
    platform, service = FakePlatform(), FakeService(suggestions=["Còn trường học?"])
    bot = zalo_bot(platform, service)
    asyncio.run(bot.handle_event(zalo_event(msg_id="dup")))
    asyncio.run(bot.handle_event(zalo_event(msg_id="dup")))
    assert len(service.calls) == 1
    [call] = platform.find("zalo")
    message = call.body["message"]
    assert "Trả lời cho <Trạm y tế?>" in message["text"] and f"{PUBLIC_URL}/documents/" in message["text"]
    [suggestion, *sources] = message["attachment"]["payload"]["buttons"]
    assert suggestion == {"title": "Còn trường học?", "type": "oa.query.show", "payload": "Còn trường học?"}
    assert [b["type"] for b in sources] == ["oa.open.url", "oa.open.url"]


def test_group_messages_are_never_answered() -> None:
    platform, service = FakePlatform(), FakeService()
    asyncio.run(zalo_bot(platform, service).handle_event(zalo_group_event("Trạm y tế?")))
    assert platform.calls == [] and service.calls == []


def test_other_user_events_get_the_text_only_note() -> None:
    platform, service = FakePlatform(), FakeService()
    asyncio.run(zalo_bot(platform, service).handle_event(zalo_event("user_send_sticker", None, msg_id="s1")))
    [call] = platform.find("zalo")
    assert call.body["recipient"] == {"message_id": "s1"}
    assert "chỉ trả lời câu hỏi dạng văn bản" in call.body["message"]["text"] and service.calls == []


@pytest.mark.parametrize(("event", "user"), [(zalo_follow("u-9"), "u-9"), (zalo_chatnow("u-8"), "u-8")])
def test_following_or_opening_the_chat_is_greeted(event: dict[str, Any], user: str) -> None:
    platform = FakePlatform()
    bot = zalo_bot(platform, FakeService())
    asyncio.run(bot.handle_event(event))
    asyncio.run(bot.handle_event(event))  # redelivered: greeted once
    [call] = platform.find("zalo")
    assert call.body["recipient"] == {"user_id": user} and "Xin chào" in call.body["message"]["text"]


def test_same_user_keeps_one_conversation_and_new_resets_it() -> None:
    platform, service = FakePlatform(), FakeService()
    bot = zalo_bot(platform, service)
    asyncio.run(bot.handle_event(zalo_event(text="một")))
    asyncio.run(bot.handle_event(zalo_event(text="/new")))
    asyncio.run(bot.handle_event(zalo_event(text="hai")))
    assert service.calls[0][1] == service.calls[1][1] == service.resets[0]
    assert "cuộc trò chuyện mới" in texts(platform)[1]


TASKS = [directive(i, deadline=dt.date(2025, 12, i)) for i in range(1, 4)]


@pytest.mark.parametrize("text", ["/nhiemvu Bộ Nội vụ", "nhiem vu bo noi vu", "Nhiệm vụ BNV"])
def test_tasks_of_an_agency(text: str) -> None:
    platform = FakePlatform()
    asyncio.run(zalo_bot(platform, FakeService(directives=TASKS)).handle_event(zalo_event(text=text)))
    [reply] = texts(platform)
    assert "Nhiệm vụ của Bộ Nội vụ (3 việc)" in reply and "Hạn: 02/12/2025" in reply
    assert f"{PUBLIC_URL}/documents/kl183-621b55#kl183-621b55.m3.d1" in reply


def test_follow_unknown_and_known_agencies() -> None:
    platform, state = FakePlatform(), SQLiteState(":memory:")
    bot = zalo_bot(platform, FakeService(directives=TASKS), state)
    asyncio.run(bot.handle_event(zalo_event(text="/theodoi Bộ Nội")))
    asyncio.run(bot.handle_event(zalo_event(text="theo dõi Bộ Nội vụ")))
    asyncio.run(bot.handle_event(zalo_event(text="/theodoi")))
    unknown, followed, listed = texts(platform)
    assert "Bộ Nội vụ" in unknown and "chưa biết" in unknown
    assert "Đã theo dõi Bộ Nội vụ" in followed and "Bộ Nội vụ" in listed
    assert [(s.channel, s.chat, s.agency) for s in state.subscriptions()] == [("zalo", "u-1", "Bộ Nội vụ")]
