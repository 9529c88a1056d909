"""The benchmarks' lean load generator against a loopback server: statuses counted, keep-alive kept or
reopened after `connection: close`, chunked bodies read, a dropped connection counted as an error."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator

import pytest

from benchmarks.bench_http import load

RESPONSES = [
    b'HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 11\r\n\r\n{"a": "b"}\n',
    b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n4\r\nabcd\r\n3\r\nefg\r\n0\r\n\r\n",
    b"HTTP/1.1 429 Too Many Requests\r\ncontent-length: 2\r\nconnection: close\r\n\r\n{}",
    None,  # the connection is dropped before an answer
]


class CannedServer:
    """Answers the n-th request it reads with RESPONSES[n % 4]; counts connections."""

    def __init__(self) -> None:
        self.requests = 0
        self.connections = 0
        self.bodies: list[bytes] = []
        self.loop = asyncio.new_event_loop()
        self.ready = threading.Event()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = next(
                    int(h.split(b":")[1])
                    for h in head.split(b"\r\n")
                    if h.lower().startswith(b"content-length")
                )
                self.bodies.append(await reader.readexactly(length))
                response = RESPONSES[self.requests % len(RESPONSES)]
                self.requests += 1
                if response is None:
                    break
                writer.write(response)
                await writer.drain()
                if b"connection: close" in response:
                    break
        except asyncio.IncompleteReadError:
            pass
        writer.close()

    def start(self) -> int:
        self.thread.start()
        server = asyncio.run_coroutine_threadsafe(
            asyncio.start_server(self._handle, "127.0.0.1", 0), self.loop
        )
        self.server = server.result(10)
        return int(self.server.sockets[0].getsockname()[1])

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.server.close)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)


@pytest.fixture()
def canned() -> Iterator[tuple[CannedServer, str]]:
    server = CannedServer()
    port = server.start()
    yield server, f"http://127.0.0.1:{port}"
    server.stop()


def test_lean_client_counts_statuses_and_errors(canned: tuple[CannedServer, str]) -> None:
    server, base = canned
    result = load(base, "/v1/chat", [{"message": "Câu hỏi thử"}], 1, 8, lean=True)
    assert result["requests"] == 8 and server.requests == 8
    assert result["statuses"] == {"200": 4, "429": 2, "ConnectionResetError": 2}
    assert result["errors"] == 4
    # a new connection after each close and each drop, the same one otherwise
    assert server.connections == 4
    assert set(server.bodies) == {'{"message": "Câu hỏi thử"}'.encode()}
    assert result["client_cpu_ms_per_request"] >= 0


def test_lean_and_httpx_clients_see_the_same_statuses(canned: tuple[CannedServer, str]) -> None:
    _, base = canned
    lean = load(base, "/v1/chat", [{"message": "a"}], 1, 4, lean=True)
    full = load(base, "/v1/chat", [{"message": "a"}], 1, 4)
    assert {k: v for k, v in lean["statuses"].items() if k[0].isdigit()} == {"200": 2, "429": 1}
    assert {k: v for k, v in full["statuses"].items() if k[0].isdigit()} == {"200": 2, "429": 1}


def test_bench_cache_tells_first_asks_requests_in_flight_and_repeats() -> None:
    from benchmarks.bench_cache import by_kind

    asked = ["a", "a", "b", "a", "b"]
    # (request, sent, answered): a#1 answered at 3; a#2 sent at 1 (in flight); b#1; a#3 sent at 4 (repeat);
    # b#2 sent at 2.5, before b#1's answer at 5 (in flight)
    timings = [(0, 0.0, 3.0), (1, 1.0, 3.5), (2, 2.0, 5.0), (3, 4.0, 4.001), (4, 2.5, 6.0)]
    kinds = by_kind(asked, timings)
    assert {k: v["requests"] for k, v in kinds.items()} == {"first": 2, "in_flight": 2, "repeat": 1}
    assert kinds["repeat"]["p50_ms"] == 1.0
    # the slowest 5 % of five requests: one, b#2 (3.5 s)
    assert {k: v["in_slowest_5pct"] for k, v in kinds.items()} == {"first": 0, "in_flight": 1, "repeat": 0}
