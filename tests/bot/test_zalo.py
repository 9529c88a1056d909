"""Zalo OA logic without a network: signatures, event routing, plain-text replies, token refresh."""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any
from urllib.parse import parse_qs

import httpx
import pytest

from bot.channels import Conversations
from bot.store import ConversationStore
from bot.zalo import (
    TOKEN_NAMESPACE,
    ZALO_LIMIT,
    ZaloBot,
    ZaloClient,
    ZaloError,
    ZaloTokenExpired,
    format_plain,
    parse_event,
    route,
    signature,
    verify_signature,
)
from tests.bot.channel_fakes import PUBLIC_URL, FakeService, FakeStore, long_answer
from tests.bot.test_store import store as shared_store  # noqa: F401  (fixture: SQLite and Redis stores)

APP_ID, SECRET = "4321", "oa-secret"


def event(
    name: str = "user_send_text", text: str | None = "Trạm y tế?", msg_id: str = "m1"
) -> dict[str, Any]:
    message: dict[str, Any] = {"msg_id": msg_id}
    if text is not None:
        message["text"] = text
    return {
        "app_id": APP_ID,
        "event_name": name,
        "timestamp": "1718000000000",
        "sender": {"id": "u-1"},
        "recipient": {"id": "oa-1"},
        "message": message,
    }


# --- signatures ----------------------------------------------------------------------------------
def signed(data: dict[str, Any]) -> tuple[bytes, str]:
    body = json.dumps(data, ensure_ascii=False).encode()
    return body, signature(APP_ID, body, data["timestamp"], SECRET)


def test_signature_is_mac_sha256_of_app_body_timestamp_secret() -> None:
    import hashlib

    body = b'{"a":1}'
    assert signature("1", body, "2", "s") == "mac=" + hashlib.sha256(b'1{"a":1}2s').hexdigest()


def test_a_correct_signature_verifies() -> None:
    data = event()
    body, header = signed(data)
    assert verify_signature(header, body, data, APP_ID, SECRET)
    assert verify_signature(header, body, data, None, SECRET)  # the app id from the body


@pytest.mark.parametrize(
    "tamper",
    ["header", "body", "timestamp", "secret", "missing", "no secret configured", "other app"],
)
def test_a_wrong_or_missing_signature_fails(tamper: str) -> None:
    data = event()
    body, header = signed(data)
    secret: str | None = SECRET
    app_id = APP_ID
    if tamper == "header":
        header = header[:-1] + ("0" if header[-1] != "0" else "1")
    elif tamper == "body":
        body = body.replace("Trạm".encode(), b"Tram")
    elif tamper == "timestamp":
        data = {**data, "timestamp": "1718000000001"}
    elif tamper == "secret":
        secret = "guess"
    elif tamper == "missing":
        header = ""
    elif tamper == "no secret configured":
        secret = None
    elif tamper == "other app":
        app_id = "9999"
    assert not verify_signature(header, body, data, app_id, secret)


# --- routing and formatting ----------------------------------------------------------------------
@pytest.mark.parametrize(
    ("name", "text", "expected"),
    [
        ("user_send_text", "Trạm y tế?", "answer"),
        ("user_send_text", "  ", "ignore"),
        ("user_send_image", None, "text_only"),
        ("user_send_sticker", None, "text_only"),
        ("user_send_file", None, "text_only"),
        ("user_send_audio", None, "text_only"),
        ("follow", None, "ignore"),
        ("user_seen_message", None, "ignore"),
        ("oa_send_text", "x", "ignore"),
    ],
)
def test_route(name: str, text: str | None, expected: str) -> None:
    assert route(parse_event(event(name, text))) == expected


def test_plain_reply_has_numbered_source_links_and_splits_at_2000() -> None:
    answer = long_answer(paragraphs=10)
    parts = format_plain(FakeService({"q": answer}).answer("q"), PUBLIC_URL)
    assert len(parts) >= 3
    assert all(len(p) <= ZALO_LIMIT for p in parts)
    assert parts[0].startswith("Đoạn 1:")
    tail = parts[-1]
    assert (
        f"[1] Kết luận 183-KL/TW, mục 3, đoạn 1 <&>: {PUBLIC_URL}/documents/kl183-621b55#kl183-621b55.m3.d2"
        in tail
    )
    assert "[2] " in tail and "Nguồn:" in tail
    body = "\n\n".join(parts)
    assert [body.index(f"Đoạn {i}:") for i in range(1, 11)] == sorted(
        body.index(f"Đoạn {i}:") for i in range(1, 11)
    )


