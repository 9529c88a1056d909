"""Telegram logic without a network: who gets answered, HTML replies and splitting, the retrying client."""

from __future__ import annotations

import asyncio
import json
import logging
import re
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from bot.channels import Conversations, split_text
from bot.telegram import (
    TELEGRAM_LIMIT,
    Action,
    BotIdentity,
    TelegramBot,
    TelegramClient,
    TelegramError,
    decide,
    format_html,
    parse_update,
)
from tests.bot.channel_fakes import PUBLIC_URL, FakeService, FakeStore, citation, long_answer

ME = BotIdentity(id=999, username="KetLuanBot")
Handler = Callable[[httpx.Request], httpx.Response]


def update(
    text: str | None, *, chat_type: str = "private", update_id: int = 1, **message: Any
) -> dict[str, Any]:
    msg: dict[str, Any] = {
        "message_id": 10,
        "chat": {"id": -100 if chat_type != "private" else 42, "type": chat_type},
        "from": {"id": 42, "is_bot": False, "first_name": "An"},
        **message,
    }
    if text is not None:
        msg["text"] = text
    return {"update_id": update_id, "message": msg}


def mention(text: str, name: str = "@KetLuanBot") -> dict[str, Any]:
    offset = len(text[: text.index(name)].encode("utf-16-le")) // 2
    return update(
        text, chat_type="supergroup", entities=[{"type": "mention", "offset": offset, "length": len(name)}]
    )


def action(u: dict[str, Any], me: BotIdentity | None = ME) -> Action | None:
    message = parse_update(u)
    assert message is not None
    return decide(message, me)


# --- who gets answered ---------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("u", "expected"),
    [
        (update("Kết luận 183 nói gì?"), Action("ask", "Kết luận 183 nói gì?")),
        (update("/start"), Action("command", "start")),
        (update("/help"), Action("command", "help")),
        (update("/new"), Action("command", "new")),
        (update("/lenhla"), Action("command", "help")),
        (update(None, sticker={"file_id": "x"}), Action("text_only")),
        (update("câu hỏi", chat_type="group"), None),
        (update("/help", chat_type="group"), Action("command", "help")),
        (update("/help@OtherBot", chat_type="group"), None),
        (update("/new@KetLuanBot", chat_type="supergroup"), Action("command", "new")),
        (update(None, chat_type="group", photo=[{"file_id": "x"}]), None),
        (mention("@KetLuanBot Kết luận 221 nói gì?"), Action("ask", "Kết luận 221 nói gì?")),
        (mention("🙂 hỏi @ketluanbot về trạm y tế", "@ketluanbot"), Action("ask", "🙂 hỏi về trạm y tế")),
        (mention("@KetLuanBot"), Action("command", "help")),
        (mention("@SomeoneElse câu hỏi", "@SomeoneElse"), None),
        (
            update("còn trường học?", chat_type="group", reply_to_message={"from": {"id": 999}}),
            Action("ask", "còn trường học?"),
        ),
        (update("còn trường học?", chat_type="group", reply_to_message={"from": {"id": 7}}), None),
        (update("xin chào", **{"from": {"id": 5, "is_bot": True}}), None),
    ],
)
def test_decide(u: dict[str, Any], expected: Action | None) -> None:
    assert action(u) == expected


def test_edits_and_channel_posts_are_not_messages() -> None:
    assert parse_update({"update_id": 1, "edited_message": update("x")["message"]}) is None
    assert parse_update({"update_id": 1, "channel_post": {"text": "x"}}) is None
    assert parse_update({"update_id": 1, "message": {"text": "no chat"}}) is None


# --- formatting and splitting --------------------------------------------------------------------
def test_reply_is_escaped_html_with_numbered_absolute_source_links() -> None:
    service = FakeService()
    response = service.answer("<script>alert(1)</script>")
    [text] = format_html(response, PUBLIC_URL + "/")
    assert "<script>" not in text
    assert "Trả lời cho &lt;&lt;script&gt;alert(1)&lt;/script&gt;&gt; &amp; chi tiết [1] [2]." in text
    assert f'[1] <a href="{PUBLIC_URL}/documents/kl183-621b55#kl183-621b55.m3.d2">' in text
    assert f'[2] <a href="{PUBLIC_URL}/documents/kl183-621b55#kl183-621b55.m4.d1">' in text
    assert "mục 3, đoạn 1 &lt;&amp;&gt;</a>" in text
    assert text.index("[1] <a") < text.index("[2] <a")
    # every tag is one we made: the only markup Telegram will see
    assert set(re.findall(r"</?([a-z]+)", text)) == {"a", "b"}


