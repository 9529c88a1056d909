"""Zalo Official Account: signed webhook events in → replies of ≤ 2000 chars with buttons, tokens refreshed.

The contract, from Zalo's own SDKs (zaloplatform/zalo-php-sdk `src/Builder/MessageBuilder.php`) and the OA
API: a reply is `POST /v3.0/oa/message/cs` with `{"recipient": {"message_id": <msg_id of the user's
message>}, "message": {"text": …}}` — a reply to a message is free within Zalo's window after it, whereas
`{"recipient": {"user_id": …}}` is a proactive message that spends the OA's quota. Buttons ride on the
message as `"attachment": {"type": "template", "payload": {"buttons": [...]}}`, at most 5, each
`oa.open.url` (payload {"url"}) or `oa.query.show` (payload: the text the user then sends). Errors come
back as `{"error": <negative code>, "message": …}` with HTTP 200.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import re
import secrets
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import httpx

from bot.channels import (
    COMMAND_ALIASES,
    Command,
    Conversations,
    agency_tasks,
    pack,
    prompt,
    reachable_from_a_phone,
    slash_command,
    source_links,
    split_text,
    spoken_command,
    suggestions_of,
    task_blocks,
    unknown_agency_text,
)
from bot.models import ChatResponse
from bot.reminders import Follows
from bot.retry import RetryLater, RetryPolicy, with_retries
from bot.state import BotState, Subscription, held
from index.errors import BadQuery, UpstreamError
from index.tasks import UnknownAgency

log = logging.getLogger(__name__)

ZALO_LIMIT = 2000
# Invalid / expired access token, reported in the JSON body of an HTTP 200 (-124 by older API versions).
EXPIRED_TOKEN_ERRORS = frozenset({-216, -220, -124})
RATE_LIMITED_ERRORS = frozenset({-32})
TOKEN_KEY = "zalo:tokens"  # the current {"access", "refresh"} pair, shared by every worker
REFRESH_LOCK = "zalo:refresh"
MAX_BUTTONS = 5
MAX_SUGGESTION_BUTTONS = 3
BUTTON_TITLE_CHARS = 100

Sleep = Callable[[float], Awaitable[Any]]


class ZaloError(UpstreamError):
    """An OA API call that failed for good."""

    def __init__(self, message: str, error: int | None = None) -> None:
        super().__init__(f"Zalo: {message}")
        self.error = error


class ZaloTokenExpired(ZaloError):
    """The access token is rejected and cannot be refreshed."""


class _TokenRejected(Exception):
    def __init__(self, token: str, code: int, message: str) -> None:
        super().__init__(message)
        self.token, self.code = token, code


# --- webhook signatures ---------------------------------------------------------------------------
def signature(app_id: str, body: bytes, timestamp: str, secret_key: str) -> str:
    """`mac=` + hex SHA-256 of app_id + raw body + timestamp + OA secret key."""
    digest = hashlib.sha256(app_id.encode() + body + timestamp.encode() + secret_key.encode()).hexdigest()
    return f"mac={digest}"


_TIMESTAMP = re.compile(rb'"timestamp"\s*:\s*"?(\d{1,20})"?')
_APP_ID = re.compile(rb'"app_id"\s*:\s*"?([0-9A-Za-z_-]{1,64})"?')


def verify_raw(header: str | None, body: bytes, app_id: str | None, secret_key: str | None) -> str | None:
    """The signed timestamp when X-ZEvent-Signature matches the raw body, else None; the body is not
    parsed (a hostile body costs a regular-expression scan, not a JSON parse). The timestamp is taken from
    the body with a narrow pattern; the caller checks it is the event's own once the body is parsed."""
    if not header or not secret_key:
        return None
    apps = [app_id] if app_id else [m.decode() for m in _APP_ID.findall(body)[:2]]
    given = header.strip().encode()
    for app in apps:
        for timestamp in [m.decode() for m in _TIMESTAMP.findall(body)[:4]]:
            if secrets.compare_digest(given, signature(app, body, timestamp, secret_key).encode()):
                return timestamp
    return None


def verify_signature(
    header: str | None, body: bytes, event: dict[str, Any], app_id: str | None, secret_key: str | None
) -> bool:
    """Constant-time check of X-ZEvent-Signature for a parsed event (its own timestamp)."""
    signed = verify_raw(header, body, app_id or str(event.get("app_id") or "") or None, secret_key)
    return signed is not None and signed == str(event.get("timestamp") or "")


