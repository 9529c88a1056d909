"""A mixed load against `ketluan serve` on loopback → JSON numbers: an all-good run, then as many requests
again with a share of hostile ones (oversized bodies, deeply nested JSON, 2,000-character queries, wrong API
keys, huge headers, slowloris), at the same number of concurrent clients; 5xx, transport errors (resets,
drops), statuses per kind, p95 of the well-formed requests in both runs, worker RSS before and after.

    PYTHONPATH=$PWD python benchmarks/mixed_load.py [--data-dir DIR] [--requests 2000] [--clients 32]
        [--hostile 0.2] [--workers 1]

It starts its own `ketluan serve --no-build` on a free port over the index already built in DIR (default the
project's data/), with an API key set and rate limits out of the way, and the server's own header and body
limits and time-outs. Exit status 1 when a target is missed: any 5xx, any transport error, a hostile request
answered otherwise than expected, p95 of the well-formed requests above 2× the all-good run, worker RSS after
both runs more than 10 % above its level after a warm-up (a fifth of a run, with the same hostile share).
`tests/api/test_reliability.py` runs the same load (400 requests in `make test`, 2,000 in `make soak`).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
KEY = "load-test-key"
GOOD_QUESTIONS = [
    "Kết luận 221 yêu cầu hoàn thành sắp xếp trường học cấp xã khi nào?", "Kết luận 183 giao Bộ Nội vụ việc gì?",
    "Ai ký Kết luận 221?", "Kết luận 195 nói gì về hồ sơ tồn đọng?", "Thời hạn sắp xếp trạm y tế cấp xã?",
    "Các tỉnh uỷ phải báo cáo gì?",
]  # fmt: skip
HOSTILE = ("oversized", "nested", "long query", "bad auth", "huge header", "slowloris")
EXPECTED = {"good": {200}, "oversized": {413}, "nested": {400, 422}, "long query": {200}, "bad auth": {401},
            "huge header": {431}, "slowloris": {408}}  # fmt: skip


@dataclass(frozen=True)
class Outcome:
    kind: str
    status: int  # 0 when the transport failed
    seconds: float
    error: str = ""


def kind_of(n: int, hostile_share: float) -> str:
    """The kind of the n-th request of a run: every (1/share)-th is hostile, the hostile kinds in turn."""
    every = round(1 / hostile_share) if hostile_share else 0
    if not every or n % every != every - 1:
        return "good"
    return HOSTILE[(n // every) % len(HOSTILE)]


def http_request(kind: str, n: int) -> tuple[str, dict[str, str], bytes]:
    """(path, headers, body) of a request httpx can send."""
    auth = {"Authorization": f"Bearer {KEY}", "Content-Type": "application/json"}
    if kind == "oversized":
        return "/v1/chat", auth, b'{"message": "' + b"a" * 200_000 + b'"}'
    if kind == "nested":
        return "/v1/chat", auth, b'{"message": ' + b"[" * 20_000 + b"]" * 20_000 + b"}"
    if kind == "long query":
        return "/v1/chat", auth, json.dumps({"message": "ệ" * 2000}).encode()
    if kind == "bad auth":
        return (
            "/v1/search",
            {**auth, "Authorization": f"Bearer wrong-{n}"},
            '{"query": "trường học"}'.encode(),
        )
    question = GOOD_QUESTIONS[n % len(GOOD_QUESTIONS)]
    if n % 3 == 0:
        return "/v1/search", auth, json.dumps({"query": question}).encode()
    return "/v1/chat", auth, json.dumps({"message": question}).encode()


async def raw_request(base: str, kind: str) -> int:
    """A huge header (256 KB) or a slowloris (one header line every 0.5 s, never the end of the head) on a
    connection of its own; the status the server answered with (0: closed without one)."""
    host, port = base.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    head = f"POST /v1/search HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {KEY}\r\n".encode()
    try:
        if kind == "huge header":
            writer.write(head + b"X-Pad: " + b"a" * 256 * 1024 + b"\r\n\r\n")
            await writer.drain()
            reply = await reader.read()
        else:
            writer.write(head)
            reply = b""
            while not reply:
                try:
                    reply = await asyncio.wait_for(reader.read(4096), 0.5)
                    break
                except TimeoutError:
                    writer.write(b"X-Slow: a\r\n")
                    await writer.drain()
            reply += await reader.read()
    finally:
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()
    first = reply.split(b"\r\n", 1)[0].split()
    return int(first[1]) if len(first) > 1 and first[1].isdigit() else 0


async def run(base: str, total: int, clients: int, hostile_share: float) -> list[Outcome]:
    """`total` requests from `clients` concurrent clients (one keep-alive connection each for HTTP)."""
    queue: asyncio.Queue[int] = asyncio.Queue()
    for n in range(total):
        queue.put_nowait(n)
    outcomes: list[Outcome] = []

    async def client() -> None:
        async with httpx.AsyncClient(base_url=base, timeout=120) as c:
            while not queue.empty():
                n = queue.get_nowait()
                kind = kind_of(n, hostile_share)
                started = time.perf_counter()
                try:
                    if kind in ("huge header", "slowloris"):
                        status = await asyncio.wait_for(raw_request(base, kind), 120)
                    else:
                        path, headers, body = http_request(kind, n)
                        status = (await c.post(path, content=body, headers=headers)).status_code
                    outcomes.append(Outcome(kind, status, time.perf_counter() - started))
                except (httpx.TransportError, OSError) as exc:  # OSError: resets, and TimeoutError
                    error = f"{exc.__class__.__name__}: {exc}"
                    outcomes.append(Outcome(kind, 0, time.perf_counter() - started, error))

    await asyncio.gather(*(client() for _ in range(clients)))
    return outcomes


def quantile_ms(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000, 1) if ordered else 0.0


def measure(
    base: str, total: int, clients: int, hostile_share: float, rss: Callable[[], int]
) -> dict[str, Any]:
    """Warm up, then an all-good run and a mixed run of `total` requests each; the report. The warm-up has
    the mixed run's hostile share, so the memory every kind of request takes once (parser and allocator
    buffers, caches filled) is in the baseline and what the runs add after it is what is measured."""
    asyncio.run(run(base, max(2 * clients, total // 5), clients, hostile_share))
    rss_before = rss()
    started = time.monotonic()
    good = asyncio.run(run(base, total, clients, 0.0))
    good_seconds = time.monotonic() - started
    rss_between = rss()
    started = time.monotonic()
    mixed = asyncio.run(run(base, total, clients, hostile_share))
    mixed_seconds = time.monotonic() - started
    rss_after = rss()
    everything = [*good, *mixed]
    statuses: dict[str, dict[str, int]] = {}
    for o in mixed:
        per_kind = statuses.setdefault(o.kind, {})
        per_kind[str(o.status)] = per_kind.get(str(o.status), 0) + 1
    all_good = [o.seconds for o in good]
    well_formed = [o.seconds for o in mixed if o.kind == "good"]
    return {
        "requests_per_run": total, "clients": clients, "hostile": len(mixed) - len(well_formed),
        "server_errors": sum(1 for o in everything if o.status >= 500),
        "transport_errors": [f"{o.kind}: {o.error} after {o.seconds:.2f} s" for o in everything if o.error],
        "statuses": statuses,
        "good_run": {"seconds": round(good_seconds, 1), "p50_ms": quantile_ms(all_good, 0.5),
                     "p95_ms": quantile_ms(all_good, 0.95)},
        "mixed_run": {"seconds": round(mixed_seconds, 1), "well_formed_p50_ms": quantile_ms(well_formed, 0.5),
                      "well_formed_p95_ms": quantile_ms(well_formed, 0.95)},
        "rss_before_mib": round(rss_before / 2**20, 1), "rss_after_good_run_mib": round(rss_between / 2**20, 1),
        "rss_after_mib": round(rss_after / 2**20, 1),
    }  # fmt: skip


def misses(report: dict[str, Any]) -> list[str]:
    """The targets the report misses (empty: all met)."""
    out = []
    if report["server_errors"]:
        out.append(f"{report['server_errors']} responses were 5xx")
    if report["transport_errors"]:
        out.append(
            f"{len(report['transport_errors'])} transport errors, e.g. {report['transport_errors'][0]}"
        )
    for kind, seen in report["statuses"].items():
        if not {int(s) for s in seen} <= EXPECTED[kind]:
            out.append(f"{kind}: answered {seen}, expected {sorted(EXPECTED[kind])}")
    if report["mixed_run"]["well_formed_p95_ms"] > 2 * report["good_run"]["p95_ms"]:
        out.append("p95 of the well-formed requests more than doubled under the hostile share")
    if report["rss_after_mib"] > 1.10 * report["rss_before_mib"]:
        out.append("worker RSS grew by more than 10 %")
    return out


# --- the server -----------------------------------------------------------------------------------
def worker_rss(server: subprocess.Popen[bytes]) -> Callable[[], int]:
    """The RSS of the server's worker processes (uvicorn's supervisor's children) now, in bytes."""
    import psutil

    def total() -> int:
        found = 0
        for child in psutil.Process(server.pid).children():
            with contextlib.suppress(psutil.Error):
                if "spawn_main" in " ".join(child.cmdline()):
                    found += child.memory_info().rss
        return found

    return total