# --- the client: sending, retries, token refresh -------------------------------------------------
class FakeOa:
    """A MockTransport OA API: accepts only tokens in `valid`; the OAuth endpoint hands out `fresh`."""

    def __init__(
        self, valid: set[str], expired_as: str = "json", oa_failures: list[int] | None = None
    ) -> None:
        self.valid = valid
        self.expired_as = expired_as
        self.oa_failures = list(oa_failures or [])
        self.sent: list[tuple[str, dict[str, Any]]] = []
        self.refreshes: list[tuple[dict[str, list[str]], str | None]] = []

    def handler(self, request: httpx.Request) -> httpx.Response:
        if request.url.path == "/v4/oa/access_token":
            form = parse_qs(request.content.decode())
            self.refreshes.append((form, request.headers.get("secret_key")))
            if form.get("refresh_token") != ["r-1"]:
                return httpx.Response(
                    200, json={"error": -14014, "error_description": "Invalid refresh token"}
                )
            self.valid.add("fresh")
            return httpx.Response(
                200, json={"access_token": "fresh", "refresh_token": "r-2", "expires_in": "90000"}
            )
        assert request.url.path == "/v3.0/oa/message/cs"
        if self.oa_failures:
            return httpx.Response(self.oa_failures.pop(0), text="busy")
        token = request.headers.get("access_token", "")
        if token not in self.valid:
            if self.expired_as == "http":
                return httpx.Response(401, json={"error": -216, "message": "Access token is invalid"})
            return httpx.Response(200, json={"error": -216, "message": "Access token is invalid"})
        self.sent.append((token, json.loads(request.content)))
        return httpx.Response(200, json={"error": 0, "message": "Success", "data": {"message_id": "x"}})


def zalo_client(oa: FakeOa, store: FakeStore | None = None, **kw: Any) -> ZaloClient:
    sleeps: list[float] = []

    async def sleep(s: float) -> None:
        sleeps.append(s)

    http = httpx.AsyncClient(transport=httpx.MockTransport(oa.handler))
    options: dict[str, Any] = {
        "access_token": "old",
        "refresh_token": "r-1",
        "app_id": APP_ID,
        "app_secret": "app-secret",
        "api_base": "https://oa.test",
        "oauth_base": "https://oauth.test",
        **kw,
    }
    client = ZaloClient(http, store=store, sleep=sleep, backoff_base=0.25, **options)
    client.sleeps = sleeps  # type: ignore[attr-defined]
    return client


def test_send_text_posts_to_message_cs_with_the_access_token_header() -> None:
    oa = FakeOa({"old"})
    asyncio.run(zalo_client(oa).send_text("u-1", "xin chào"))
    assert oa.sent == [("old", {"recipient": {"user_id": "u-1"}, "message": {"text": "xin chào"}})]


@pytest.mark.parametrize("expired_as", ["json", "http"])
def test_an_expired_token_is_refreshed_kept_and_the_message_resent(expired_as: str) -> None:
    oa, store = FakeOa(set(), expired_as=expired_as), FakeStore()
    client = zalo_client(oa, store)
    asyncio.run(client.send_text("u-1", "một"))
    asyncio.run(client.send_text("u-1", "hai"))
    assert [t for t, _ in oa.sent] == ["fresh", "fresh"]
    [(form, secret_key)] = oa.refreshes  # refreshed once, then kept
    assert form == {"app_id": [APP_ID], "grant_type": ["refresh_token"], "refresh_token": ["r-1"]}
    assert secret_key == "app-secret"
    assert store.values[(TOKEN_NAMESPACE, "access")] == "fresh"
    assert store.values[(TOKEN_NAMESPACE, "refresh")] == "r-2"


def test_a_token_another_worker_refreshed_is_used_without_refreshing_again() -> None:
    oa, store = FakeOa({"fresh"}), FakeStore()
    store.set_value(TOKEN_NAMESPACE, "access", "fresh")
    asyncio.run(zalo_client(oa, store).send_text("u-1", "x"))
    assert oa.refreshes == [] and [t for t, _ in oa.sent] == ["fresh"]