def test_long_answers_split_below_4096_on_paragraph_boundaries() -> None:
    answer = long_answer(paragraphs=20)
    response = FakeService({"q": answer}).answer("q")
    parts = format_html(response, PUBLIC_URL)
    assert len(parts) >= 3
    assert all(len(p.encode("utf-16-le")) // 2 < 4096 for p in parts)
    paragraphs = [p for part in parts for p in part.split("\n\n")]
    expected = [p.strip() for p in answer.split("\n\n")]
    assert paragraphs[: len(expected)] == expected  # whole paragraphs, in order, none cut
    assert parts[-1].rstrip().endswith("</a>")


def test_a_single_huge_paragraph_is_cut_at_sentences_and_escaping_counts() -> None:
    huge = "<b>&</b> " * 1200 + "Câu cuối."  # 9 chars raw, 26 escaped each
    parts = format_html(FakeService({"q": huge}).answer("q"), PUBLIC_URL)
    assert all(len(p) <= TELEGRAM_LIMIT for p in parts)
    text = " ".join(parts)
    assert text.count("&lt;b&gt;&amp;&lt;/b&gt;") == 1200


@pytest.mark.parametrize("limit", [50, 200, 2000])
def test_split_text_keeps_every_word_and_fits(limit: int) -> None:
    text = long_answer(paragraphs=5) + "\n\n" + "x" * 130
    pieces = split_text(text, limit)
    assert all(0 < len(p) <= limit for p in pieces)
    assert "".join(pieces).replace(" ", "").replace("\n", "") == text.replace(" ", "").replace("\n", "")


# --- the client's retry policy -------------------------------------------------------------------
class Recorder:
    def __init__(self, responses: list[httpx.Response | Exception]) -> None:
        self.responses = responses
        self.requests: list[httpx.Request] = []
        self.sleeps: list[float] = []

    def handler(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        item = self.responses.pop(0) if self.responses else ok({"message_id": 1})
        if isinstance(item, Exception):
            raise item
        return item

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)

    def client(self, **kw: Any) -> TelegramClient:
        http = httpx.AsyncClient(transport=httpx.MockTransport(self.handler))
        return TelegramClient(http, "123:SECRET", "https://tg.test", sleep=self.sleep, backoff_base=0.5, **kw)


def ok(result: Any) -> httpx.Response:
    return httpx.Response(200, json={"ok": True, "result": result})


def fail(status: int, retry_after: int | None = None) -> httpx.Response:
    body: dict[str, Any] = {"ok": False, "error_code": status, "description": f"error {status}"}
    if retry_after is not None:
        body["parameters"] = {"retry_after": retry_after}
    return httpx.Response(status, json=body)


def test_429_waits_retry_after_then_succeeds() -> None:
    rec = Recorder([fail(429, retry_after=3), ok({"message_id": 5})])
    result = asyncio.run(rec.client().send_message(42, "xin chào"))
    assert result == {"message_id": 5}
    assert rec.sleeps == [3.0]
    assert len(rec.requests) == 2
    body = json.loads(rec.requests[0].content)
    assert body == {"chat_id": 42, "text": "xin chào", "parse_mode": "HTML", "disable_web_page_preview": True}
    assert rec.requests[0].url.path == "/bot123:SECRET/sendMessage"


def test_5xx_backs_off_exponentially() -> None:
    rec = Recorder([fail(502), httpx.Response(500, text="<html>oops</html>"), fail(503), ok(True)])
    assert asyncio.run(rec.client().send_chat_action(42)) is True
    assert rec.sleeps == [0.5, 1.0, 2.0]


def test_network_errors_are_retried_and_never_show_the_token() -> None:
    rec = Recorder([httpx.ConnectError("boom"), httpx.ReadTimeout("slow")] * 3)
    with pytest.raises(TelegramError) as info:
        asyncio.run(rec.client(max_attempts=3).send_message(42, "x"))
    assert len(rec.requests) == 3
    assert "SECRET" not in str(info.value)


@pytest.mark.parametrize("status", [400, 403])
def test_client_errors_are_not_retried(status: int) -> None:
    rec = Recorder([fail(status)])
    with pytest.raises(TelegramError) as info:
        asyncio.run(rec.client().send_message(42, "x"))
    assert info.value.status == status
    assert len(rec.requests) == 1 and rec.sleeps == []


def test_a_retry_after_too_long_gives_up_at_once() -> None:
    rec = Recorder([fail(429, retry_after=3600)])
    with pytest.raises(TelegramError):
        asyncio.run(rec.client(max_retry_after=60).send_message(42, "x"))
    assert rec.sleeps == []


# --- the bot: one update in, replies out -----------------------------------------------------------
class FakeApi:
    """A MockTransport Bot API: records calls; `fail_send` makes sendMessage answer 400."""

    def __init__(self, fail_send: bool = False) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.fail_send = fail_send

    def handler(self, request: httpx.Request) -> httpx.Response:
        method = request.url.path.rsplit("/", 1)[-1]
        self.calls.append((method, json.loads(request.content or b"{}")))
        if method == "getMe":
            return ok({"id": 999, "is_bot": True, "username": "KetLuanBot"})
        if method == "sendMessage" and self.fail_send:
            return fail(400)
        return ok(True)

    def sent(self) -> list[dict[str, Any]]:
        return [body for method, body in self.calls if method == "sendMessage"]


def make_bot(api: FakeApi, service: FakeService, store: FakeStore | None = None) -> TelegramBot:
    http = httpx.AsyncClient(transport=httpx.MockTransport(api.handler))
    client = TelegramClient(http, "123:SECRET", "https://tg.test", backoff_base=0.001)
    conversations = Conversations(lambda: service, store or FakeStore(), "telegram", key="k")
    return TelegramBot(client, conversations, PUBLIC_URL, typing_interval=0.01)


def test_private_question_shows_typing_then_answers_in_the_chat_conversation() -> None:
    api, service, store = FakeApi(), FakeService(delay=0.05), FakeStore()
    bot = make_bot(api, service, store)
    asyncio.run(bot.handle_update(update("Trạm y tế?", update_id=1)))
    asyncio.run(bot.handle_update(update("Còn trường học?", update_id=2)))
    methods = [m for m, _ in api.calls]
    assert methods.index("sendChatAction") < methods.index("sendMessage")
    assert "getMe" not in methods  # private chats need no mention check
    [(q1, c1), (q2, c2)] = service.calls
    assert (q1, q2) == ("Trạm y tế?", "Còn trường học?")
    assert c1 == c2 and c1 is not None and c1 in store.created
    first = api.sent()[0]
    assert first["chat_id"] == 42 and first["parse_mode"] == "HTML" and "reply_to_message_id" not in first


def test_a_redelivered_update_is_answered_once() -> None:
    api, service = FakeApi(), FakeService()
    bot = make_bot(api, service)
    asyncio.run(bot.handle_update(update("Trạm y tế?", update_id=7)))
    asyncio.run(bot.handle_update(update("Trạm y tế?", update_id=7)))
    assert len(service.calls) == 1
    assert len(api.sent()) == 1


def test_group_answers_reply_to_the_question_and_only_when_addressed() -> None:
    api, service = FakeApi(), FakeService()
    bot = make_bot(api, service)
    asyncio.run(bot.handle_update(update("chuyện riêng", chat_type="group", update_id=1)))
    assert api.sent() == [] and service.calls == []
    asyncio.run(bot.handle_update(mention("@KetLuanBot Trạm y tế?") | {"update_id": 2}))
    [sent] = api.sent()
    assert sent["reply_to_message_id"] == 10 and sent["chat_id"] == -100
    assert service.calls[0][0] == "Trạm y tế?"


def test_new_forgets_the_conversation_and_help_lists_examples() -> None:
    api, service = FakeApi(), FakeService()
    bot = make_bot(api, service)
    asyncio.run(bot.handle_update(update("/new", update_id=1)))
    asyncio.run(bot.handle_update(update("/help", update_id=2)))
    assert len(service.resets) == 1
    new, help_text = [s["text"] for s in api.sent()]
    assert "cuộc trò chuyện mới" in new
    assert "Ví dụ câu hỏi" in help_text and "/new" in help_text


def test_answering_failure_sends_an_apology() -> None:
    api, service = FakeApi(), FakeService()
    asyncio.run(make_bot(api, service).handle_update(update("lỗi")))
    [sent] = api.sent()
    assert "Xin lỗi" in sent["text"]


def test_a_message_that_cannot_be_sent_is_logged_with_chat_and_update(
    caplog: pytest.LogCaptureFixture,
) -> None:
    api, service = FakeApi(fail_send=True), FakeService()
    with caplog.at_level(logging.ERROR, logger="bot.telegram"):
        asyncio.run(make_bot(api, service).handle_update(update("Trạm y tế?", update_id=31)))
    [record] = [r for r in caplog.records if "could not be sent" in r.getMessage()]
    assert "chat 42" in record.getMessage() and "update 31" in record.getMessage()


def test_citations_render_in_marker_order() -> None:
    response = FakeService().answer("q").model_copy(update={"citations": [citation(2), citation(1)]})
    [text] = format_html(response, PUBLIC_URL)
    assert text.index("[1] <a") < text.index("[2] <a")
