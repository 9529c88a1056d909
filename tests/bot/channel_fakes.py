"""Fakes for the bot tests: the Telegram Bot API and the Zalo OA API as their contracts describe them (one
platform object, served through httpx.MockTransport or as a real loopback app), payload builders copied
from the platforms' own documents, a chat service with scripted answers and an in-memory store.

Sources of the contract (each builder and check below cites its own):
- Telegram Bot API, https://core.telegram.org/bots/api (Update, Message, CallbackQuery, sendMessage,
  sendChatAction, answerCallbackQuery, setMyCommands, InlineKeyboardButton); aiogram `types/message.py`
  (`Message.answer` replies into a topic only when `is_topic_message`).
- Zalo OA: zaloplatform/zalo-php-sdk `src/Builder/MessageBuilder.php` (recipient `user_id` | `message_id`
  | `group_id`, template buttons `oa.open.url` {"url"} / `oa.query.show` payload, at most 5 buttons);
  OA API v3 `POST /v3.0/oa/message/cs` with the `access_token` header; errors as `{"error": <code>,
  "message": …}` in an HTTP 200 (-201 invalid parameters, -216 invalid token, -220 expired token,
  -32 rate limit); OAuth v4 `POST https://oauth.zaloapp.com/v4/oa/access_token` (form app_id,
  grant_type=refresh_token, refresh_token; header secret_key), refresh tokens single use; webhook events
  as Zalo posts them (samples published by Zalo integrators: user_send_text, follow,
  user_click_chatnow, user_send_group_text).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any
from urllib.parse import parse_qs

import httpx
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from bot.models import ChatResponse, Citation
from index.errors import UpstreamError
from index.models import Directive, Source
from index.tasks import TaskBook

PUBLIC_URL = "https://hoidap.example.vn"
LONG_PARAGRAPH = (
    "Các tỉnh uỷ, thành uỷ phải hoàn thành việc sắp xếp trạm y tế cấp xã trước ngày 31/12/2025 [1]. "
)
TG_TOKEN = "123456:TEST-TOKEN"
ZALO_APP, ZALO_APP_SECRET = "4321", "app-secret"
# Bot API: anonymous group admins post as this user (python-telegram-bot constants.ANONYMOUS_ADMIN_ID).
GROUP_ANONYMOUS_BOT = {
    "id": 1087968824,
    "is_bot": True,
    "first_name": "Group",
    "username": "GroupAnonymousBot",
}


# --- payloads as the platforms send them ------------------------------------------------------------
_ids = iter(range(1000, 10**9))


def next_id() -> int:
    return next(_ids)


def tg_update(
    text: str | None = "Trạm y tế cấp xã sắp xếp thế nào?",
    chat: str = "private",
    *,
    chat_id: int | None = None,
    update_id: int | None = None,
    **message: Any,
) -> dict[str, Any]:
    """An Update with a Message (Bot API "Update", "Message": message_id, date, chat, from, text …)."""
    msg: dict[str, Any] = {
        "message_id": 77,
        "date": 1718000000,
        "chat": {"id": chat_id or (42 if chat == "private" else -1001234567890), "type": chat},
        "from": {"id": 42, "is_bot": False, "first_name": "An", "language_code": "vi"},
        **message,
    }
    if chat != "private":
        msg["chat"]["title"] = "Tổ công tác"
    if text is not None:
        msg["text"] = text
    return {"update_id": update_id if update_id is not None else next_id(), "message": msg}


def tg_topic_update(text: str, thread_id: int = 5, **message: Any) -> dict[str, Any]:
    """A message in a forum topic: message_thread_id and is_topic_message (Bot API "Message")."""
    return tg_update(text, "supergroup", message_thread_id=thread_id, is_topic_message=True, **message)


def tg_anonymous_admin_update(text: str, chat_id: int = -1001234567890, **message: Any) -> dict[str, Any]:
    """A group admin posting anonymously: from = GroupAnonymousBot, sender_chat = the group itself."""
    update = tg_update(text, "supergroup", chat_id=chat_id, **message)
    update["message"]["from"] = dict(GROUP_ANONYMOUS_BOT)
    update["message"]["sender_chat"] = {"id": chat_id, "title": "Tổ công tác", "type": "supergroup"}
    return update


def tg_mention(text: str, name: str = "@KetLuanBot", chat: str = "supergroup") -> dict[str, Any]:
    """A text with a "mention" entity; offsets count UTF-16 code units (Bot API "MessageEntity")."""
    offset = len(text[: text.index(name)].encode("utf-16-le")) // 2
    return tg_update(text, chat, entities=[{"type": "mention", "offset": offset, "length": len(name)}])


def tg_command(text: str, chat: str = "private", **message: Any) -> dict[str, Any]:
    """A command message: Telegram marks "/cmd" or "/cmd@bot" with a bot_command entity at offset 0."""
    command = text.split()[0]
    entity = {"type": "bot_command", "offset": 0, "length": len(command.encode("utf-16-le")) // 2}
    return tg_update(text, chat, entities=[entity], **message)


def tg_callback(data: str, message: dict[str, Any] | None = None) -> dict[str, Any]:
    """An Update with a CallbackQuery (id, from, message, chat_instance, data)."""
    host = message or tg_update(None)["message"] | {"from": {"id": 999, "is_bot": True, "first_name": "Bot"}}
    return {
        "update_id": next_id(),
        "callback_query": {
            "id": f"4382bfdwdsb323b2d9-{next_id()}",
            "from": {"id": 42, "is_bot": False, "first_name": "An"},
            "message": host,
            "chat_instance": "-8222873450582343233",
            "data": data,
        },
    }


def zalo_event(
    name: str = "user_send_text",
    text: str | None = "Trạm y tế?",
    user: str = "u-1",
    *,
    timestamp: int | None = None,
    msg_id: str | None = None,
) -> dict[str, Any]:
    """user_send_* as Zalo posts it: app_id, sender, user_id_by_app, recipient (the OA), event_name,
    message {text, msg_id}, timestamp (milliseconds, as a string)."""
    message: dict[str, Any] = {"msg_id": msg_id or f"msg-{next_id()}"}
    if text is not None:
        message["text"] = text
    return {
        "app_id": ZALO_APP,
        "sender": {"id": user},
        "user_id_by_app": f"app-{user}",
        "recipient": {"id": "579745863508352884"},
        "event_name": name,
        "message": message,
        "timestamp": str(timestamp if timestamp is not None else int(time.time() * 1000)),
    }


def zalo_group_event(text: str = "Trạm y tế?", user: str = "u-1") -> dict[str, Any]:
    """user_send_group_text: a message in a Zalo group the OA is in; recipient is the group."""
    event = zalo_event("user_send_group_text", text, user)
    event["recipient"] = {"id": "group-8899"}
    return event


def zalo_follow(user: str = "u-9") -> dict[str, Any]:
    """follow: {app_id, oa_id, user_id_by_app, event_name, timestamp, source, follower {id}}."""
    return {
        "app_id": ZALO_APP,
        "oa_id": "579745863508352884",
        "user_id_by_app": f"app-{user}",
        "event_name": "follow",
        "timestamp": str(int(time.time() * 1000)),
        "source": "oa_profile",
        "follower": {"id": user},
    }


def zalo_chatnow(user: str = "u-8") -> dict[str, Any]:
    """user_click_chatnow: {app_id, user_id, oa_id, user_id_by_app, event_name, timestamp}."""
    return {
        "app_id": ZALO_APP,
        "user_id": user,
        "oa_id": "579745863508352884",
        "user_id_by_app": f"app-{user}",
        "event_name": "user_click_chatnow",
        "timestamp": str(int(time.time() * 1000)),
    }


# --- the platforms ----------------------------------------------------------------------------------
@dataclass
class Call:
    kind: str  # "telegram", "zalo", "oauth"
    method: str  # Telegram method; "reply" / "proactive" for Zalo sends; "refresh"
    body: dict[str, Any]
    headers: dict[str, str]
    at: float = field(default_factory=time.monotonic)


Reply = tuple[int, dict[str, Any]]
_COMMAND = re.compile(r"^[a-z0-9_]{1,32}$")
_ZALO_BUTTONS = {"oa.open.url", "oa.query.show", "oa.query.hide", "oa.open.sms", "oa.open.phone"}
_UPDATE_TYPES = {
    "message",
    "edited_message",
    "channel_post",
    "callback_query",
    "inline_query",
    "my_chat_member",
}


def _tg_error(status: int, description: str) -> Reply:
    return status, {"ok": False, "error_code": status, "description": description}


def _zalo_error(code: int, message: str) -> Reply:
    return 200, {"error": code, "message": message}


def _utf16(text: str) -> int:
    return len(text.encode("utf-16-le", errors="surrogatepass")) // 2


class FakePlatform:
    """Telegram and Zalo as their contracts say: records every call, refuses what the real ones refuse,
    and plays scripted failures (queued per Telegram method, or for the Zalo OA API)."""

    def __init__(self, tg_token: str = TG_TOKEN) -> None:
        self.tg_token = tg_token
        self.lock = threading.Lock()
        self.on_refresh: Callable[[], None] | None = None  # runs inside the OAuth handler (concurrency tests)
        self.on_zalo_send: Callable[[str], None] | None = None  # gets the token of each OA call
        self.reset()

    def reset(self) -> None:
        with self.lock:
            self.calls: list[Call] = []
            self.telegram_failures: dict[str, list[Reply]] = {}
            self.zalo_failures: list[int | dict[str, Any]] = []  # HTTP status, or a 200 body
            self.updates: list[dict[str, Any]] = []
            self.topics: set[tuple[int, int]] = set()  # (chat_id, message_thread_id) of forum topics
            self.zalo_valid = {"zalo-token-1", "zalo-token-2"}
            self.refresh_tokens = {"zalo-refresh-1"}
            self.issued = 2

    # scripting ------------------------------------------------------------------------------------------
    def fail_telegram(self, method: str, *responses: Reply) -> None:
        with self.lock:
            self.telegram_failures.setdefault(method, []).extend(responses)

    def find(self, kind: str, method: str | None = None) -> list[Call]:
        with self.lock:
            return [c for c in self.calls if c.kind == kind and (method is None or c.method == method)]

    def _record(self, call: Call) -> None:
        with self.lock:
            self.calls.append(call)

    # Telegram ---------------------------------------------------------------------------------------------
    def telegram(self, token: str, method: str, body: dict[str, Any], headers: dict[str, str]) -> Reply:
        self._record(Call("telegram", method, body, headers))
        if token != self.tg_token:
            return _tg_error(401, "Unauthorized")
        with self.lock:
            queued = self.telegram_failures.get(method) or []
            failure = queued.pop(0) if queued else None
        if failure is not None:
            return failure
        check = getattr(self, f"_tg_{method}", None)
        if check is not None:
            refused = check(body)
            if refused is not None:
                return refused
        if method == "getUpdates":
            with self.lock:
                pending, self.updates = self.updates, []
            return 200, {"ok": True, "result": pending}
        if method == "getWebhookInfo":
            return 200, {
                "ok": True,
                "result": {"url": "", "has_custom_certificate": False, "pending_update_count": 0},
            }
        if method == "getMe":
            return 200, {"ok": True, "result": {"id": 999, "is_bot": True, "first_name": "Kết luận",
                                                 "username": "KetLuanBot", "can_join_groups": True}}  # fmt: skip
        if method == "sendMessage":
            sent = len(self.find("telegram", "sendMessage"))
            chat = {"id": body["chat_id"], "type": "private" if int(body["chat_id"]) > 0 else "supergroup"}
            result = {"message_id": 500 + sent, "date": int(time.time()), "chat": chat, "text": body["text"]}
            return 200, {"ok": True, "result": result}
        return 200, {"ok": True, "result": True}

    def _thread_ok(self, body: dict[str, Any]) -> Reply | None:
        thread = body.get("message_thread_id")
        if thread is not None and (int(body["chat_id"]), int(thread)) not in self.topics:
            return _tg_error(400, "Bad Request: message thread not found")
        return None

    def _tg_sendMessage(self, body: dict[str, Any]) -> Reply | None:
        if "chat_id" not in body or not str(body.get("text", "")).strip():
            return _tg_error(400, "Bad Request: message text is empty")
        if _utf16(body["text"]) > 4096:
            return _tg_error(400, "Bad Request: message is too long")
        markup = body.get("reply_markup")
        if markup is not None:
            for row in markup.get("inline_keyboard", []):
                for button in row:
                    kinds = [k for k in ("url", "callback_data") if k in button]
                    if len(kinds) != 1 or not button.get("text"):
                        return _tg_error(400, "Bad Request: can't parse inline keyboard button")
                    data = button.get("callback_data")
                    if data is not None and not 1 <= len(data.encode()) <= 64:
                        return _tg_error(400, "Bad Request: BUTTON_DATA_INVALID")
                    url = button.get("url")
                    if url is not None and not re.match(
                        r"^https?://(?!localhost|127\.|10\.|192\.168\.)", url
                    ):
                        return _tg_error(400, f"Bad Request: inline keyboard button URL '{url}' is invalid")
        return self._thread_ok(body)

    def _tg_sendChatAction(self, body: dict[str, Any]) -> Reply | None:
        if body.get("action") not in {"typing", "upload_photo", "upload_document", "find_location"}:
            return _tg_error(400, "Bad Request: wrong parameter action in request")
        return self._thread_ok(body)

    def _tg_answerCallbackQuery(self, body: dict[str, Any]) -> Reply | None:
        if not body.get("callback_query_id"):
            return _tg_error(
                400, "Bad Request: query is too old and response timeout expired or query ID is invalid"
            )
        return None

    def _tg_setMyCommands(self, body: dict[str, Any]) -> Reply | None:
        for command in body.get("commands", []):
            if (
                not _COMMAND.match(command.get("command", ""))
                or not 1 <= len(command.get("description", "")) <= 256
            ):
                return _tg_error(400, "Bad Request: BOT_COMMAND_INVALID")
        return None

    def _tg_setWebhook(self, body: dict[str, Any]) -> Reply | None:
        if not str(body.get("url", "")).startswith("https://"):
            return _tg_error(400, "Bad Request: bad webhook: An HTTPS URL must be provided for webhook")
        if not set(body.get("allowed_updates", [])) <= _UPDATE_TYPES:
            return _tg_error(400, "Bad Request: wrong allowed_updates")
        return None

    # Zalo ---------------------------------------------------------------------------------------------------
    def zalo_send(self, body: dict[str, Any], headers: dict[str, str]) -> Reply:
        token = headers.get("access_token", "")
        if self.on_zalo_send is not None:
            self.on_zalo_send(token)
        recipient = body.get("recipient") or {}
        kind = "reply" if "message_id" in recipient else "proactive"
        self._record(Call("zalo", kind, body, headers))
        with self.lock:
            failure = self.zalo_failures.pop(0) if self.zalo_failures else None
            valid = token in self.zalo_valid
        if isinstance(failure, int):
            return failure, {"error": -1, "message": "busy"}
        if failure is not None:
            return 200, failure
        if not valid:
            return _zalo_error(-216, "Access token is invalid")
        keys = [k for k in ("user_id", "message_id", "group_id", "anonymous_id") if recipient.get(k)]
        if len(keys) != 1:
            return _zalo_error(-201, "Parameters are invalid: recipient")
        message = body.get("message") or {}
        if len(str(message.get("text", ""))) > 2000:
            return _zalo_error(-201, "Parameters are invalid: text is too long")
        buttons = ((message.get("attachment") or {}).get("payload") or {}).get("buttons", [])
        if len(buttons) > 5:
            return _zalo_error(-201, "Parameters are invalid: buttons")
        for button in buttons:
            if button.get("type") not in _ZALO_BUTTONS or not button.get("title"):
                return _zalo_error(-201, "Parameters are invalid: button")
            if button["type"] == "oa.open.url" and not str((button.get("payload") or {}).get("url", "")):
                return _zalo_error(-201, "Parameters are invalid: button url")
        data = {"message_id": f"oa-{len(self.calls)}", "user_id": recipient.get("user_id", "u")}
        if kind == "reply":
            data["quota"] = {
                "quota_type": "reply",
                "remain": "7",
            }  # free within the window of the user's message
        return 200, {"error": 0, "message": "Success", "data": data}

    def zalo_refresh(self, form: dict[str, str], headers: dict[str, str]) -> Reply:
        self._record(Call("oauth", "refresh", form, headers))
        if self.on_refresh is not None:
            self.on_refresh()
        with self.lock:
            token = form.get("refresh_token", "")
            if token not in self.refresh_tokens or headers.get("secret_key") != ZALO_APP_SECRET:
                return 200, {"error": -14014, "error_name": "Invalid refresh token",
                             "error_description": "Invalid refresh token"}  # fmt: skip
            self.refresh_tokens.discard(token)  # single use
            self.issued += 1
            access, refresh = f"zalo-token-{self.issued}", f"zalo-refresh-{self.issued}"
            self.zalo_valid.add(access)
            self.refresh_tokens.add(refresh)
        return 200, {"access_token": access, "refresh_token": refresh, "expires_in": "90000"}

    # serving ------------------------------------------------------------------------------------------------
    def _route(self, path: str, body: bytes, headers: dict[str, str]) -> Reply:
        match = re.match(r"^/bot([^/]+)/([A-Za-z]+)$", path)
        if match:
            return self.telegram(match.group(1), match.group(2), json.loads(body or b"{}"), headers)
        if path == "/v3.0/oa/message/cs":
            return self.zalo_send(json.loads(body), headers)
        if path == "/v4/oa/access_token":
            return self.zalo_refresh({k: v[0] for k, v in parse_qs(body.decode()).items()}, headers)
        return 404, {"error": -404, "message": "not found"}

    def transport(self) -> httpx.MockTransport:
        def handle(request: httpx.Request) -> httpx.Response:
            status, data = self._route(request.url.path, request.content, dict(request.headers))
            return httpx.Response(status, json=data)

        return httpx.MockTransport(handle)

    def client(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(transport=self.transport())

    def app(self) -> FastAPI:
        app = FastAPI()

        @app.post("/{path:path}")
        async def any_call(path: str, request: Request) -> Any:
            body = await request.body()
            status, data = await asyncio.to_thread(self._route, "/" + path, body, dict(request.headers))
            if path.endswith("/getUpdates") and data.get("result") == []:
                await asyncio.sleep(0.05)  # a (very) short long poll
            return JSONResponse(data, status_code=status)

        return app


# --- the answering side --------------------------------------------------------------------------------------
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


def directive(
    n: int, agency: str = "Bộ Nội vụ", deadline: dt.date | None = None, action: str | None = None
) -> Directive:
    """A hand-made task (the Directive contract of API.md) until extraction fills the task book."""
    return Directive(
        directive_id=f"kl183-621b55.m3.d{n}.t1",
        ket_luan="183-KL/TW",
        document_id="kl183-621b55",
        issued=dt.date(2025, 8, 22),
        agencies=[agency],
        action=action or f"Hoàn thành việc thứ {n} về sắp xếp đơn vị hành chính",
        source=Source(file="000.txt", start=10 * n, end=10 * n + 5),
        deadline=deadline,
        deadline_precision="day" if deadline else None,
        deadline_text=f"trước ngày {deadline:%d/%m/%Y}" if deadline else None,
        passage_id=f"kl183-621b55.m3.d{n}",
        label=f"Kết luận 183-KL/TW, mục 3, đoạn {n}",
        url=f"/documents/kl183-621b55#kl183-621b55.m3.d{n}",
    )


class FakeService:
    """Answers by script: `answers[message]` (or a default echo), citing [1] and [2]; `fail` raises.
    `index.tasks` is a TaskBook of hand-made directives; `suggestions` are offered with every answer."""

    def __init__(
        self,
        answers: dict[str, str] | None = None,
        delay: float = 0.0,
        *,
        directives: list[Directive] | None = None,
        suggestions: list[str] | None = None,
    ) -> None:
        self.answers = dict(answers or {})
        self.delay = delay
        self.hold = threading.Event()  # clear it to keep answers pending until it is set again
        self.hold.set()
        self.waiting = 0  # answers started and held
        self.calls: list[tuple[str, str | None]] = []
        self.resets: list[str] = []
        self.llm = None
        self.suggestions = list(suggestions or [])
        self.index = SimpleNamespace(tasks=TaskBook(list(directives or []), []))

    def _respond(self, message: str, conversation_id: str | None) -> ChatResponse:
        self.calls.append((message, conversation_id))
        if message == "lỗi":
            raise UpstreamError("the answering core is down")
        message.encode("utf-8")  # a lone surrogate fails here, as it does in the real service's store
        answer = self.answers.get(message, f"Trả lời cho <{message}> & chi tiết [1] [2].")
        fields: dict[str, Any] = {}
        if "suggestions" in ChatResponse.model_fields:
            fields["suggestions"] = list(self.suggestions)
        response = ChatResponse(
            conversation_id=conversation_id or f"c_new{len(self.calls)}",
            message_id=f"m{len(self.calls)}",
            answer=answer,
            answered=True,
            citations=[citation(1), citation(2, passage="m4.d1")],
            mode="extractive",
            latency_ms=1.0,
            **fields,
        )
        if self.suggestions and "suggestions" not in fields:
            object.__setattr__(response, "suggestions", list(self.suggestions))  # until the model has it
        return response

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


class FakeSeen:
    """Dedupe marks in memory."""

    def __init__(self) -> None:
        self.marks: set[tuple[str, str]] = set()

    def mark_seen(self, namespace: str, key: str, ttl_seconds: int) -> bool:
        if (namespace, key) in self.marks:
            return False
        self.marks.add((namespace, key))
        return True


class FakeConversations:
    def __init__(self) -> None:
        self.created: set[str] = set()

    def create(self, conversation_id: str) -> None:
        self.created.add(conversation_id)


class FakeStores:
    """The stores the bots use (dedupe marks, conversation ids), in memory."""

    def __init__(self) -> None:
        self.seen = FakeSeen()
        self.conversations = FakeConversations()