def test_without_a_refresh_token_the_error_is_logged_clearly(caplog: pytest.LogCaptureFixture) -> None:
    oa = FakeOa(set())
    with caplog.at_level(logging.ERROR, logger="bot.zalo"), pytest.raises(ZaloTokenExpired):
        asyncio.run(zalo_client(oa, refresh_token=None).send_text("u-1", "x"))
    assert "no refresh token is configured" in caplog.text
    assert "KETLUAN_ZALO_REFRESH_TOKEN" in caplog.text
    assert oa.refreshes == []


def test_a_refused_refresh_is_an_error_not_a_loop() -> None:
    oa = FakeOa(set())
    with pytest.raises(ZaloTokenExpired):
        asyncio.run(zalo_client(oa, refresh_token="r-old").send_text("u-1", "x"))
    assert len(oa.refreshes) == 1 and oa.sent == []


def test_5xx_and_429_are_retried_with_backoff() -> None:
    oa = FakeOa({"old"}, oa_failures=[503, 429, 500])
    client = zalo_client(oa)
    asyncio.run(client.send_text("u-1", "x"))
    assert len(oa.sent) == 1
    assert client.sleeps == [0.25, 0.5, 1.0]  # type: ignore[attr-defined]


def test_persistent_5xx_raises_after_the_last_attempt() -> None:
    oa = FakeOa({"old"}, oa_failures=[500] * 10)
    with pytest.raises(ZaloError):
        asyncio.run(zalo_client(oa, max_attempts=3).send_text("u-1", "x"))
    assert oa.oa_failures == [500] * 7


# --- the bot ---------------------------------------------------------------------------------------
def zalo_bot(oa: FakeOa, service: FakeService) -> ZaloBot:
    conversations = Conversations(lambda: service, FakeStore(), "zalo", key=SECRET)
    return ZaloBot(zalo_client(oa), conversations, PUBLIC_URL)


def test_text_is_answered_once_even_when_redelivered() -> None:
    oa, service = FakeOa({"old"}), FakeService()
    bot = zalo_bot(oa, service)
    asyncio.run(bot.handle_event(event(msg_id="dup")))
    asyncio.run(bot.handle_event(event(msg_id="dup")))
    assert len(service.calls) == 1
    [(_, payload)] = oa.sent
    assert payload["recipient"] == {"user_id": "u-1"}
    assert "Trả lời cho <Trạm y tế?>" in payload["message"]["text"]
    assert f"{PUBLIC_URL}/documents/" in payload["message"]["text"]


def test_other_user_events_get_the_text_only_note_and_the_rest_is_ignored() -> None:
    oa, service = FakeOa({"old"}), FakeService()
    bot = zalo_bot(oa, service)
    asyncio.run(bot.handle_event(event("user_send_sticker", None, msg_id="s1")))
    asyncio.run(bot.handle_event(event("follow", None, msg_id="f1")))
    [(_, payload)] = oa.sent
    assert "chỉ trả lời câu hỏi dạng văn bản" in payload["message"]["text"]
    assert service.calls == []


def test_same_user_keeps_one_conversation_and_new_resets_it() -> None:
    oa, service = FakeOa({"old"}), FakeService()
    bot = zalo_bot(oa, service)
    asyncio.run(bot.handle_event(event(text="một", msg_id="1")))
    asyncio.run(bot.handle_event(event(text="/new", msg_id="2")))
    asyncio.run(bot.handle_event(event(text="hai", msg_id="3")))
    assert service.calls[0][1] == service.calls[1][1] == service.resets[0]
    assert "cuộc trò chuyện mới" in oa.sent[1][1]["message"]["text"]


def test_two_workers_share_one_refresh_through_the_store(shared_store: ConversationStore) -> None:  # noqa: F811
    """Zalo refresh tokens are single use: the second worker must take the stored token, not refresh again."""
    oa, store = FakeOa(set()), shared_store
    first, second = zalo_client(oa, store), zalo_client(oa, store)  # type: ignore[arg-type]
    asyncio.run(first.send_text("u-1", "một"))
    asyncio.run(second.send_text("u-2", "hai"))
    assert len(oa.refreshes) == 1
    assert [t for t, _ in oa.sent] == ["fresh", "fresh"]
    assert store.get_value(TOKEN_NAMESPACE, "refresh") == "r-2"
