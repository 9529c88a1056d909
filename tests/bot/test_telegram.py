"""Telegram logic against the fake Bot API: who gets answered, HTML replies and splitting, topics, buttons,
commands, the retrying client."""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import json
import logging
import re
from typing import Any

import httpx
import pytest

from bot.channels import Conversations, split_text
from bot.reminders import Follows
from bot.state import SQLiteState
from bot.telegram import (
    ALLOWED_UPDATES,
    TELEGRAM_LIMIT,
    Action,
    BotIdentity,
    TelegramBot,
    TelegramClient,
    TelegramError,
    command_menu,
    decide,
    format_html,
    parse_update,
)
from tests.bot.channel_fakes import (
    PUBLIC_URL,
    TG_TOKEN,
    FakePlatform,
    FakeService,
    FakeStores,
    citation,
    directive,
    long_answer,
    tg_anonymous_admin_update,
    tg_callback,
    tg_command,
    tg_mention,
    tg_topic_update,
    tg_update,
)

ME = BotIdentity(id=999, username="KetLuanBot")


def action(u: dict[str, Any], me: BotIdentity | None = ME) -> Action | None:
    message = parse_update(u)
    assert message is not None
    return decide(message, me)


# --- who gets answered ---------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("u", "expected"),
    [
        (tg_update("Kết luận 183 nói gì?"), Action("ask", "Kết luận 183 nói gì?")),
        (tg_command("/start"), Action("command", "start")),
        (tg_command("/help"), Action("command", "help")),
        (tg_command("/new"), Action("command", "new")),
        (tg_command("/lenhla"), Action("command", "help")),
        (tg_update(None, sticker={"file_id": "x"}), Action("text_only")),
        (tg_update("câu hỏi", "group"), None),
        (tg_command("/help", "group"), Action("command", "help")),
        (tg_command("/help@OtherBot", "group"), None),
        (tg_command("/new@KetLuanBot", "supergroup"), Action("command", "new")),
        (tg_update(None, "group", photo=[{"file_id": "x"}]), None),
        (tg_mention("@KetLuanBot Kết luận 221 nói gì?"), Action("ask", "Kết luận 221 nói gì?")),
        (tg_mention("🙂 hỏi @ketluanbot về trạm y tế", "@ketluanbot"), Action("ask", "🙂 hỏi về trạm y tế")),
        (tg_mention("@KetLuanBot"), Action("command", "help")),
        (tg_mention("@SomeoneElse câu hỏi", "@SomeoneElse"), None),
        (
            tg_update("còn trường học?", "group", reply_to_message={"from": {"id": 999}}),
            Action("ask", "còn trường học?"),
        ),
        (tg_update("còn trường học?", "group", reply_to_message={"from": {"id": 7}}), None),
        (tg_update("xin chào", **{"from": {"id": 5, "is_bot": True}}), None),
        # 8. privacy mode: a command addressed to the bot always reaches it, and asks the question
        (tg_command("/hoi@KetLuanBot Trạm y tế thế nào?", "supergroup"), Action("ask", "Trạm y tế thế nào?")),
        (tg_command("/hoi Trạm y tế thế nào?", "supergroup"), Action("ask", "Trạm y tế thế nào?")),
        (tg_command("/hoi@OtherBot Trạm y tế?", "supergroup"), None),
        (tg_command("/hoi@KetLuanBot", "supergroup"), Action("command", "help")),
        (tg_command("/hoi Trạm y tế?"), Action("ask", "Trạm y tế?")),
        # deep links: t.me/<bot>?start=<payload> arrives as "/start <payload>"
        (tg_command("/start kl183"), Action("start", "kl183")),
        # tasks and reminders, with and without the slash
        (tg_command("/nhiemvu Bộ Nội vụ"), Action("tasks", "Bộ Nội vụ")),
        (tg_command("/nhiemvu@KetLuanBot BNV", "supergroup"), Action("tasks", "BNV")),
        (tg_update("nhiem vu bo noi vu"), Action("tasks", "bo noi vu")),
        (tg_update("Nhiệm vụ Bộ Nội vụ"), Action("tasks", "Bộ Nội vụ")),
        (
            tg_update("nhiệm vụ của chính quyền xã là gì?"),
            Action("ask", "nhiệm vụ của chính quyền xã là gì?"),
        ),
        (tg_command("/theodoi Bộ Nội vụ"), Action("follow", "Bộ Nội vụ")),
        (tg_update("theo dõi Bộ Nội vụ"), Action("follow", "Bộ Nội vụ")),
        (tg_command("/botheodoi"), Action("unfollow", "")),
    ],
)
def test_decide(u: dict[str, Any], expected: Action | None) -> None:
    assert action(u) == expected


