"""Telegram Bot API: updates in → whom to answer and how (HTML below 4096 chars) → a retrying client."""

from __future__ import annotations

import asyncio
import contextlib
import html
import logging
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Literal

import httpx

from bot.channels import Conversations, TaskSet, backoff_delay, pack, prompt, source_links, split_text
from bot.models import ChatResponse
from index.errors import BadQuery, UpstreamError

log = logging.getLogger(__name__)

# Telegram refuses texts above 4096 characters (UTF-16 units); the HTML tags count against us here, so a
# margin below the hard limit keeps every part safe whatever entities parsing does.
TELEGRAM_LIMIT = 4000

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
    """The parts of a Telegram `message` update the bot looks at."""

    update_id: int
    chat_id: int
    chat_type: str
    message_id: int
    text: str | None
    entities: list[dict[str, Any]] = field(default_factory=list)
    from_is_bot: bool = False
    reply_to_user_id: int | None = None

    @property
    def is_private(self) -> bool:
        return self.chat_type == "private"


def parse_update(update: dict[str, Any]) -> TelegramMessage | None:
    """The new message of an update, or None for edits, channel posts, callbacks and anything malformed."""
    message = update.get("message")
    if not isinstance(message, dict):
        return None
    chat = message.get("chat") or {}
    sender = message.get("from") or {}
    reply = message.get("reply_to_message") or {}
    try:
        return TelegramMessage(
            update_id=int(update["update_id"]),
            chat_id=int(chat["id"]),
            chat_type=str(chat.get("type", "private")),
            message_id=int(message["message_id"]),
            text=message.get("text") if isinstance(message.get("text"), str) else None,
            entities=[e for e in message.get("entities") or [] if isinstance(e, dict)],
            from_is_bot=bool(sender.get("is_bot", False)),
            reply_to_user_id=(reply.get("from") or {}).get("id"),
        )
    except (KeyError, TypeError, ValueError):
        return None


def _entity_text(text: str, entity: dict[str, Any]) -> str:
    """Entity offsets count UTF-16 code units, not Python characters (they differ for emoji)."""
    raw = text.encode("utf-16-le")
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


COMMANDS = ("start", "help", "new")


@dataclass(frozen=True)
class Action:
    kind: Literal["command", "ask", "text_only"]
    value: str = ""


def parse_command(text: str) -> tuple[str, str | None] | None:
    """("help", "mybot") for "/help@mybot …", ("help", None) for "/help"; None when it is no command."""
    match = re.match(r"^/([A-Za-z0-9_]+)(?:@([A-Za-z0-9_]+))?(?:\s|$)", text)
    if not match:
        return None
    return match.group(1).lower(), match.group(2)


def decide(message: TelegramMessage, me: BotIdentity | None) -> Action | None:
    """What to do with a message: private chats get every text answered; groups only when the bot is
    mentioned or replied to (or a command is addressed to it). `me` may be None only for private chats."""
    if message.from_is_bot:
        return None
    if message.text is None or not message.text.strip():
        return Action("text_only") if message.is_private else None
    text = message.text.strip()
    command = parse_command(text)
    if command is not None:
        name, target = command
        if target is not None and (me is None or target.lower() != me.username.lower()):
            return None  # addressed to another bot in the group
        if name in COMMANDS:
            return Action("command", name)
        if message.is_private or target is not None:
            return Action("command", "help")
        return None
    if message.is_private:
        return Action("ask", text)
    if me is None:
        return None
    if mentions(message, me) or message.reply_to_user_id == me.id:
        question = strip_mention(text, me.username)
        return Action("ask", question) if question else Action("command", "help")
    return None


