"""ASGI middleware: request metrics around everything; the client's address (through trusted proxies), body
size and time limits, API keys, failed-authentication throttling and rate limits on /v1/*.

Rate-limit buckets (docs/http.md explains the design):
- a valid API key (when KETLUAN_API_KEYS is set) has its own bucket of `rate_limit_per_minute`;
- otherwise the client's address has one, whatever bearer token is sent (a made-up token gets nothing);
- a chat request that names an existing conversation counts against that conversation's bucket instead,
  under a ceiling per address, so one office behind one NAT is not limited as one client.
"""

from __future__ import annotations

import contextlib
import hashlib
import ipaddress
import json
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import anyio
import anyio.to_thread
from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.errors import RateLimited, TooLarge, Unauthorized, to_response
from api.metrics import Metrics
from bot.stores import Stores
from index.errors import NotFound

_BODY_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
_CHAT_PATHS = frozenset({"/v1/chat", "/v1/chat/stream"})
Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class MetricsMiddleware:
    """Counts and times every HTTP request by route template (not raw path, to bound label cardinality)."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            route = scope.get("route")
            template = getattr(route, "path", None) or scope.get("ketluan.rejected") or "<unmatched>"
            self.metrics.observe_request(scope["method"], template, status, time.perf_counter() - started)


@dataclass(frozen=True)
class Limits:
    """Requests a minute: per client (valid key, else address), per conversation, and per address in all."""

    per_client: int
    per_conversation: int
    per_address: int
    auth_failures: int
    feedback: int = 20


def parse_networks(value: str) -> list[Network]:
    """`10.0.0.0/8, 127.0.0.1` → networks; ValueError names a bad entry."""
    networks = []
    for item in value.split(","):
        if item.strip():
            try:
                networks.append(ipaddress.ip_network(item.strip(), strict=False))
            except ValueError as exc:
                raise ValueError(f"not an address or network: {item.strip()!r}") from exc
    return networks


def client_address(peer: str, forwarded_for: str | None, trusted: list[Network]) -> str:
    """The client's address: the peer's, unless the peer is a trusted proxy; then the nearest address in
    X-Forwarded-For that is not a trusted proxy (the entries further left are the client's to invent)."""
    if not trusted or not forwarded_for or not _within(peer, trusted):
        return peer
    hops = [h.strip() for h in forwarded_for.split(",") if h.strip()]
    for hop in reversed(hops):
        try:
            ipaddress.ip_address(hop)
        except ValueError:
            return peer  # a malformed entry: believe nothing further left
        if not _within(hop, trusted):
            return hop
    return hops[0] if hops else peer


def _within(address: str, networks: list[Network]) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in n for n in networks)