def test_anonymous_group_admins_are_answered_but_other_bots_are_not() -> None:
    """7. GroupAnonymousBot has is_bot true; sender_chat (the group itself) says it is an admin."""
    assert action(tg_anonymous_admin_update("/hoi@KetLuanBot Trạm y tế?")) == Action("ask", "Trạm y tế?")
    other_bot = tg_update(
        "/hoi@KetLuanBot x", "supergroup", **{"from": {"id": 5, "is_bot": True, "first_name": "B"}}
    )
    assert action(other_bot) is None
    channel_forward = tg_anonymous_admin_update("/hoi@KetLuanBot x")
    channel_forward["message"]["sender_chat"] = {"id": -100999, "type": "channel", "title": "Kênh"}
    assert action(channel_forward) is None  # posted on behalf of another chat: not an admin of this one


def test_edits_and_channel_posts_are_not_messages() -> None:
    assert parse_update({"update_id": 1, "edited_message": tg_update("x")["message"]}) is None
    assert parse_update({"update_id": 1, "channel_post": {"text": "x"}}) is None
    assert parse_update({"update_id": 1, "message": {"text": "no chat"}}) is None


def test_only_topic_messages_carry_a_thread() -> None:
    topic = parse_update(tg_topic_update("x", thread_id=9))
    reply_thread = parse_update(tg_update("x", "supergroup", message_thread_id=9))  # a reply thread, no topic
    assert topic is not None and topic.thread_id == 9
    assert reply_thread is not None and reply_thread.thread_id is None


# --- formatting and splitting --------------------------------------------------------------------
def test_reply_is_escaped_html_with_numbered_absolute_source_links() -> None:
    response = FakeService().answer("<script>alert(1)</script>")
    [text] = format_html(response, PUBLIC_URL + "/")
    assert "<script>" not in text
    assert "Trả lời cho &lt;&lt;script&gt;alert(1)&lt;/script&gt;&gt; &amp; chi tiết [1] [2]." in text
    assert f'[1] <a href="{PUBLIC_URL}/documents/kl183-621b55#kl183-621b55.m3.d2">' in text
    assert f'[2] <a href="{PUBLIC_URL}/documents/kl183-621b55#kl183-621b55.m4.d1">' in text
    assert "mục 3, đoạn 1 &lt;&amp;&gt;</a>" in text
    assert text.index("[1] <a") < text.index("[2] <a")
    assert set(re.findall(r"</?([a-z]+)", text)) == {"a", "b"}


