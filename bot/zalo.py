"""Zalo Official Account: signed webhook events in → plain-text replies of ≤ 2000 chars, token refreshed."""

from __future__ import annotations

import asyncio
import hashlib
import logging
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Literal, Protocol

import httpx

from bot.channels import (
    Conversations,
    backoff_delay,
    pack,
    prompt,
    source_links,
    split_text,
    store_call,
)
from bot.models import ChatResponse
from index.errors import BadQuery, UpstreamError

log = logging.getLogger(__name__)

ZALO_LIMIT = 2000
# The OA API reports a bad or expired token in its JSON body (HTTP 200), not with HTTP 401.
EXPIRED_TOKEN_ERRORS = frozenset({-216, -124})
TOKEN_NAMESPACE = "zalo:token"

Sleep = Callable[[float], Awaitable[Any]]


class TokenStore(Protocol):
    """Where refreshed tokens are shared between workers (bot.store, SQLite or Redis)."""

    def get_value(self, namespace: str, key: str) -> str | None: ...

    def set_value(self, namespace: str, key: str, value: str) -> None: ...


class ZaloError(UpstreamError):
    """An OA API call that failed for good."""

    def __init__(self, message: str, error: int | None = None) -> None:
        super().__init__(f"Zalo: {message}")
        self.error = error


class ZaloTokenExpired(ZaloError):
    """The access token is rejected and cannot be refreshed."""


def signature(app_id: str, body: bytes, timestamp: str, secret_key: str) -> str:
    """`mac=` + hex SHA-256 of app_id + raw body + timestamp + OA secret key."""
    digest = hashlib.sha256(app_id.encode() + body + timestamp.encode() + secret_key.encode()).hexdigest()
    return f"mac={digest}"


def verify_signature(
    header: str | None, body: bytes, event: dict[str, Any], app_id: str | None, secret_key: str | None
) -> bool:
    """Constant-time check of X-ZEvent-Signature; the timestamp is the one in the event body."""
    if not header or not secret_key:
        return False
    app = app_id or str(event.get("app_id") or "")
    timestamp = str(event.get("timestamp") or "")
    if not app or not timestamp:
        return False
    expected = signature(app, body, timestamp, secret_key)
    return secrets.compare_digest(header.strip().encode(), expected.encode())


@dataclass(frozen=True)
class ZaloEvent:
    event_name: str
    sender_id: str | None
    msg_id: str | None
    text: str | None
    timestamp: str


def parse_event(event: dict[str, Any]) -> ZaloEvent:
    sender: dict[str, Any] = event["sender"] if isinstance(event.get("sender"), dict) else {}
    message: dict[str, Any] = event["message"] if isinstance(event.get("message"), dict) else {}
    text = message.get("text")
    return ZaloEvent(
        event_name=str(event.get("event_name") or ""),
        sender_id=str(sender["id"]) if sender.get("id") is not None else None,
        msg_id=str(message["msg_id"]) if message.get("msg_id") is not None else None,
        text=text if isinstance(text, str) else None,
        timestamp=str(event.get("timestamp") or ""),
    )


Route = Literal["answer", "text_only", "ignore"]


def route(event: ZaloEvent) -> Route:
    """user_send_text is answered; other things a user sends get the text-only note; the rest is ignored."""
    if event.sender_id is None:
        return "ignore"
    if event.event_name == "user_send_text":
        return "answer" if event.text and event.text.strip() else "ignore"
    if event.event_name.startswith("user_send_"):
        return "text_only"
    return "ignore"


def format_plain(response: ChatResponse, public_url: str, limit: int = ZALO_LIMIT) -> list[str]:
    return plain_messages(response.answer, response, public_url, limit)


def plain_messages(
    text: str, response: ChatResponse | None, public_url: str, limit: int = ZALO_LIMIT
) -> list[str]:
    """Plain text split at `limit` characters on paragraph boundaries, numbered source links at the end."""
    blocks = split_text(text, limit)
    if response is not None and response.citations:
        lines = [prompt("sources_heading")]
        lines += [f"[{n}] {label}: {url}" for n, label, url in source_links(response.citations, public_url)]
        blocks.extend(pack([p for line in lines for p in split_text(line, limit)], limit, sep="\n"))
    return pack(blocks, limit)


