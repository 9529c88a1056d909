"""ASGI middleware: request metrics around everything; body size limit, API keys and rate limits on /v1/*."""

from __future__ import annotations

import hashlib
import secrets
import time
from collections.abc import Callable

import anyio.to_thread
from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.errors import RateLimited, TooLarge, Unauthorized, to_response
from api.metrics import Metrics

_BODY_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


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


class GuardMiddleware:
    """Rejects what should not reach a route: bodies over `max_body_bytes` (declared or streamed), and on
    /v1/* requests without a configured Bearer key or over the per-client rate limit."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        max_body_bytes: int,
        api_keys: list[str],
        rate_limit_per_minute: int,
        rate_limiter: Callable[[], Callable[[str, int, int], tuple[bool, float]] | None],
        metrics: Metrics | None = None,
    ) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.api_keys = [k.encode() for k in api_keys]
        self.limit = rate_limit_per_minute
        self.rate_limiter = rate_limiter
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        if scope["method"] in _BODY_METHODS:
            declared = headers.get("content-length", "")
            if declared.isdigit() and int(declared) > self.max_body_bytes:
                await self._reject(TooLarge(self._too_large()), scope, receive, send)
                return
            receive = self._limited(receive)
        if scope["path"].startswith("/v1/") and scope["method"] != "OPTIONS":
            key = _bearer(headers.get("authorization", ""))
            if self.api_keys and not self._known(key):
                detail = "missing Authorization: Bearer header" if key is None else "unknown API key"
                await self._reject(Unauthorized(detail), scope, receive, send)
                return
            if (limited := await self._rate_limit(scope, key)) is not None:
                await self._reject(limited, scope, receive, send)
                return
        await self.app(scope, receive, send)

    def _known(self, key: str | None) -> bool:
        if key is None:
            return False
        given = key.encode()
        found = False
        for k in self.api_keys:  # compare with every key, so timing says nothing about which one matched
            found |= secrets.compare_digest(given, k)
        return found

    async def _rate_limit(self, scope: Scope, key: str | None) -> RateLimited | None:
        limiter = self.rate_limiter()
        if limiter is None:
            return None
        if key:
            client = "key:" + hashlib.sha256(key.encode()).hexdigest()[:24]
        else:
            client = "ip:" + (scope["client"][0] if scope.get("client") else "unknown")
        # the store may be SQLite or Redis: blocking I/O, so off the event loop
        allowed, retry_after = await anyio.to_thread.run_sync(limiter, f"api:{client}", self.limit, 60)
        if allowed:
            return None
        if self.metrics is not None:
            self.metrics.rate_limited.inc()
        return RateLimited(f"more than {self.limit} requests a minute from this client", retry_after)

    def _limited(self, receive: Receive) -> Receive:
        seen = 0

        async def receive_limited() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_body_bytes:
                    # raised inside the route's body read, so the app's one exception handler answers it
                    raise HTTPException(413, self._too_large())
            return message

        return receive_limited

    def _too_large(self) -> str:
        return f"request body larger than {self.max_body_bytes} bytes"

    @staticmethod
    async def _reject(exc: Exception, scope: Scope, receive: Receive, send: Send) -> None:
        scope["ketluan.rejected"] = "/v1/*" if scope["path"].startswith("/v1/") else "<rejected>"
        await to_response(exc)(scope, receive, send)


def _bearer(value: str) -> str | None:
    scheme, _, token = value.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()