def is_fresh(timestamp: str, max_age_seconds: float, now: float | None = None) -> bool:
    """An event timestamp (milliseconds) within max_age of now, either way (clocks drift)."""
    try:
        at = int(timestamp) / 1000.0
    except ValueError:
        return False
    return abs((time.time() if now is None else now) - at) <= max_age_seconds


# --- events -----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ZaloEvent:
    event_name: str
    sender_id: str | None  # the user: sender.id, follower.id (follow) or user_id (user_click_chatnow)
    msg_id: str | None
    text: str | None
    timestamp: str


def parse_event(event: dict[str, Any]) -> ZaloEvent:
    sender: dict[str, Any] = event["sender"] if isinstance(event.get("sender"), dict) else {}
    follower: dict[str, Any] = event["follower"] if isinstance(event.get("follower"), dict) else {}
    message: dict[str, Any] = event["message"] if isinstance(event.get("message"), dict) else {}
    text = message.get("text")
    user = sender.get("id") or follower.get("id") or event.get("user_id")
    return ZaloEvent(
        event_name=str(event.get("event_name") or ""),
        sender_id=str(user) if user is not None and not isinstance(user, (dict, list)) else None,
        msg_id=str(message["msg_id"]) if message.get("msg_id") is not None else None,
        text=text if isinstance(text, str) else None,
        timestamp=str(event.get("timestamp") or ""),
    )


Route = Literal["answer", "text_only", "greet", "ignore"]


def route(event: ZaloEvent) -> Route:
    """user_send_text is answered; other things a user sends privately get the text-only note; following
    the OA or opening its chat gets the greeting; the rest is ignored.

    Group events (`user_send_group_*`) are ignored: they come from Zalo group chats the OA is a member of
    (a paid group-messaging feature), where nobody addressed the bot, and answering them privately would
    message people who never wrote to the OA."""
    if event.sender_id is None:
        return "ignore"
    if event.event_name.startswith("user_send_group"):
        return "ignore"
    if event.event_name == "user_send_text":
        return "answer" if event.text and event.text.strip() else "ignore"
    if event.event_name.startswith("user_send_"):
        return "text_only"
    if event.event_name in ("follow", "user_click_chatnow"):
        return "greet"
    return "ignore"


def command_of(text: str) -> Command | None:
    found = slash_command(text)
    if found is not None:
        name = COMMAND_ALIASES.get(found[0], "help")
        return Command(name, found[2])
    return spoken_command(text)


# --- formatting -------------------------------------------------------------------------------------
def format_plain(response: ChatResponse, public_url: str, limit: int = ZALO_LIMIT) -> list[str]:
    return plain_messages(response.answer, response, public_url, limit)


def plain_messages(
    text: str, response: ChatResponse | None, public_url: str, limit: int = ZALO_LIMIT
) -> list[str]:
    return plain_blocks([text], response, public_url, limit)


def plain_blocks(
    texts: Sequence[str], response: ChatResponse | None, public_url: str, limit: int = ZALO_LIMIT
) -> list[str]:
    """Plain text split at `limit` characters on paragraph boundaries, numbered source links at the end."""
    blocks = [p for text in texts for p in split_text(text, limit)]
    if response is not None and response.citations:
        lines = [prompt("sources_heading")]
        lines += [f"[{n}] {label}: {url}" for n, label, url in source_links(response.citations, public_url)]
        blocks.extend(pack([p for line in lines for p in split_text(line, limit)], limit, sep="\n"))
    return pack(blocks, limit)


