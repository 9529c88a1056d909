"""Telegram Bot API: updates in → whom to answer and how (HTML below 4096 chars, buttons) → a retrying client."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import html
import logging
import re
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, cast

import httpx

from bot.channels import (
    COMMAND_ALIASES,
    Conversations,
    TaskSet,
    agency_tasks,
    check_encodable,
    pack,
    prompt,
    reachable_from_a_phone,
    slash_command,
    source_links,
    split_text,
    spoken_command,
    start_question,
    suggestions_of,
    task_blocks,
    unknown_agency_text,
)
from bot.models import ChatResponse
from bot.reminders import Follows
from bot.retry import RetryLater, RetryPolicy, with_retries
from bot.state import BotState, Subscription
from index.errors import BadQuery, UpstreamError
from index.tasks import UnknownAgency

log = logging.getLogger(__name__)

# Telegram refuses texts above 4096 characters (UTF-16 units); the HTML tags count against us here, so a
# margin below the hard limit keeps every part safe whatever entities parsing does.
TELEGRAM_LIMIT = 4000
# Bot API: callback_data is 1-64 bytes, so a suggested question travels as a key into the bot state.
CALLBACK_PREFIX = "q:"
SUGGESTION_TTL_SECONDS = 30 * 24 * 3600
MAX_SOURCE_BUTTONS = 5
MAX_SUGGESTION_BUTTONS = 3
BUTTON_TEXT_CHARS = 60
ALLOWED_UPDATES = ["message", "callback_query"]

Sleep = Callable[[float], Awaitable[Any]]


class TelegramError(UpstreamError):
    """A Bot API call that failed for good (after the retries its kind of failure deserves)."""

    def __init__(
        self, method: str, message: str, status: int | None = None, retry_after: float | None = None
    ):
        super().__init__(f"Telegram {method}: {message}")
        self.method = method
        self.status = status
        self.retry_after = retry_after


@dataclass(frozen=True)
class BotIdentity:
    id: int
    username: str


@dataclass(frozen=True)
class TelegramMessage:
    """The parts of a Telegram `message` (or a pressed button's `callback_query`) the bot looks at."""

    update_id: int
    chat_id: int
    chat_type: str
    message_id: int
    text: str | None
    entities: list[dict[str, Any]] = field(default_factory=list)
    from_is_bot: bool = False
    reply_to_user_id: int | None = None
    # set only for messages in a forum topic (is_topic_message), as aiogram's Message.answer does
    thread_id: int | None = None
    sender_chat_id: int | None = None
    callback_id: str | None = None
    callback_data: str | None = None

    @property
    def is_private(self) -> bool:
        return self.chat_type == "private"

    @property
    def anonymous_admin(self) -> bool:
        """Posted by a group admin as the group itself: `from` is GroupAnonymousBot (is_bot true) and
        `sender_chat` is this chat (Bot API, Message.sender_chat)."""
        return self.sender_chat_id is not None and self.sender_chat_id == self.chat_id


def _message(update_id: int, message: dict[str, Any], **extra: Any) -> TelegramMessage:
    chat = message.get("chat") or {}
    sender = message.get("from") or {}
    reply = message.get("reply_to_message") or {}
    return TelegramMessage(
        update_id=update_id,
        chat_id=int(chat["id"]),
        chat_type=str(chat.get("type", "private")),
        message_id=int(message["message_id"]),
        text=message.get("text") if isinstance(message.get("text"), str) else None,
        entities=[e for e in message.get("entities") or [] if isinstance(e, dict)],
        from_is_bot=bool(sender.get("is_bot", False)),
        reply_to_user_id=(reply.get("from") or {}).get("id"),
        thread_id=int(message["message_thread_id"])
        if message.get("is_topic_message") and message.get("message_thread_id") is not None
        else None,
        sender_chat_id=(message.get("sender_chat") or {}).get("id"),
        **extra,
    )


def parse_update(update: dict[str, Any]) -> TelegramMessage | None:
    """The new message or pressed button of an update; None for edits, channel posts and anything malformed."""
    try:
        update_id = int(update["update_id"])
        message = update.get("message")
        if isinstance(message, dict):
            return _message(update_id, message)
        query = update.get("callback_query")
        if isinstance(query, dict) and isinstance(query.get("id"), str):
            # `message` is absent when the message with the button is too old (InaccessibleMessage has date 0)
            host = query.get("message") if isinstance(query.get("message"), dict) else {}
            data = query.get("data") if isinstance(query.get("data"), str) else None
            if not host or not host.get("date"):
                host = {"message_id": 0, "chat": {"id": (query.get("from") or {})["id"], "type": "private"}}
            return _message(update_id, {**host, "text": None}, callback_id=query["id"], callback_data=data)
    except (KeyError, TypeError, ValueError):
        return None
    return None


def _entity_text(text: str, entity: dict[str, Any]) -> str:
    """Entity offsets count UTF-16 code units, not Python characters (they differ for emoji)."""
    raw = text.encode("utf-16-le", errors="surrogatepass")
    start, length = int(entity.get("offset", 0)), int(entity.get("length", 0))
    return raw[2 * start : 2 * (start + length)].decode("utf-16-le", errors="ignore")


def mentions(message: TelegramMessage, me: BotIdentity) -> bool:
    if message.text is None:
        return False
    for entity in message.entities:
        kind = entity.get("type")
        if kind == "mention" and _entity_text(message.text, entity).lower() == f"@{me.username.lower()}":
            return True
        if kind == "text_mention" and (entity.get("user") or {}).get("id") == me.id:
            return True
    return False


def strip_mention(text: str, username: str) -> str:
    text = re.sub(rf"@{re.escape(username)}\b", " ", text, flags=re.IGNORECASE)
    return re.sub(r"[ \t]{2,}", " ", text).strip()


ActionKind = Literal["command", "ask", "text_only", "start", "tasks", "follow", "unfollow", "callback"]


@dataclass(frozen=True)
class Action:
    kind: ActionKind
    value: str = ""


def _command_action(name: str, argument: str) -> Action:
    command = COMMAND_ALIASES.get(name, "help")
    if command == "start":
        return Action("start", argument) if argument else Action("command", "start")
    if command == "ask":
        return Action("ask", argument) if argument else Action("command", "help")
    if command in ("tasks", "follow", "unfollow"):
        return Action(cast(ActionKind, command), argument)
    return Action("command", command)


def _text_action(text: str) -> Action:
    spoken = spoken_command(text)
    return Action(cast(ActionKind, spoken.name), spoken.argument) if spoken else Action("ask", text)


def decide(message: TelegramMessage, me: BotIdentity | None) -> Action | None:
    """What to do with a message: private chats get every text answered; groups only when the bot is
    mentioned or replied to, or a command reaches it ("/hoi@Bot …" always does, whatever the privacy mode).
    `me` may be None only for private chats."""
    if message.callback_id is not None:
        return Action("callback", message.callback_data or "")
    if message.from_is_bot and not message.anonymous_admin:
        return None
    if message.text is None or not message.text.strip():
        return Action("text_only") if message.is_private else None
    text = message.text.strip()
    command = slash_command(text)
    if command is not None:
        name, target, argument = command
        if target is not None and (me is None or target.lower() != me.username.lower()):
            return None  # addressed to another bot in the group
        if name in COMMAND_ALIASES or message.is_private or target is not None:
            return _command_action(name, argument)
        return None
    if message.is_private:
        return _text_action(text)
    if me is None:
        return None
    if mentions(message, me) or message.reply_to_user_id == me.id:
        question = strip_mention(text, me.username)
        return _text_action(question) if question else Action("command", "help")
    return None


def _utf16_len(text: str) -> int:
    return len(text.encode("utf-16-le", errors="surrogatepass")) // 2


def format_html(response: ChatResponse, public_url: str, limit: int = TELEGRAM_LIMIT) -> list[str]:
    """The answer as HTML-escaped messages split at paragraph boundaries, then numbered source links."""
    return html_messages(response.answer, response, public_url, limit)


def html_messages(
    text: str, response: ChatResponse | None, public_url: str, limit: int = TELEGRAM_LIMIT
) -> list[str]:
    return html_blocks([text], response, public_url, limit)


def html_blocks(
    texts: Sequence[str], response: ChatResponse | None, public_url: str, limit: int = TELEGRAM_LIMIT
) -> list[str]:
    """Plain-text blocks, escaped, each split to fit, packed into as few messages as fit; sources last."""

    def escaped_len(piece: str) -> int:
        return _utf16_len(html.escape(piece, quote=False))

    blocks = [html.escape(p, quote=False) for text in texts for p in split_text(text, limit, escaped_len)]
    if response is not None and response.citations:
        lines = [f"<b>{html.escape(prompt('sources_heading'), quote=False)}</b>"]
        for n, label, url in source_links(response.citations, public_url):
            lines.append(
                f'[{n}] <a href="{html.escape(url, quote=True)}">{html.escape(label, quote=False)}</a>'
            )
        # A source line is never cut: it is far shorter than the limit, and cutting would break its tag.
        blocks.extend(pack(lines, limit, _utf16_len, sep="\n"))
    return pack(blocks, limit, _utf16_len)


def _button_text(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= BUTTON_TEXT_CHARS else text[: BUTTON_TEXT_CHARS - 1].rstrip() + "…"


def suggestion_key(question: str) -> str:
    return hashlib.sha256(question.encode("utf-8", errors="surrogatepass")).hexdigest()[:24]


def keyboard(
    response: ChatResponse, public_url: str, suggestion_keys: Sequence[tuple[str, str]] = ()
) -> dict[str, Any] | None:
    """InlineKeyboardMarkup: a URL button per source (when phones can open it), a callback button per
    suggested question (`suggestion_keys` = (question, key) pairs already kept in the bot state)."""
    rows: list[list[dict[str, Any]]] = []
    for n, label, url in source_links(response.citations, public_url)[:MAX_SOURCE_BUTTONS]:
        if reachable_from_a_phone(url):
            rows.append([{"text": _button_text(f"[{n}] {label}"), "url": url}])
    for question, key in suggestion_keys[:MAX_SUGGESTION_BUTTONS]:
        rows.append([{"text": _button_text(question), "callback_data": CALLBACK_PREFIX + key}])
    return {"inline_keyboard": rows} if rows else None


class TelegramClient:
    """Bot API calls over one shared httpx.AsyncClient; 429 waits retry_after, 5xx/network errors back off."""

    def __init__(
        self,
        http: httpx.AsyncClient,
        token: str,
        api_base: str = "https://api.telegram.org",
        *,
        max_attempts: int = 5,
        backoff_base: float = 1.0,
        backoff_cap: float = 30.0,
        max_retry_after: float = 120.0,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        self.http = http
        self._token = token
        self.api_base = api_base.rstrip("/")
        self.policy = RetryPolicy(max_attempts, backoff_base, backoff_cap, max_retry_after)
        self._sleep = sleep

    async def call(self, method: str, payload: dict[str, Any] | None = None, *, timeout: float = 30.0) -> Any:
        url = f"{self.api_base}/bot{self._token}/{method}"

        async def attempt() -> Any:
            try:
                response = await self.http.post(url, json=payload or {}, timeout=timeout)
            except httpx.HTTPError as exc:
                # Never str(exc) with the URL: it holds the bot token.
                raise RetryLater(TelegramError(method, f"network error ({type(exc).__name__})")) from None
            data = _json(response)
            if response.status_code == 200 and data.get("ok") is True:
                return data.get("result")
            description = str(data.get("description") or response.reason_phrase or "error")
            status = int(data.get("error_code") or response.status_code)
            if status == 429:
                retry_after = _retry_after(data, response)
                raise RetryLater(TelegramError(method, description, status, retry_after), retry_after)
            if status >= 500:
                raise RetryLater(TelegramError(method, description, status))
            raise TelegramError(method, description, status)  # 400, 403 …: retrying will not help

        return await with_retries(attempt, self.policy, self._sleep, what=f"telegram {method}")

    async def get_me(self) -> BotIdentity:
        result = await self.call("getMe")
        return BotIdentity(id=int(result["id"]), username=str(result.get("username", "")))

    async def send_message(
        self,
        chat_id: int,
        text: str,
        reply_to_message_id: int | None = None,
        *,
        thread_id: int | None = None,
        reply_markup: dict[str, Any] | None = None,
    ) -> Any:
        payload: dict[str, Any] = {
            "chat_id": chat_id,
            "text": text,
            "parse_mode": "HTML",
            "link_preview_options": {"is_disabled": True},
        }
        if thread_id is not None:
            payload["message_thread_id"] = thread_id
        if reply_to_message_id is not None:
            payload["reply_parameters"] = {
                "message_id": reply_to_message_id,
                "allow_sending_without_reply": True,
            }
        if reply_markup is not None:
            payload["reply_markup"] = reply_markup
        return await self.call("sendMessage", payload)

    async def send_chat_action(
        self, chat_id: int, action: str = "typing", *, thread_id: int | None = None
    ) -> Any:
        payload: dict[str, Any] = {"chat_id": chat_id, "action": action}
        if thread_id is not None:
            payload["message_thread_id"] = thread_id
        return await self.call("sendChatAction", payload)

    async def answer_callback_query(self, callback_query_id: str, text: str | None = None) -> Any:
        payload: dict[str, Any] = {"callback_query_id": callback_query_id}
        if text:
            payload["text"] = text
        return await self.call("answerCallbackQuery", payload)

    async def set_webhook(self, url: str, secret_token: str, *, drop_pending_updates: bool = False) -> Any:
        return await self.call(
            "setWebhook",
            {
                "url": url,
                "secret_token": secret_token,
                "allowed_updates": ALLOWED_UPDATES,
                "drop_pending_updates": drop_pending_updates,
            },
        )

    async def set_my_commands(self, commands: list[dict[str, str]]) -> Any:
        return await self.call("setMyCommands", {"commands": commands})

    async def delete_webhook(self) -> Any:
        return await self.call("deleteWebhook", {"drop_pending_updates": False})

    async def get_webhook_info(self) -> Any:
        return await self.call("getWebhookInfo")

    async def get_updates(self, offset: int | None, timeout: int = 30) -> list[dict[str, Any]]:
        payload: dict[str, Any] = {"timeout": timeout, "allowed_updates": ALLOWED_UPDATES}
        if offset is not None:
            payload["offset"] = offset
        result = await self.call("getUpdates", payload, timeout=timeout + 15)
        return [u for u in result or [] if isinstance(u, dict)]


def command_menu() -> list[dict[str, str]]:
    """setMyCommands' list, from prompts/bot_commands.txt ("name - description" a line)."""
    out = []
    for line in prompt("commands").splitlines():
        name, _, description = line.partition(" - ")
        if name.strip() and description.strip():
            out.append({"command": name.strip(), "description": description.strip()})
    return out


def _json(response: httpx.Response) -> dict[str, Any]:
    try:
        data = response.json()
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


def _retry_after(data: dict[str, Any], response: httpx.Response) -> float:
    value = (data.get("parameters") or {}).get("retry_after") or response.headers.get("Retry-After") or 1
    try:
        return max(0.0, float(value))
    except (TypeError, ValueError):
        return 1.0


def _escaped(name: str) -> list[str]:
    return [html.escape(prompt(name), quote=False)]


class TelegramBot:
    """One update → replies: decide, dedupe, show typing, answer, send; failures are logged, not raised."""

    def __init__(
        self,
        client: TelegramClient,
        conversations: Conversations,
        public_url: str,
        *,
        typing_interval: float = 4.0,
        identity: BotIdentity | None = None,
        state: BotState | None = None,
        follows: Follows | None = None,
    ) -> None:
        self.client = client
        self.conversations = conversations
        self.public_url = public_url
        self.typing_interval = typing_interval
        self.state = state
        self.follows = follows
        self._identity = identity
        self._identity_lock = asyncio.Lock()

    async def identity(self) -> BotIdentity:
        async with self._identity_lock:
            if self._identity is None:
                self._identity = await self.client.get_me()
            return self._identity

    async def handle_update(self, update: dict[str, Any]) -> None:
        update_id = update.get("update_id")
        if not isinstance(update_id, int):
            log.warning("telegram: update without an update_id ignored")
            return
        message = parse_update(update)
        if message is None:
            return
        try:
            me = None if message.is_private else await self.identity()
            action = decide(message, me)
            if action is None:
                return
            if not await self.conversations.first_delivery(str(update_id)):
                log.info("telegram: update %s already handled, ignoring the redelivery", update_id)
                return
            await self._act(message, action)
        except Exception:
            log.exception("telegram: could not handle update %s of chat %s", update_id, message.chat_id)

    async def _act(self, message: TelegramMessage, action: Action) -> None:
        chat_key = str(message.chat_id)
        if action.kind == "callback":
            await self._callback(message, action.value)
        elif action.kind == "text_only":
            await self._send(message, _escaped("text_only"))
        elif action.kind == "command" and action.value == "new":
            await self.conversations.reset(chat_key)
            await self._send(message, _escaped("new_conversation"))
        elif action.kind == "command":
            await self._send(message, html_messages(prompt("help"), None, self.public_url))
        elif action.kind == "start":
            question = start_question(action.value)
            if question is None:
                await self._send(message, html_messages(prompt("help"), None, self.public_url))
            else:
                await self._answer(message, question)
        elif action.kind == "tasks":
            await self._tasks(message, action.value)
        elif action.kind in ("follow", "unfollow"):
            await self._follow(message, action.kind, action.value)
        else:
            await self._answer(message, action.value)

    async def _callback(self, message: TelegramMessage, data: str) -> None:
        """A pressed suggestion button: stop the button's spinner, then ask the question it stands for."""
        assert message.callback_id is not None
        question = None
        if data.startswith(CALLBACK_PREFIX) and self.state is not None:
            with contextlib.suppress(Exception):
                question = await asyncio.to_thread(self.state.get, "tg:q:" + data[len(CALLBACK_PREFIX) :])
        try:
            await self.client.answer_callback_query(
                message.callback_id, None if question else prompt("callback_expired")
            )
        except TelegramError as exc:
            log.info("telegram: answerCallbackQuery failed: %s", exc.message)
        if question and message.message_id:
            await self._answer(message, question)

    async def _answer(self, message: TelegramMessage, question: str) -> None:
        markup = None
        async with self._typing(message.chat_id, message.thread_id):
            try:
                response = await self.conversations.ask(str(message.chat_id), question)
            except BadQuery as exc:
                log.info("telegram: unusable question in update %s: %s", message.update_id, exc.message)
                texts = _escaped("bad_question")
            except Exception:
                log.exception(
                    "telegram: answering update %s of chat %s failed", message.update_id, message.chat_id
                )
                texts = _escaped("error")
            else:
                texts = format_html(response, self.public_url)
                markup = keyboard(response, self.public_url, await self._keep_suggestions(response))
        await self._send(message, texts, markup)

    async def _keep_suggestions(self, response: ChatResponse) -> list[tuple[str, str]]:
        if self.state is None:
            return []
        kept = []
        for question in suggestions_of(response)[:MAX_SUGGESTION_BUTTONS]:
            key = suggestion_key(question)
            try:
                check_encodable(question)
                await asyncio.to_thread(self.state.put, "tg:q:" + key, question, SUGGESTION_TTL_SECONDS)
            except Exception:
                log.warning("telegram: could not keep a suggested question", exc_info=True)
                continue
            kept.append((question, key))
        return kept

    async def _tasks(self, message: TelegramMessage, agency: str) -> None:
        if not agency:
            await self._send(message, _escaped("tasks_usage"))
            return
        try:
            name, directives = agency_tasks(self.conversations.tasks(), agency)
        except UnknownAgency as exc:
            await self._send(
                message, [html.escape(unknown_agency_text(agency, exc.suggestions), quote=False)]
            )
            return
        except Exception:
            log.exception("telegram: listing the tasks of %r failed", agency)
            await self._send(message, _escaped("error"))
            return
        await self._send(
            message, html_blocks(task_blocks(name, directives, self.public_url), None, self.public_url)
        )

    async def _follow(self, message: TelegramMessage, kind: str, agency: str) -> None:
        if self.follows is None:
            await self._send(message, _escaped("error"))
            return
        where = Subscription("telegram", str(message.chat_id), "", message.thread_id or 0)
        try:
            text = await self.follows.handle(kind, where, agency, self.conversations.tasks)
        except Exception:
            log.exception("telegram: /%s %r in chat %s failed", kind, agency, message.chat_id)
            text = prompt("error")
        await self._send(message, [html.escape(text, quote=False)])

    async def send_reminder(self, subscription: Subscription, texts: list[str]) -> None:
        """A reminder to a chat that follows an agency (bot.reminders calls this)."""
        thread = subscription.thread or None
        for text in html_blocks(texts, None, self.public_url):
            await self.client.send_message(int(subscription.chat), text, thread_id=thread)

    @contextlib.asynccontextmanager
    async def _typing(self, chat_id: int, thread_id: int | None = None) -> AsyncIterator[None]:
        """Keep "typing…" shown (Telegram clears it after 5 s) until the answer is ready."""

        async def keep_typing() -> None:
            while True:
                try:
                    await self.client.send_chat_action(chat_id, "typing", thread_id=thread_id)
                except TelegramError as exc:
                    log.info("telegram: typing indicator for chat %s failed: %s", chat_id, exc.message)
                await asyncio.sleep(self.typing_interval)

        task = asyncio.create_task(keep_typing(), name=f"telegram-typing-{chat_id}")
        try:
            yield
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _send(
        self, message: TelegramMessage, texts: list[str], markup: dict[str, Any] | None = None
    ) -> None:
        """Every part goes to the question's forum topic; only the first quotes it; the last has the buttons."""
        reply_to = None if message.is_private or not message.message_id else message.message_id
        for part, text in enumerate(texts, 1):
            try:
                await self.client.send_message(
                    message.chat_id,
                    text,
                    reply_to_message_id=reply_to,
                    thread_id=message.thread_id,
                    reply_markup=markup if part == len(texts) else None,
                )
            except TelegramError as exc:
                log.error(
                    "telegram: reply part %d/%d to chat %s (update %s) could not be sent: %s",
                    part, len(texts), message.chat_id, message.update_id, exc.message,
                )  # fmt: skip
                return
            reply_to = None


async def poll(bot: TelegramBot, *, timeout: int = 30, stop: asyncio.Event | None = None) -> None:
    """Run the bot by long polling getUpdates until `stop` is set; updates are handled concurrently."""
    stop = stop or asyncio.Event()
    tasks = TaskSet()
    offset: int | None = None
    failures = 0
    try:
        while not stop.is_set():
            fetch = asyncio.ensure_future(bot.client.get_updates(offset, timeout))
            stopped = asyncio.ensure_future(stop.wait())
            await asyncio.wait({fetch, stopped}, return_when=asyncio.FIRST_COMPLETED)
            stopped.cancel()
            if not fetch.done():
                # Updates are confirmed only by the next offset, so abandoning this call loses nothing.
                fetch.cancel()
                with contextlib.suppress(asyncio.CancelledError, TelegramError):
                    await fetch
                break
            try:
                updates = fetch.result()
            except TelegramError as exc:
                failures += 1
                log.error("telegram: getUpdates failed: %s", exc.message)
                await _wait(stop, bot.client.policy.backoff(failures))
                continue
            failures = 0
            for update in updates:
                update_id = update.get("update_id")
                if isinstance(update_id, int):
                    offset = max(offset or 0, update_id + 1)
                tasks.spawn(bot.handle_update(update), name=f"telegram-update-{update_id}")
    finally:
        await tasks.close()


async def _wait(stop: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), seconds)