class GuardMiddleware:
    """Rejects what should not reach a route: bodies over `max_body_bytes` (declared or streamed) or slower
    than `body_timeout` seconds, and on /v1/* requests without a configured Bearer key, from an address
    with too many failed keys, or over a rate limit. Sets `scope["client"]` to the real client's address."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        max_body_bytes: int,
        api_keys: list[str],
        limits: Limits,
        stores: Callable[[], Stores | None],
        trusted_proxies: list[Network] | None = None,
        body_timeout: float = 10.0,
        metrics: Metrics | None = None,
        admin_keys: list[str] | None = None,
        admin_max_body_bytes: int | None = None,
    ) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.api_keys = [k.encode() for k in api_keys]
        self.admin_keys = [k.encode() for k in admin_keys or []]
        self.admin_max_body_bytes = admin_max_body_bytes or max_body_bytes
        self.limits = limits
        self.stores = stores
        self.trusted = trusted_proxies or []
        self.body_timeout = body_timeout
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        peer = scope["client"] if scope.get("client") else ("unknown", 0)
        address = client_address(peer[0], headers.get("x-forwarded-for"), self.trusted)
        scope["client"] = (address, peer[1])
        path = scope["path"]
        # /v1/admin/* needs an admin key; /v1/admin/reload keeps its older rule while administration is off
        admin = path.startswith("/v1/admin/") and (bool(self.admin_keys) or path != "/v1/admin/reload")
        limit = self.admin_max_body_bytes if admin else self.max_body_bytes
        if scope["method"] in _BODY_METHODS:
            declared = headers.get("content-length", "")
            if declared.isdigit() and int(declared) > limit:
                await self._reject(TooLarge(self._too_large(limit)), scope, receive, send)
                return
            receive = self._limited(receive, limit)
        if admin and scope["method"] != "OPTIONS":
            refused = await self._check_admin(headers, address)
            if refused is not None:
                await self._reject(refused, scope, receive, send)
                return
        elif path.startswith("/v1/") and scope["method"] != "OPTIONS":
            refused, receive = await self._check(scope, receive, headers, address)
            if refused is not None:
                await self._reject(refused, scope, receive, send)
                return
        await self.app(scope, receive, send)

    # --- keys and rate limits -----------------------------------------------------------------------
    async def _check_admin(self, headers: Headers, address: str) -> Exception | None:
        """An admin key (never an API key), compared in constant time; wrong keys from one address are
        counted, and past `auth_failures` a minute even a right key waits."""
        if not self.admin_keys:
            return NotFound("administration is disabled: set KETLUAN_ADMIN_KEYS to enable it")
        stores = self.stores()
        failures = "adminfail:" + address
        if stores is not None:
            blocked, wait = await _run(stores.rates.rate_exceeded, failures, self.limits.auth_failures, 60)
            if blocked:
                return self._limited_by(wait, "too many failed admin keys from this address")
        key = _bearer(headers.get("authorization", ""))
        if self._matches(key, self.admin_keys):
            return None
        if stores is not None:
            await _run(stores.rates.rate_limit, failures, self.limits.auth_failures, 60)
        return Unauthorized("missing Authorization: Bearer header" if key is None else "unknown admin key")

    async def _check(
        self, scope: Scope, receive: Receive, headers: Headers, address: str
    ) -> tuple[Exception | None, Receive]:
        stores = self.stores()
        key = _bearer(headers.get("authorization", ""))
        bucket = "ip:" + address
        if self.api_keys:
            failures = "authfail:" + address
            if stores is not None:  # too many bad keys from here: refuse even a good one, or guessing pays
                blocked, wait = await _run(
                    stores.rates.rate_exceeded, failures, self.limits.auth_failures, 60
                )
                if blocked:
                    return self._limited_by(wait, "too many failed API keys from this address"), receive
            if not self._known(key):
                if stores is not None:
                    await _run(stores.rates.rate_limit, failures, self.limits.auth_failures, 60)
                detail = "missing Authorization: Bearer header" if key is None else "unknown API key"
                return Unauthorized(detail), receive
            bucket = "key:" + _digest(key or "")
        if stores is None:
            return None, receive
        rates = stores.rates
        if bucket.startswith("ip:") and scope["method"] == "POST" and scope["path"] in _CHAT_PATHS:
            receive, conversation, error = await self._conversation_of(receive)
            if error is not None:
                return error, receive
            if conversation and await _run(stores.conversations.exists, conversation):
                allowed, wait = await _run(rates.rate_limit, "addr:" + address, self.limits.per_address, 60)
                if not allowed:
                    return self._limited_by(wait, f"more than {self.limits.per_address} requests a minute "
                                                  "from this address"), receive  # fmt: skip
                allowed, wait = await _run(rates.rate_limit, "conv:" + _digest(conversation),
                                           self.limits.per_conversation, 60)  # fmt: skip
                if not allowed:
                    return self._limited_by(wait, f"more than {self.limits.per_conversation} requests a "
                                                  "minute in this conversation"), receive  # fmt: skip
                return None, receive
        allowed, wait = await _run(rates.rate_limit, "api:" + bucket, self.limits.per_client, 60)
        if allowed and scope["path"] == "/v1/feedback":  # ratings are cheap to send: a budget of their own
            allowed, wait = await _run(rates.rate_limit, "feedback:" + bucket, self.limits.feedback, 60)
            if not allowed:
                return self._limited_by(
                    wait, f"more than {self.limits.feedback} feedback posts a minute"
                ), receive
        if allowed:
            return None, receive
        return self._limited_by(
            wait, f"more than {self.limits.per_client} requests a minute from this client"
        ), receive

    def _limited_by(self, wait: float, why: str) -> RateLimited:
        if self.metrics is not None:
            self.metrics.rate_limited.inc()
        return RateLimited(why, wait)

    async def _conversation_of(self, receive: Receive) -> tuple[Receive, str | None, Exception | None]:
        """Read the (size- and time-limited) body for its conversation_id; the app gets a receive that
        replays it. A body too large or too slow comes back as the error to answer with."""
        messages: list[Message] = []
        body = b""
        try:
            while True:
                message = await receive()
                messages.append(message)
                if message["type"] != "http.request":
                    break
                body += message.get("body", b"")
                if not message.get("more_body", False):
                    break
        except HTTPException as exc:
            return receive, None, exc
        conversation: str | None = None
        with contextlib.suppress(ValueError, RecursionError, AttributeError):
            value = json.loads(body).get("conversation_id") if body.lstrip().startswith(b"{") else None
            conversation = value if isinstance(value, str) and 0 < len(value) <= 200 else None
        pending = list(messages)

        async def replay() -> Message:
            return pending.pop(0) if pending else await receive()

        return replay, conversation, None

    def _known(self, key: str | None) -> bool:
        return self._matches(key, self.api_keys)

    @staticmethod
    def _matches(key: str | None, keys: list[bytes]) -> bool:
        if key is None:
            return False
        given = key.encode()
        found = False
        for k in keys:  # compare with every key, so timing says nothing about which one matched
            found |= secrets.compare_digest(given, k)
        return found

    # --- bodies: size and time ----------------------------------------------------------------------
    def _limited(self, receive: Receive, limit: int) -> Receive:
        seen = 0
        deadline = time.monotonic() + self.body_timeout

        async def receive_limited() -> Message:
            nonlocal seen
            try:
                with anyio.fail_after(max(deadline - time.monotonic(), 0.001)):
                    message = await receive()
            except TimeoutError:
                # a client that promised a body and does not send it: 408, and the server closes
                raise HTTPException(
                    408, f"request body not received within {self.body_timeout:g} s"
                ) from None
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    # raised inside the route's body read, so the app's one exception handler answers it
                    raise HTTPException(413, self._too_large(limit))
            return message

        return receive_limited

    @staticmethod
    def _too_large(limit: int) -> str:
        return f"request body larger than {limit} bytes"

    @staticmethod
    async def _reject(exc: Exception, scope: Scope, receive: Receive, send: Send) -> None:
        scope["ketluan.rejected"] = "/v1/*" if scope["path"].startswith("/v1/") else "<rejected>"
        await to_response(exc)(scope, receive, send)


async def _run(fn: Callable[..., Any], *args: Any) -> Any:
    # the stores may be SQLite or Redis: blocking I/O, so off the event loop
    return await anyio.to_thread.run_sync(fn, *args)


def _digest(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()[:24]


def _bearer(value: str) -> str | None:
    scheme, _, token = value.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()
