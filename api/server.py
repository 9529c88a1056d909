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
    seconds of their first byte (else 408 and close: slowloris)."""

    def __init__(self, *args: Any, limits: HttpLimits, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.limits = limits
        self._in_head = True  # waiting for a request line and headers
        self._head_bytes = 0
        self._head_lines = 0
        self._head_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm()

    def _arm(self) -> None:
        if self._head_timer is None:
            self._head_timer = self.loop.call_later(self.limits.header_timeout, self._too_slow)

    def _disarm(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def data_received(self, data: bytes) -> None:
        if self._in_head:
            self._arm()
            self._head_bytes += len(data)
            self._head_lines += data.count(b"\n")
            if (
                self._head_bytes > self.limits.max_header_bytes
                or self._head_lines > self.limits.max_headers + 2
            ):
                self._refuse(431, "Request Header Fields Too Large", "headers_too_large",
                             "Yêu cầu có phần đầu (header) quá lớn.")  # fmt: skip
                return
        super().data_received(data)
        if self._in_head and self.conn.their_state in (h11.SEND_BODY, h11.DONE):
            self._in_head = False
            self._disarm()

    def on_response_complete(self) -> None:
        if self.conn.their_state not in (h11.DONE, h11.IDLE, h11.MUST_CLOSE, h11.CLOSED):
            # answered before the body arrived (413, or 408 for a body too slow): never wait for the rest
            self.server_state.total_requests += 1
            self.transport.close()
            return
        self._in_head, self._head_bytes, self._head_lines = True, 0, 0
        super().on_response_complete()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def _too_slow(self) -> None:
        self._head_timer = None
        if self._in_head and not self.transport.is_closing():
            self._refuse(408, "Request Timeout", "request_timeout", "Yêu cầu gửi đến quá chậm.")

    def _refuse(self, status: int, reason: str, code: str, message: str) -> None:
        self._disarm()
        if not self.transport.is_closing():
            self.transport.write(_raw_error(status, reason, code, message))
            self.transport.close()


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