@contextlib.contextmanager
def ketluan_serve(data_dir: Path, workers: int, log: Path) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    env = os.environ | {"KETLUAN_API_KEYS": KEY, "KETLUAN_RATE_LIMIT_PER_MINUTE": "100000000",
                        "KETLUAN_AUTH_FAILURES_PER_MINUTE": "100000000", "KETLUAN_LLM_BASE_URL": "",
                        "KETLUAN_REDIS_URL": "", "PYTHONPATH": str(ROOT)}  # fmt: skip
    cmd = [str(Path(sys.executable).with_name("ketluan")), "serve", "--no-build", "--no-access-log",
           "--port", str(port), "--data-dir", str(data_dir), "--workers", str(workers)]  # fmt: skip
    with log.open("wb") as out:
        proc = subprocess.Popen(cmd, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        base = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 300
            while not _ready(base):
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise SystemExit(f"ketluan serve did not become ready; see {log}")
                time.sleep(0.2)
            yield base, proc
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, 9)
                proc.wait()


def _ready(base: str) -> bool:
    try:
        return httpx.get(f"{base}/readyz", timeout=5).status_code == 200
    except httpx.HTTPError:
        return False


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", type=Path, default=ROOT / "data", help="data dir with a built index")
    parser.add_argument("--requests", type=int, default=2000, help="requests per run (default 2000)")
    parser.add_argument("--clients", type=int, default=32, help="concurrent clients (default 32)")
    parser.add_argument("--hostile", type=float, default=0.2, help="hostile share of the mixed run (0.2)")
    parser.add_argument("--workers", type=int, default=1, help="ketluan serve --workers (default 1)")
    parser.add_argument("--log", type=Path, default=Path("mixed-load-serve.log"), help="the server's log")
    args = parser.parse_args()
    with ketluan_serve(args.data_dir.resolve(), args.workers, args.log) as (base, proc):
        report = measure(base, args.requests, args.clients, args.hostile, worker_rss(proc))
    report["misses"] = misses(report)
    print(json.dumps(report, ensure_ascii=False, indent=1))
    return 1 if report["misses"] else 0


if __name__ == "__main__":
    sys.exit(main())