def test_long_answers_split_below_4096_on_paragraph_boundaries() -> None:
    answer = long_answer(paragraphs=20)
    parts = format_html(FakeService({"q": answer}).answer("q"), PUBLIC_URL)
    assert len(parts) >= 3
    assert all(len(p.encode("utf-16-le")) // 2 < 4096 for p in parts)
    paragraphs = [p for part in parts for p in part.split("\n\n")]
    expected = [p.strip() for p in answer.split("\n\n")]
    assert paragraphs[: len(expected)] == expected
    assert parts[-1].rstrip().endswith("</a>")


def test_a_single_huge_paragraph_is_cut_at_sentences_and_escaping_counts() -> None:
    huge = "<b>&</b> " * 1200 + "Câu cuối."
    parts = format_html(FakeService({"q": huge}).answer("q"), PUBLIC_URL)
    assert all(len(p) <= TELEGRAM_LIMIT for p in parts)
    assert " ".join(parts).count("&lt;b&gt;&amp;&lt;/b&gt;") == 1200


@pytest.mark.parametrize("limit", [50, 200, 2000])
def test_split_text_keeps_every_word_and_fits(limit: int) -> None:
    text = long_answer(paragraphs=5) + "\n\n" + "x" * 130
    pieces = split_text(text, limit)
    assert all(0 < len(p) <= limit for p in pieces)
    assert "".join(pieces).replace(" ", "").replace("\n", "") == text.replace(" ", "").replace("\n", "")


def test_the_command_menu_is_vietnamese_and_valid() -> None:
    menu = command_menu()
    names = [c["command"] for c in menu]
    assert {"hoi", "nhiemvu", "theodoi", "botheodoi", "new", "help"} <= set(names)
    assert all(re.fullmatch(r"[a-z0-9_]{1,32}", n) and 0 < len(c["description"]) <= 256
               for n, c in zip(names, menu, strict=True))  # fmt: skip


# --- the client's retry policy (through the fake Bot API) ----------------------------------------
def make_client(platform: FakePlatform, sleeps: list[float], **kw: Any) -> TelegramClient:
    async def sleep(seconds: float) -> None:
        sleeps.append(seconds)

    return TelegramClient(platform.client(), TG_TOKEN, "https://tg.test", sleep=sleep, backoff_base=0.5, **kw)


def too_many(retry_after: int) -> tuple[int, dict[str, Any]]:
    return 429, {"ok": False, "error_code": 429, "description": f"Too Many Requests: retry after {retry_after}",
                 "parameters": {"retry_after": retry_after}}  # fmt: skip


def test_429_waits_retry_after_then_succeeds() -> None:
    platform, sleeps = FakePlatform(), []
    platform.fail_telegram("sendMessage", too_many(3))
    result = asyncio.run(make_client(platform, sleeps).send_message(42, "xin chào"))
    assert result["message_id"] >= 500 and sleeps == [3.0]
    first, second = platform.find("telegram", "sendMessage")
    assert first.body == second.body == {
        "chat_id": 42, "text": "xin chào", "parse_mode": "HTML", "link_preview_options": {"is_disabled": True}
    }  # fmt: skip


def test_5xx_backs_off_exponentially() -> None:
    platform, sleeps = FakePlatform(), []
    down = (502, {"ok": False, "error_code": 502, "description": "Bad Gateway"})
    platform.fail_telegram("sendChatAction", down, (500, {}), down)
    assert asyncio.run(make_client(platform, sleeps).send_chat_action(42)) is True
    assert sleeps == [0.5, 1.0, 2.0]


def test_network_errors_are_retried_and_never_show_the_token() -> None:
    requests: list[httpx.Request] = []

    def refuse(request: httpx.Request) -> httpx.Response:
        requests.append(request)
        raise httpx.ConnectError("boom")

    async def no_wait(_: float) -> None:
        return None

    http = httpx.AsyncClient(transport=httpx.MockTransport(refuse))
    client = TelegramClient(http, "123:SECRET", "https://tg.test", sleep=no_wait, max_attempts=3)
    with pytest.raises(TelegramError) as info:
        asyncio.run(client.send_message(42, "x"))
    assert len(requests) == 3 and "SECRET" not in str(info.value)


@pytest.mark.parametrize("status", [400, 403])
def test_client_errors_are_not_retried(status: int) -> None:
    platform, sleeps = FakePlatform(), []
    platform.fail_telegram("sendMessage", (status, {"ok": False, "error_code": status, "description": "no"}))
    with pytest.raises(TelegramError) as info:
        asyncio.run(make_client(platform, sleeps).send_message(42, "x"))
    assert info.value.status == status and sleeps == []
    assert len(platform.find("telegram", "sendMessage")) == 1


def test_a_retry_after_too_long_gives_up_at_once() -> None:
    platform, sleeps = FakePlatform(), []
    platform.fail_telegram("sendMessage", too_many(3600))
    with pytest.raises(TelegramError):
        asyncio.run(make_client(platform, sleeps, max_retry_after=60).send_message(42, "x"))
    assert sleeps == []


# --- the bot: one update in, replies out -----------------------------------------------------------
def make_bot(
    platform: FakePlatform,
    service: FakeService,
    store: FakeStores | None = None,
    *,
    state: SQLiteState | None = None,
    public_url: str = PUBLIC_URL,
) -> TelegramBot:
    client = TelegramClient(platform.client(), TG_TOKEN, "https://tg.test", backoff_base=0.001)
    conversations = Conversations(lambda: service, store or FakeStores(), "telegram", key="k")
    state = state or SQLiteState(":memory:")
    return TelegramBot(client, conversations, public_url, typing_interval=0.01, state=state,
                       follows=Follows(state, 3))  # fmt: skip


def sent(platform: FakePlatform) -> list[dict[str, Any]]:
    return [c.body for c in platform.find("telegram", "sendMessage")]


def test_private_question_shows_typing_then_answers_in_the_chat_conversation() -> None:
    platform, service, store = FakePlatform(), FakeService(delay=0.05), FakeStores()
    bot = make_bot(platform, service, store)
    asyncio.run(bot.handle_update(tg_update("Trạm y tế?", update_id=1)))
    asyncio.run(bot.handle_update(tg_update("Còn trường học?", update_id=2)))
    methods = [c.method for c in platform.calls]
    assert methods.index("sendChatAction") < methods.index("sendMessage")
    assert "getMe" not in methods
    [(q1, c1), (q2, c2)] = service.calls
    assert (q1, q2) == ("Trạm y tế?", "Còn trường học?")
    assert c1 == c2 and c1 is not None and c1 in store.conversations.created
    first = sent(platform)[0]
    assert first["chat_id"] == 42 and first["parse_mode"] == "HTML" and "reply_parameters" not in first


def test_a_redelivered_update_is_answered_once() -> None:
    platform, service = FakePlatform(), FakeService()
    bot = make_bot(platform, service)
    asyncio.run(bot.handle_update(tg_update("Trạm y tế?", update_id=7)))
    asyncio.run(bot.handle_update(tg_update("Trạm y tế?", update_id=7)))
    assert len(service.calls) == 1 and len(sent(platform)) == 1


def test_group_answers_reply_to_the_question_and_only_when_addressed() -> None:
    platform, service = FakePlatform(), FakeService()
    bot = make_bot(platform, service)
    asyncio.run(bot.handle_update(tg_update("chuyện riêng", "group")))
    assert sent(platform) == [] and service.calls == []
    asyncio.run(bot.handle_update(tg_mention("@KetLuanBot Trạm y tế?")))
    [body] = sent(platform)
    assert body["reply_parameters"] == {"message_id": 77, "allow_sending_without_reply": True}
    assert body["chat_id"] == -1001234567890 and service.calls[0][0] == "Trạm y tế?"


def test_forum_topic_every_part_and_the_typing_indicator_stay_in_the_topic() -> None:
    """6. Without message_thread_id the later parts and "typing…" land in General (the fake refuses a
    thread it does not know, so the topic is registered as the real group would have it)."""
    platform, service = FakePlatform(), FakeService({"dài": long_answer(paragraphs=20)}, delay=0.05)
    platform.topics.add((-1001234567890, 5))
    asyncio.run(
        make_bot(platform, service).handle_update(tg_topic_update("/hoi@KetLuanBot dài", thread_id=5))
    )
    parts = sent(platform)
    typing = platform.find("telegram", "sendChatAction")
    assert len(parts) >= 3 and typing
    assert all(p["message_thread_id"] == 5 for p in parts)
    assert all(t.body["message_thread_id"] == 5 for t in typing)
    assert "reply_parameters" in parts[0] and all("reply_parameters" not in p for p in parts[1:])


def test_anonymous_admin_gets_an_answer_through_the_fake() -> None:
    platform, service = FakePlatform(), FakeService()
    asyncio.run(
        make_bot(platform, service).handle_update(tg_anonymous_admin_update("/hoi@KetLuanBot Trạm y tế?"))
    )
    assert service.calls[0][0] == "Trạm y tế?" and len(sent(platform)) == 1


def test_new_forgets_the_conversation_and_help_lists_examples_and_commands() -> None:
    platform, service = FakePlatform(), FakeService()
    bot = make_bot(platform, service)
    asyncio.run(bot.handle_update(tg_command("/new")))
    asyncio.run(bot.handle_update(tg_command("/help")))
    assert len(service.resets) == 1
    new, help_text = [s["text"] for s in sent(platform)]
    assert "cuộc trò chuyện mới" in new
    assert "Ví dụ câu hỏi" in help_text and "/new" in help_text and "/nhiemvu" in help_text


def test_answering_failure_sends_an_apology() -> None:
    platform = FakePlatform()
    asyncio.run(make_bot(platform, FakeService()).handle_update(tg_update("lỗi")))
    [body] = sent(platform)
    assert "Xin lỗi" in body["text"]


def test_a_lone_surrogate_gets_the_bad_question_note() -> None:
    """Issue 14 (12): JSON "\\ud800" decodes to a lone surrogate; it is a bad question, not a system error."""
    update = json.loads('{"update_id": 5, "message": {"message_id": 1, "date": 1, "chat": {"id": 42, '
                        '"type": "private"}, "from": {"id": 42, "is_bot": false, "first_name": "A"}, '
                        '"text": "Tr\\ud800m y t\\u1ebf?"}}')  # fmt: skip
    platform = FakePlatform()
    asyncio.run(make_bot(platform, FakeService()).handle_update(update))
    [body] = sent(platform)
    assert "chưa hiểu câu hỏi" in body["text"] and "sự cố" not in body["text"]


def test_a_message_that_cannot_be_sent_is_logged_with_chat_and_update(
    caplog: pytest.LogCaptureFixture,
) -> None:
    platform = FakePlatform()
    platform.fail_telegram(
        "sendMessage", (400, {"ok": False, "error_code": 400, "description": "Bad Request"})
    )
    with caplog.at_level(logging.ERROR, logger="bot.telegram"):
        asyncio.run(make_bot(platform, FakeService()).handle_update(tg_update("Trạm y tế?", update_id=31)))
    [record] = [r for r in caplog.records if "could not be sent" in r.getMessage()]
    assert "chat 42" in record.getMessage() and "update 31" in record.getMessage()


def test_citations_render_in_marker_order() -> None:
    response = FakeService().answer("q").model_copy(update={"citations": [citation(2), citation(1)]})
    [text] = format_html(response, PUBLIC_URL)
    assert text.index("[1] <a") < text.index("[2] <a")


# --- buttons ---------------------------------------------------------------------------------------------
LONG_SUGGESTION = "Kết luận 183-KL/TW giao Bộ Nội vụ những nhiệm vụ gì về sắp xếp đơn vị hành chính cấp xã?"


def test_the_last_part_carries_source_and_suggestion_buttons_and_a_press_asks_the_question() -> None:
    platform = FakePlatform()
    service = FakeService(
        {"dài": long_answer(paragraphs=20)}, suggestions=[LONG_SUGGESTION, "Còn trường học?"]
    )
    bot = make_bot(platform, service)
    asyncio.run(bot.handle_update(tg_update("dài")))
    parts = sent(platform)
    assert all("reply_markup" not in p for p in parts[:-1])
    rows = parts[-1]["reply_markup"]["inline_keyboard"]
    urls = [b["url"] for row in rows for b in row if "url" in b]
    data = [b["callback_data"] for row in rows for b in row if "callback_data" in b]
    assert urls[0] == f"{PUBLIC_URL}/documents/kl183-621b55#kl183-621b55.m3.d2" and len(urls) == 2
    assert len(data) == 2 and all(len(d.encode()) <= 64 for d in data)  # the fake refuses longer ones

    platform.reset()
    asyncio.run(bot.handle_update(tg_callback(data[0])))
    [answered] = platform.find("telegram", "answerCallbackQuery")
    assert "text" not in answered.body  # no alert: the spinner just stops
    assert service.calls[-1][0] == LONG_SUGGESTION
    assert sent(platform)[0]["chat_id"] == 42


def test_an_unknown_callback_is_answered_with_a_note_and_asks_nothing() -> None:
    platform, service = FakePlatform(), FakeService()
    asyncio.run(make_bot(platform, service).handle_update(tg_callback("q:0000")))
    [answered] = platform.find("telegram", "answerCallbackQuery")
    assert "gõ lại" in answered.body["text"] and service.calls == [] and sent(platform) == []


def test_no_url_buttons_for_links_a_phone_cannot_open() -> None:
    platform = FakePlatform()
    bot = make_bot(platform, FakeService(), public_url="http://127.0.0.1:8000")
    asyncio.run(bot.handle_update(tg_update("Trạm y tế?")))
    [body] = sent(platform)
    assert "reply_markup" not in body  # Telegram refuses such URL buttons, and the whole message with them


def test_polling_and_webhooks_ask_for_callback_queries() -> None:
    assert "callback_query" in ALLOWED_UPDATES


# --- /start deep links ---------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("payload", "question"),
    [
        ("kl183", "Kết luận 183-KL/TW có những nội dung chính nào?"),
        ("221", "Kết luận 221-KL/TW có những nội dung chính nào?"),
        (
            base64.urlsafe_b64encode("Ai ký Kết luận 221?".encode()).decode().rstrip("="),
            "Ai ký Kết luận 221?",
        ),
    ],
)
def test_start_with_a_payload_asks_its_question(payload: str, question: str) -> None:
    platform, service = FakePlatform(), FakeService()
    asyncio.run(make_bot(platform, service).handle_update(tg_command(f"/start {payload}")))
    assert service.calls[0][0] == question