def _utf16_len(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def format_html(response: ChatResponse, public_url: str, limit: int = TELEGRAM_LIMIT) -> list[str]:
    """The answer as HTML-escaped messages split at paragraph boundaries, then numbered source links."""
    return html_messages(response.answer, response, public_url, limit)


def html_messages(
    text: str, response: ChatResponse | None, public_url: str, limit: int = TELEGRAM_LIMIT
) -> list[str]:
    def escaped_len(piece: str) -> int:
        return _utf16_len(html.escape(piece, quote=False))

    blocks = [html.escape(p, quote=False) for p in split_text(text, limit, escaped_len)]
    if response is not None and response.citations:
        lines = [f"<b>{html.escape(prompt('sources_heading'), quote=False)}</b>"]
        for n, label, url in source_links(response.citations, public_url):
            lines.append(
                f'[{n}] <a href="{html.escape(url, quote=True)}">{html.escape(label, quote=False)}</a>'
            )
        # A source line is never cut: it is far shorter than the limit, and cutting would break its tag.
        blocks.extend(pack(lines, limit, _utf16_len, sep="\n"))
    return pack(blocks, limit, _utf16_len)


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
        self.max_attempts = max_attempts
        self.backoff_base = backoff_base
        self.backoff_cap = backoff_cap
        self.max_retry_after = max_retry_after
        self._sleep = sleep

    async def call(self, method: str, payload: dict[str, Any] | None = None, *, timeout: float = 30.0) -> Any:
        url = f"{self.api_base}/bot{self._token}/{method}"
        error = TelegramError(method, "not attempted")
        for attempt in range(self.max_attempts):
            last = attempt == self.max_attempts - 1
            try:
                response = await self.http.post(url, json=payload or {}, timeout=timeout)
            except httpx.HTTPError as exc:
                # Never str(exc) with the URL: it holds the bot token.
                error = TelegramError(method, f"network error ({type(exc).__name__})")
                if not last:
                    await self._sleep(backoff_delay(attempt, self.backoff_base, self.backoff_cap))
                continue
            data = _json(response)
            if response.status_code == 200 and data.get("ok") is True:
                return data.get("result")
            description = str(data.get("description") or response.reason_phrase or "error")
            status = int(data.get("error_code") or response.status_code)
            if status == 429:
                retry_after = _retry_after(data, response)
                error = TelegramError(method, description, status, retry_after)
                if retry_after > self.max_retry_after:
                    raise error
                if not last:
                    log.warning("telegram %s: rate limited, retrying after %.1fs", method, retry_after)
                    await self._sleep(retry_after)
                continue
            if status >= 500:
                error = TelegramError(method, description, status)
                if not last:
                    await self._sleep(backoff_delay(attempt, self.backoff_base, self.backoff_cap))
                continue
            raise TelegramError(method, description, status)  # 400, 403 …: retrying will not help
        raise error

    async def get_me(self) -> BotIdentity:
        result = await self.call("getMe")
        return BotIdentity(id=int(result["id"]), username=str(result.get("username", "")))

    async def send_message(self, chat_id: int, text: str, reply_to_message_id: int | None = None) -> Any:
        payload: dict[str, Any] = {
            "chat_id": chat_id,
            "text": text,
            "parse_mode": "HTML",
            "disable_web_page_preview": True,
        }
        if reply_to_message_id is not None:
            payload["reply_to_message_id"] = reply_to_message_id
            payload["allow_sending_without_reply"] = True
        return await self.call("sendMessage", payload)

    async def send_chat_action(self, chat_id: int, action: str = "typing") -> Any:
        return await self.call("sendChatAction", {"chat_id": chat_id, "action": action})

    async def set_webhook(self, url: str, secret_token: str, *, drop_pending_updates: bool = False) -> Any:
        return await self.call(
            "setWebhook",
            {
                "url": url,
                "secret_token": secret_token,
                "allowed_updates": ["message"],
                "drop_pending_updates": drop_pending_updates,
            },
        )

    async def delete_webhook(self) -> Any:
        return await self.call("deleteWebhook", {"drop_pending_updates": False})

    async def get_webhook_info(self) -> Any:
        return await self.call("getWebhookInfo")

    async def get_updates(self, offset: int | None, timeout: int = 30) -> list[dict[str, Any]]:
        payload: dict[str, Any] = {"timeout": timeout, "allowed_updates": ["message"]}
        if offset is not None:
            payload["offset"] = offset
        result = await self.call("getUpdates", payload, timeout=timeout + 15)
        return [u for u in result or [] if isinstance(u, dict)]


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
    ) -> None:
        self.client = client
        self.conversations = conversations
        self.public_url = public_url
        self.typing_interval = typing_interval
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
        if action.kind == "text_only":
            await self._send(message, [html.escape(prompt("text_only"), quote=False)])
        elif action.kind == "command" and action.value == "new":
            await self.conversations.reset(chat_key)
            await self._send(message, [html.escape(prompt("new_conversation"), quote=False)])
        elif action.kind == "command":
            await self._send(message, html_messages(prompt("help"), None, self.public_url))
        else:
            async with self._typing(message.chat_id):
                try:
                    response = await self.conversations.ask(chat_key, action.value)
                except BadQuery as exc:
                    log.info("telegram: unusable question in update %s: %s", message.update_id, exc.message)
                    texts = [html.escape(prompt("bad_question"), quote=False)]
                except Exception:
                    log.exception(
                        "telegram: answering update %s of chat %s failed", message.update_id, message.chat_id
                    )
                    texts = [html.escape(prompt("error"), quote=False)]
                else:
                    texts = format_html(response, self.public_url)
            await self._send(message, texts)

    @contextlib.asynccontextmanager
    async def _typing(self, chat_id: int) -> AsyncIterator[None]:
        """Keep "typing…" shown (Telegram clears it after 5 s) until the answer is ready."""

        async def keep_typing() -> None:
            while True:
                try:
                    await self.client.send_chat_action(chat_id, "typing")
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

    async def _send(self, message: TelegramMessage, texts: list[str]) -> None:
        reply_to = None if message.is_private else message.message_id
        for part, text in enumerate(texts, 1):
            try:
                await self.client.send_message(message.chat_id, text, reply_to_message_id=reply_to)
            except TelegramError as exc:
                log.error(
                    "telegram: reply part %d/%d to chat %s (update %s) could not be sent: %s",
                    part, len(texts), message.chat_id, message.update_id, exc.message,
                )  # fmt: skip
                return
            reply_to = None  # only the first part quotes the question


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
                await _wait(stop, backoff_delay(failures, bot.client.backoff_base, bot.client.backoff_cap))
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
