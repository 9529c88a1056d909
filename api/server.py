"""`ketluan serve`'s server: uvicorn's h11 protocol with header size, header count and slow-header limits,
run under uvicorn's multiprocess supervisor (which replaces a worker that dies) even with one worker."""

from __future__ import annotations

import asyncio
import functools
import json
import logging
from dataclasses import dataclass
from typing import Any

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

log = logging.getLogger("ketluan.serve")
_LINGER_SECONDS = 2.0
_DRAIN_BYTES = 8 * 1024 * 1024


@dataclass(frozen=True)
class HttpLimits:
    max_header_bytes: int = 32 * 1024
    max_headers: int = 100
    header_timeout: float = 10.0


def _raw_error(status: int, reason: str, code: str, message: str) -> bytes:
    body = json.dumps({"error": {"code": code, "message": message}}, ensure_ascii=False).encode()
    head = (
        f"HTTP/1.1 {status} {reason}\r\ncontent-type: application/json\r\nconnection: close\r\n"
        f"content-length: {len(body)}\r\n\r\n"
    )
    return head.encode("ascii") + body


class GuardedH11Protocol(H11Protocol):
    """h11 (which bounds what it buffers) plus what uvicorn leaves open: a request's line and headers must
    fit `max_header_bytes` and `max_headers` lines (else 431 and close) and arrive within `header_timeout`
    seconds of their first byte (else 408 and close: slowloris). After an answer given before the body was
    read (401, 413, 429, 408 …) the rest of the body is read and dropped, as uvicorn does, but for at most
    `header_timeout` seconds and `_DRAIN_BYTES`: a Content-Length lie no longer holds the connection."""

    def __init__(self, *args: Any, limits: HttpLimits, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.limits = limits
        self._head_bytes = 0
        self._head_lines = 0
        self._tail = b""  # the last bytes of the head so far, to find its end across packets
        self._head_timer: asyncio.TimerHandle | None = None
        self._rest_timer: asyncio.TimerHandle | None = None  # the unread rest of a body answered early
        self._dropped = 0
        self._lingering = False

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._head_timer = self.loop.call_later(self.limits.header_timeout, self._too_slow)

    def data_received(self, data: bytes) -> None:
        if self._lingering:
            return  # closing: what still comes is dropped
        if self.conn.their_state is h11.IDLE:  # a request line and headers are coming
            if self._head_timer is None:
                self._head_timer = self.loop.call_later(self.limits.header_timeout, self._too_slow)
            window = self._tail + data
            end = window.find(b"\r\n\r\n")
            head = data if end < 0 else data[: max(end + 4 - len(self._tail), 0)]
            self._tail = b"" if end >= 0 else window[-3:]
            self._head_bytes += len(head)
            self._head_lines += head.count(b"\n")
            if (
                self._head_bytes > self.limits.max_header_bytes
                or self._head_lines > self.limits.max_headers + 2
            ):
                self._refuse(431, "Request Header Fields Too Large", "headers_too_large",
                             "Yêu cầu có phần đầu (header) quá lớn.")  # fmt: skip
                return
        elif self._rest_timer is not None:
            self._dropped += len(data)
            if self._dropped > _DRAIN_BYTES:
                self._linger()
                return
        super().data_received(data)
        if self.conn.their_state is not h11.IDLE:  # the head is in: its clock stops
            self._cancel_head()
            self._head_bytes = self._head_lines = 0
        if self._rest_timer is not None and self.conn.their_state is not h11.SEND_BODY:
            self._rest_timer.cancel()
            self._rest_timer = None

    def on_response_complete(self) -> None:
        if self.conn.their_state is h11.SEND_BODY and self._rest_timer is None:
            self._dropped = 0
            self._rest_timer = self.loop.call_later(self.limits.header_timeout, self._linger)
        super().on_response_complete()

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_head()
        if self._rest_timer is not None:
            self._rest_timer.cancel()
        super().connection_lost(exc)

    def _cancel_head(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _too_slow(self) -> None:
        self._head_timer = None
        if self.conn.their_state is h11.IDLE and not self.transport.is_closing():
            self._refuse(408, "Request Timeout", "request_timeout", "Yêu cầu gửi đến quá chậm.")

    def _refuse(self, status: int, reason: str, code: str, message: str) -> None:
        self._cancel_head()
        if not self.transport.is_closing():
            self.transport.write(_raw_error(status, reason, code, message))
            self._linger()

    def _linger(self) -> None:
        """Close without losing the answer: closing a socket with unread bytes sends a reset, which can
        destroy the answer before the client reads it. So stop writing, drop what comes, close later."""
        self._rest_timer = None
        if self._lingering or self.transport.is_closing():
            return
        self._lingering = True
        if self.transport.can_write_eof():
            self.transport.write_eof()
        self.loop.call_later(_LINGER_SECONDS, self.transport.close)


def serve(
    target: str,
    *,
    host: str,
    port: int,
    workers: int,
    limits: HttpLimits,
    keep_alive_timeout: int,
    log_level: str,
    access_log: bool,
) -> None:
    """Bind once, then let uvicorn's supervisor run `workers` processes of `target` (an app factory import
    string) and start a new one whenever one dies; SIGTERM / SIGINT stop them all."""
    import uvicorn
    from uvicorn.supervisors import Multiprocess

    config = uvicorn.Config(
        target,
        factory=True,
        host=host,
        port=port,
        workers=workers,
        http=functools.partial(GuardedH11Protocol, limits=limits),  # type: ignore[arg-type]
        h11_max_incomplete_event_size=2 * limits.max_header_bytes,  # h11's own bound, behind ours
        timeout_keep_alive=keep_alive_timeout,
        timeout_graceful_shutdown=10,
        proxy_headers=False,  # X-Forwarded-For is read by the app, from trusted proxies only
        log_level=log_level,
        access_log=access_log,
    )
    sock = config.bind_socket()
    try:
        Multiprocess(config, sockets=[sock]).run()
    finally:
        sock.close()