def test_start_with_a_meaningless_payload_greets() -> None:
    platform, service = FakePlatform(), FakeService()
    asyncio.run(make_bot(platform, service).handle_update(tg_command("/start !!!")))
    assert service.calls == [] and "Xin chào" in sent(platform)[0]["text"]


# --- tasks -----------------------------------------------------------------------------------------------
TASKS = [directive(i, deadline=dt.date(2025, 12, i)) for i in range(1, 4)] + [directive(9, "Bộ Y tế")]


def test_nhiemvu_lists_the_agencys_tasks_with_deadlines_and_clause_links() -> None:
    platform = FakePlatform()
    asyncio.run(make_bot(platform, FakeService(directives=TASKS)).handle_update(tg_update("nhiem vu bnv")))
    [body] = sent(platform)
    text = body["text"]
    assert "Nhiệm vụ của Bộ Nội vụ (3 việc)" in text and "Bộ Y tế" not in text
    assert "Hạn: 01/12/2025" in text and text.index("01/12/2025") < text.index("03/12/2025")
    assert f"{PUBLIC_URL}/documents/kl183-621b55#kl183-621b55.m3.d2" in text


def test_many_tasks_are_split_like_long_answers() -> None:
    many = [directive(i, deadline=dt.date(2026, 1, 1), action="Việc cần làm " * 40) for i in range(1, 30)]
    platform = FakePlatform()
    asyncio.run(
        make_bot(platform, FakeService(directives=many)).handle_update(tg_command("/nhiemvu Bộ Nội vụ"))
    )
    parts = [p["text"] for p in sent(platform)]
    assert len(parts) >= 3 and all(len(p) <= TELEGRAM_LIMIT for p in parts)
    assert sum(p.count("Hạn: 01/01/2026") for p in parts) == 29