def _title(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= BUTTON_TITLE_CHARS else text[: BUTTON_TITLE_CHARS - 1].rstrip() + "…"


def buttons(response: ChatResponse, public_url: str) -> list[dict[str, Any]]:
    """Template buttons: suggested questions (oa.query.show) first, then sources (oa.open.url), ≤ 5."""
    out: list[dict[str, Any]] = [
        {"title": _title(q), "type": "oa.query.show", "payload": q.strip()[:ZALO_LIMIT]}
        for q in suggestions_of(response)[:MAX_SUGGESTION_BUTTONS]
    ]
    for n, label, url in source_links(response.citations, public_url):
        if len(out) >= MAX_BUTTONS:
            break
        if reachable_from_a_phone(url):
            out.append({"title": _title(f"[{n}] {label}"), "type": "oa.open.url", "payload": {"url": url}})
    return out


# --- the client ---------------------------------------------------------------------------------------
class ZaloClient:
    """OA API calls over one shared httpx.AsyncClient: send, retry 429/5xx/-32, refresh a rejected token.

    Zalo refresh tokens work only once, so the refresh is done under a lock every worker shares
    (bot.state: Redis or SQLite), and the new pair is kept in the bot state, where other workers find it
    instead of spending the old refresh token again.
    """

    def __init__(
        self,
        http: httpx.AsyncClient,
        *,
        access_token: str | None,
        api_base: str = "https://openapi.zalo.me",
        oauth_base: str = "https://oauth.zaloapp.com",
        refresh_token: str | None = None,
        app_id: str | None = None,
        app_secret: str | None = None,
        state: BotState | None = None,
        max_attempts: int = 4,
        backoff_base: float = 1.0,
        backoff_cap: float = 30.0,
        lock_wait: float = 30.0,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        self.http = http
        self.api_base = api_base.rstrip("/")
        self.oauth_base = oauth_base.rstrip("/")
        self._access_token = access_token
        self._refresh_token = refresh_token
        self.app_id = app_id
        self._app_secret = app_secret
        self.state = state
        self.policy = RetryPolicy(max_attempts, backoff_base, backoff_cap)
        self.lock_wait = lock_wait
        self._sleep = sleep
        self._refresh_lock = asyncio.Lock()

    @property
    def access_token(self) -> str | None:
        return self._access_token

    async def send(
        self, recipient: dict[str, str], text: str, template_buttons: Sequence[dict[str, Any]] = ()
    ) -> dict[str, Any]:
        message: dict[str, Any] = {"text": text}
        if template_buttons:
            message["attachment"] = {"type": "template", "payload": {"buttons": list(template_buttons)}}
        return await self._post_oa("/v3.0/oa/message/cs", {"recipient": recipient, "message": message})

    async def reply(
        self, msg_id: str, text: str, template_buttons: Sequence[dict[str, Any]] = ()
    ) -> dict[str, Any]:
        """A reply to the user's message `msg_id`: counts as a reply, not a proactive (paid) message."""
        return await self.send({"message_id": msg_id}, text, template_buttons)

    async def send_text(self, user_id: str, text: str) -> dict[str, Any]:
        """A message the user did not just ask for (greeting, reminder): spends the OA's quota."""
        return await self.send({"user_id": user_id}, text)

    async def _post_oa(self, path: str, payload: dict[str, Any]) -> dict[str, Any]:
        try:
            return await with_retries(
                lambda: self._attempt(path, payload), self.policy, self._sleep, what="zalo"
            )
        except _TokenRejected as rejected:
            await self.refresh(rejected.token)
        try:
            return await with_retries(
                lambda: self._attempt(path, payload), self.policy, self._sleep, what="zalo"
            )
        except _TokenRejected as again:
            raise ZaloTokenExpired(f"access token rejected after refresh ({again})", again.code) from None

    async def _attempt(self, path: str, payload: dict[str, Any]) -> dict[str, Any]:
        token = self._access_token or (await self._stored()).get("access")
        if not token:
            raise ZaloTokenExpired("no access token configured (set KETLUAN_ZALO_ACCESS_TOKEN)")
        self._access_token = token
        try:
            response = await self.http.post(
                self.api_base + path, json=payload, headers={"access_token": token}, timeout=15.0
            )
        except httpx.HTTPError as exc:
            raise RetryLater(ZaloError(f"network error ({type(exc).__name__})")) from None
        data = _json(response)
        code = _int(data.get("error"))
        message = str(data.get("message") or response.reason_phrase or "")
        if response.status_code == 401 or code in EXPIRED_TOKEN_ERRORS:
            raise _TokenRejected(token, code, f"{message} (error {code})")
        if response.status_code == 429 or response.status_code >= 500:
            raise RetryLater(ZaloError(f"HTTP {response.status_code}", code or None), _retry_after(response))
        if code in RATE_LIMITED_ERRORS:
            raise RetryLater(ZaloError(f"rate limited: {message} (error {code})", code))
        if response.status_code >= 400 or code:
            raise ZaloError(f"{message} (error {code})", code)
        return data

    async def refresh(self, rejected: str | None) -> str:
        """A working access token in place of `rejected`: one another worker stored, else a refreshed one."""
        async with self._refresh_lock:
            if self._access_token and self._access_token != rejected:
                return self._access_token  # refreshed meanwhile by another task of this worker
            fresh = await self._stored_access(rejected)
            if fresh:
                return fresh
            if self.state is None:
                return await self._refresh()
            async with held(self.state, REFRESH_LOCK, ttl=60.0, wait=self.lock_wait) as locked:
                fresh = await self._stored_access(rejected)  # the lock's previous holder may have refreshed
                if fresh:
                    return fresh
                if not locked:
                    raise ZaloTokenExpired("another worker is refreshing the access token; try again later")
                return await self._refresh()

    async def _stored_access(self, rejected: str | None) -> str | None:
        stored = (await self._stored()).get("access")
        if stored and stored != rejected:
            self._access_token = stored
            return stored
        return None

    async def _refresh(self) -> str:
        candidates = [t for t in ((await self._stored()).get("refresh"), self._refresh_token) if t]
        if not candidates:
            log.error(
                "zalo: the OA access token is expired or invalid and no refresh token is configured: "
                "set KETLUAN_ZALO_REFRESH_TOKEN and KETLUAN_ZALO_APP_SECRET, "
                "or a new KETLUAN_ZALO_ACCESS_TOKEN"
            )
            raise ZaloTokenExpired("access token expired and no refresh token configured")
        if not self._app_secret or not self.app_id:
            log.error(
                "zalo: cannot refresh the OA access token: set KETLUAN_ZALO_APP_ID and KETLUAN_ZALO_APP_SECRET"
            )
            raise ZaloTokenExpired("access token expired and no app id / app secret to refresh it")
        failure = "no refresh token"
        for refresh_token in dict.fromkeys(candidates):
            try:
                response = await self.http.post(
                    f"{self.oauth_base}/v4/oa/access_token",
                    data={
                        "app_id": self.app_id,
                        "grant_type": "refresh_token",
                        "refresh_token": refresh_token,
                    },
                    headers={"secret_key": self._app_secret},
                    timeout=15.0,
                )
            except httpx.HTTPError as exc:
                failure = f"network error ({type(exc).__name__})"
                continue
            data = _json(response)
            access = data.get("access_token")
            if response.status_code == 200 and isinstance(access, str) and access:
                self._access_token = access
                self._refresh_token = str(data.get("refresh_token") or refresh_token)
                await self._save(access, self._refresh_token)
                log.info("zalo: OA access token refreshed")
                return access
            failure = str(
                data.get("error_description") or data.get("message") or f"HTTP {response.status_code}"
            )
        log.error("zalo: refreshing the OA access token failed: %s", failure)
        raise ZaloTokenExpired(f"token refresh failed: {failure}")

    async def _stored(self) -> dict[str, str]:
        if self.state is None:
            return {}
        try:
            raw = await asyncio.to_thread(self.state.get, TOKEN_KEY)
            pair = json.loads(raw) if raw else {}
        except Exception:
            log.warning("zalo: could not read the stored token pair", exc_info=True)
            return {}
        return (
            {k: str(v) for k, v in pair.items() if isinstance(v, str) and v} if isinstance(pair, dict) else {}
        )

    async def _save(self, access: str, refresh: str) -> None:
        if self.state is None:
            return
        try:
            pair = json.dumps({"access": access, "refresh": refresh})
            await asyncio.to_thread(self.state.put, TOKEN_KEY, pair)
        except Exception:
            log.error(
                "zalo: could not keep the refreshed token pair; other workers will not see it", exc_info=True
            )


def _json(response: httpx.Response) -> dict[str, Any]:
    try:
        data = response.json()
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


def _int(value: Any) -> int:
    try:
        return int(value or 0)
    except (TypeError, ValueError):
        return 0


def _retry_after(response: httpx.Response) -> float | None:
    try:
        return max(0.0, float(response.headers["Retry-After"]))
    except (KeyError, ValueError):
        return None


# --- the bot --------------------------------------------------------------------------------------------
class ZaloBot:
    """Turns one webhook event into replies: route, dedupe by msg_id, answer, send; failures are logged."""

    def __init__(
        self,
        client: ZaloClient,
        conversations: Conversations,
        public_url: str,
        *,
        follows: Follows | None = None,
    ) -> None:
        self.client = client
        self.conversations = conversations
        self.public_url = public_url
        self.follows = follows

    async def handle_event(self, data: dict[str, Any]) -> None:
        event = parse_event(data)
        kind = route(event)
        if kind == "ignore" or event.sender_id is None:
            return
        user_id = event.sender_id
        delivery = event.msg_id or f"{event.event_name}:{user_id}:{event.timestamp}"
        try:
            if not await self.conversations.first_delivery(delivery):
                log.info("zalo: event %s already handled, ignoring the redelivery", delivery)
                return
            if kind == "greet":
                await self._send(event, plain_messages(prompt("help"), None, self.public_url))
            elif kind == "text_only":
                await self._send(event, [prompt("text_only")])
            else:
                await self._text(event, (event.text or "").strip())
        except Exception:
            log.exception("zalo: could not handle event %s of user %s", delivery, user_id)

    async def _text(self, event: ZaloEvent, text: str) -> None:
        assert event.sender_id is not None
        command = command_of(text)
        name = command.name if command else "ask"
        if name == "new":
            await self.conversations.reset(event.sender_id)
            await self._send(event, [prompt("new_conversation")])
        elif name in ("start", "help") or (name == "ask" and command is not None and not command.argument):
            await self._send(event, plain_messages(prompt("help"), None, self.public_url))
        elif name == "tasks":
            await self._tasks(event, command.argument if command else "")
        elif name in ("follow", "unfollow"):
            await self._follow(event, name, command.argument if command else "")
        else:
            await self._answer(event, command.argument if command else text)

    async def _answer(self, event: ZaloEvent, question: str) -> None:
        try:
            response = await self.conversations.ask(str(event.sender_id), question)
        except BadQuery as exc:
            log.info("zalo: unusable question in %s: %s", event.msg_id, exc.message)
            await self._send(event, [prompt("bad_question")])
            return
        except Exception:
            log.exception("zalo: answering message %s of user %s failed", event.msg_id, event.sender_id)
            await self._send(event, [prompt("error")])
            return
        await self._send(event, format_plain(response, self.public_url), buttons(response, self.public_url))

    async def _tasks(self, event: ZaloEvent, agency: str) -> None:
        if not agency:
            await self._send(event, [prompt("tasks_usage")])
            return
        try:
            name, directives = agency_tasks(self.conversations.tasks(), agency)
        except UnknownAgency as exc:
            await self._send(event, [unknown_agency_text(agency, exc.suggestions)])
            return
        except Exception:
            log.exception("zalo: listing the tasks of %r failed", agency)
            await self._send(event, [prompt("error")])
            return
        await self._send(
            event, plain_blocks(task_blocks(name, directives, self.public_url), None, self.public_url)
        )

    async def _follow(self, event: ZaloEvent, kind: str, agency: str) -> None:
        if self.follows is None:
            await self._send(event, [prompt("error")])
            return
        where = Subscription("zalo", str(event.sender_id), "")
        try:
            text = await self.follows.handle(kind, where, agency, self.conversations.tasks)
        except Exception:
            log.exception("zalo: /%s %r of user %s failed", kind, agency, event.sender_id)
            text = prompt("error")
        await self._send(event, [text])

    async def send_reminder(self, subscription: Subscription, texts: list[str]) -> None:
        """A reminder (no message to reply to, so a proactive message) to a user who follows an agency."""
        for text in plain_blocks(texts, None, self.public_url):
            await self.client.send_text(subscription.chat, text)

    async def _send(
        self, event: ZaloEvent, texts: list[str], template_buttons: Sequence[dict[str, Any]] = ()
    ) -> None:
        """Every part replies to the user's message (msg_id) when there is one; the last has the buttons."""
        assert event.sender_id is not None
        recipient = {"message_id": event.msg_id} if event.msg_id else {"user_id": event.sender_id}
        for part, text in enumerate(texts, 1):
            try:
                await self.client.send(recipient, text, template_buttons if part == len(texts) else ())
            except ZaloError as exc:
                log.error(
                    "zalo: reply part %d/%d to user %s (msg_id %s) could not be sent: %s",
                    part, len(texts), event.sender_id, event.msg_id, exc.message,
                )  # fmt: skip
                return