class ZaloClient:
    """OA API calls over one shared httpx.AsyncClient: send text, retry 429/5xx, refresh an expired token.

    Zalo refresh tokens work only once, so a refreshed pair is kept in memory and in the shared store, where
    other workers find it instead of spending the old refresh token again.
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
        store: TokenStore | None = None,
        max_attempts: int = 4,
        backoff_base: float = 1.0,
        backoff_cap: float = 30.0,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        self.http = http
        self.api_base = api_base.rstrip("/")
        self.oauth_base = oauth_base.rstrip("/")
        self._access_token = access_token
        self._refresh_token = refresh_token
        self.app_id = app_id
        self._app_secret = app_secret
        self.store = store
        self.max_attempts = max_attempts
        self.backoff_base = backoff_base
        self.backoff_cap = backoff_cap
        self._sleep = sleep
        self._refresh_lock = asyncio.Lock()

    @property
    def access_token(self) -> str | None:
        return self._access_token

    async def send_text(self, user_id: str, text: str) -> dict[str, Any]:
        payload = {"recipient": {"user_id": user_id}, "message": {"text": text}}
        return await self._post_oa("/v3.0/oa/message/cs", payload)

    async def _post_oa(self, path: str, payload: dict[str, Any]) -> dict[str, Any]:
        refreshed = False
        error = ZaloError("not attempted")
        attempt = 0
        while attempt < self.max_attempts:
            token = self._access_token
            if not token:
                token = await self._stored("access")
                if not token:
                    raise ZaloTokenExpired("no access token configured (set KETLUAN_ZALO_ACCESS_TOKEN)")
                self._access_token = token
            last = attempt == self.max_attempts - 1
            attempt += 1
            try:
                response = await self.http.post(
                    self.api_base + path, json=payload, headers={"access_token": token}, timeout=15.0
                )
            except httpx.HTTPError as exc:
                error = ZaloError(f"network error ({type(exc).__name__})")
                if not last:
                    await self._sleep(backoff_delay(attempt - 1, self.backoff_base, self.backoff_cap))
                continue
            data = _json(response)
            code = _int(data.get("error"))
            if response.status_code == 401 or code in EXPIRED_TOKEN_ERRORS:
                if refreshed:
                    raise ZaloTokenExpired(
                        f"access token rejected after refresh ({data.get('message', '')})", code
                    )
                await self.refresh(token)
                refreshed = True
                attempt -= 1  # a refresh is not a failed attempt
                continue
            if response.status_code == 429 or response.status_code >= 500:
                error = ZaloError(f"HTTP {response.status_code}", code)
                if not last:
                    delay = _retry_after(response) or backoff_delay(
                        attempt - 1, self.backoff_base, self.backoff_cap
                    )
                    await self._sleep(delay)
                continue
            if response.status_code >= 400 or code:
                raise ZaloError(f"{data.get('message') or response.reason_phrase} (error {code})", code)
            return data
        raise error

    async def refresh(self, rejected: str | None) -> str:
        """A working access token in place of `rejected`: one another worker stored, else a refreshed one."""
        async with self._refresh_lock:
            if self._access_token and self._access_token != rejected:
                return self._access_token  # refreshed meanwhile by another task of this worker
            stored = await self._stored("access")
            if stored and stored != rejected:
                self._access_token = stored
                return stored
            candidates = [t for t in (await self._stored("refresh"), self._refresh_token) if t]
            if not candidates:
                log.error(
                    "zalo: the OA access token is expired or invalid and no refresh token is configured: "
                    "set KETLUAN_ZALO_REFRESH_TOKEN and KETLUAN_ZALO_APP_SECRET, "
                    "or a new KETLUAN_ZALO_ACCESS_TOKEN"
                )
                raise ZaloTokenExpired("access token expired and no refresh token configured")
            if not self._app_secret or not self.app_id:
                log.error(
                    "zalo: cannot refresh the OA access token: "
                    "set KETLUAN_ZALO_APP_ID and KETLUAN_ZALO_APP_SECRET"
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

    async def _stored(self, kind: str) -> str | None:
        if self.store is None:
            return None
        try:
            value = await store_call(self.store.get_value, TOKEN_NAMESPACE, kind)
        except Exception:
            log.warning("zalo: could not read the stored %s token", kind, exc_info=True)
            return None
        return str(value) if value else None

    async def _save(self, access: str, refresh: str) -> None:
        if self.store is None:
            return
        try:
            await store_call(self.store.set_value, TOKEN_NAMESPACE, "access", access)
            await store_call(self.store.set_value, TOKEN_NAMESPACE, "refresh", refresh)
        except Exception:
            log.warning("zalo: could not keep the refreshed token in the store", exc_info=True)


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


class ZaloBot:
    """Turns one webhook event into replies: route, dedupe by msg_id, answer, send; failures are logged."""

    def __init__(self, client: ZaloClient, conversations: Conversations, public_url: str) -> None:
        self.client = client
        self.conversations = conversations
        self.public_url = public_url

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
            if kind == "text_only":
                await self._send(event, [prompt("text_only")])
                return
            text = (event.text or "").strip()
            command = text.split()[0].lower() if text.startswith("/") else None
            if command == "/new":
                await self.conversations.reset(user_id)
                await self._send(event, [prompt("new_conversation")])
            elif command in ("/start", "/help"):
                await self._send(event, plain_messages(prompt("help"), None, self.public_url))
            else:
                try:
                    response = await self.conversations.ask(user_id, text)
                except BadQuery as exc:
                    log.info("zalo: unusable question in %s: %s", delivery, exc.message)
                    await self._send(event, [prompt("bad_question")])
                    return
                except Exception:
                    log.exception("zalo: answering message %s of user %s failed", delivery, user_id)
                    await self._send(event, [prompt("error")])
                    return
                await self._send(event, format_plain(response, self.public_url))
        except Exception:
            log.exception("zalo: could not handle event %s of user %s", delivery, user_id)

    async def _send(self, event: ZaloEvent, texts: list[str]) -> None:
        assert event.sender_id is not None
        for part, text in enumerate(texts, 1):
            try:
                await self.client.send_text(event.sender_id, text)
            except ZaloError as exc:
                log.error(
                    "zalo: reply part %d/%d to user %s (msg_id %s) could not be sent: %s",
                    part, len(texts), event.sender_id, event.msg_id, exc.message,
                )  # fmt: skip
                return