def test_an_unknown_agency_is_answered_with_the_closest_names() -> None:
    platform = FakePlatform()
    asyncio.run(
        make_bot(platform, FakeService(directives=TASKS)).handle_update(tg_command("/nhiemvu Bộ Nội"))
    )
    [body] = sent(platform)
    assert "chưa biết cơ quan" in body["text"] and "Bộ Nội vụ" in body["text"]


def test_follow_and_unfollow_an_agency_in_a_topic() -> None:
    platform, state = FakePlatform(), SQLiteState(":memory:")
    platform.topics.add((-1001234567890, 5))
    bot = make_bot(platform, FakeService(directives=TASKS), state=state)
    asyncio.run(bot.handle_update(tg_topic_update("/theodoi@KetLuanBot bo noi vu")))
    [sub] = state.subscriptions()
    assert (sub.channel, sub.chat, sub.agency, sub.thread) == ("telegram", "-1001234567890", "Bộ Nội vụ", 5)
    asyncio.run(bot.handle_update(tg_topic_update("/botheodoi@KetLuanBot")))
    assert state.subscriptions() == []
    followed, stopped = [p["text"] for p in sent(platform)]
    assert "Đã theo dõi Bộ Nội vụ" in followed and "3 ngày" in followed and "thôi theo dõi" in stopped


@pytest.mark.parametrize("text", ["/theodoi Bộ Nội vụ", "/nhiemvu Bộ Nội vụ"])
def test_task_commands_while_no_index_is_served_get_an_apology(text: str) -> None:
    platform, service = FakePlatform(), FakeService()
    del service.index  # what the bots see before an index is loaded
    asyncio.run(make_bot(platform, service).handle_update(tg_command(text)))
    [body] = sent(platform)
    assert "Xin lỗi" in body["text"]
