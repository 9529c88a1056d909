"""A running `ketluan serve` on loopback + request bodies → latency percentiles, throughput and errors at several
concurrency levels (httpx async clients, or with `lean=True` a minimal HTTP/1.1 client, one connection each)."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import numpy as np

QUESTIONS = [
    "Kết luận 183-KL/TW nói gì về công tác cán bộ?",
    "Bộ Chính trị yêu cầu gì về sắp xếp tổ chức bộ máy?",
    "Nhiệm vụ trọng tâm về phát triển kinh tế - xã hội là gì?",
    "Ban Bí thư giao cơ quan nào chủ trì tổ chức thực hiện?",
    "Kết luận về phòng, chống tham nhũng, tiêu cực",
    "Quy định về tinh giản biên chế",
    "chuyen doi so quoc gia",
    "Thời hạn báo cáo kết quả thực hiện kết luận?",
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def serve(data_dir: Path, *, workers: int = 1, env: dict[str, str] | None = None,
          timeout: float = 180.0) -> Iterator[str]:  # fmt: skip
    """`ketluan serve` on a free loopback port; yields its base URL once /readyz answers 200."""
    port = free_port()
    cmd = [str(Path(sys.executable).with_name("ketluan")), "serve", "--host", "127.0.0.1", "--port", str(port),
           "--data-dir", str(data_dir)]  # fmt: skip
    if workers > 1:
        cmd += ["--workers", str(workers)]
    full_env = os.environ | {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"} | (env or {})
    log = (data_dir / f"serve-{port}.log").open("wb")
    proc = subprocess.Popen(cmd, env=full_env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + timeout
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"ketluan serve exited with {proc.returncode}; see {log.name}")
            try:
                if httpx.get(f"{base}/readyz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"ketluan serve not ready after {timeout:.0f} s; see {log.name}")
            time.sleep(0.2)
        yield base
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


class _LeanClient:
    """POSTs JSON over one keep-alive HTTP/1.1 connection and reads the status and the body: a tenth of
    httpx's CPU per request, so the load generator leaves the cores to the server it measures."""

    def __init__(self, base: str, timeout: float) -> None:
        url = urlsplit(base)
        self.host, self.port = url.hostname or "127.0.0.1", url.port or 80
        self.timeout = timeout
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None

    async def post(self, path: str, body: bytes) -> int:
        async with asyncio.timeout(self.timeout):
            if self._writer is None:
                self._reader, self._writer = await asyncio.open_connection(self.host, self.port)
            assert self._reader is not None
            self._writer.write(
                f"POST {path} HTTP/1.1\r\nhost: {self.host}:{self.port}\r\ncontent-type: application/json\r\n"
                f"content-length: {len(body)}\r\n\r\n".encode("ascii")
                + body
            )
            try:
                head = await self._reader.readuntil(b"\r\n\r\n")
            except asyncio.IncompleteReadError:
                await self.close()
                raise ConnectionResetError("the server closed the connection") from None
            lines = head.decode("latin-1").split("\r\n")
            status = int(lines[0].split(" ", 2)[1])
            headers = dict(line.lower().split(": ", 1) for line in lines[1:] if ": " in line)
            if headers.get("transfer-encoding") == "chunked":
                while size := int((await self._reader.readline()).split(b";")[0], 16):
                    await self._reader.readexactly(size + 2)
                await self._reader.readline()
            else:
                await self._reader.readexactly(int(headers.get("content-length", "0")))
            if headers.get("connection") == "close":
                await self.close()
            return status

    async def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = self._reader = None


async def _load(base: str, path: str, bodies: Sequence[dict[str, Any]], concurrency: int,
                total: int, lean: bool = False,
                timings: list[tuple[int, float, float]] | None = None) -> dict[str, Any]:  # fmt: skip
    latencies: list[float] = []
    statuses: dict[str, int] = {}
    errors = 0
    counter = iter(range(total))
    encoded = [json.dumps(b, ensure_ascii=False).encode() for b in bodies] if lean else []

    def count(key: str, started: float, i: int) -> None:
        nonlocal errors
        ended = time.perf_counter()
        latencies.append((ended - started) * 1000)
        if timings is not None:
            timings.append((i, started, ended))
        statuses[key] = statuses.get(key, 0) + 1
        if not key.startswith("2"):
            errors += 1

    async def client() -> None:
        async with httpx.AsyncClient(
            base_url=base, timeout=60, limits=httpx.Limits(max_connections=1)
        ) as http:
            for i in counter:
                t = time.perf_counter()
                try:
                    r = await http.post(path, json=bodies[i % len(bodies)])
                    key = str(r.status_code)
                except httpx.HTTPError as exc:
                    key = exc.__class__.__name__
                count(key, t, i)

    async def lean_client() -> None:
        http = _LeanClient(base, 60)
        try:
            for i in counter:
                t = time.perf_counter()
                try:
                    key = str(await http.post(path, encoded[i % len(encoded)]))
                except (OSError, TimeoutError, ValueError, asyncio.IncompleteReadError) as exc:
                    await http.close()
                    key = exc.__class__.__name__
                count(key, t, i)
        finally:
            await http.close()

    started = time.perf_counter()
    cpu = time.process_time()
    await asyncio.gather(*((lean_client if lean else client)() for _ in range(concurrency)))
    wall = time.perf_counter() - started
    a = np.asarray(latencies)
    return {"path": path, "concurrency": concurrency, "requests": total, "errors": errors, "statuses": statuses,
            "throughput_rps": round(total / wall, 2),
            **{f"p{q}_ms": round(float(np.percentile(a, q)), 2) for q in (50, 95, 99)},
            "client_cpu_ms_per_request": round((time.process_time() - cpu) * 1000 / total, 2)}  # fmt: skip


def load(
    base: str,
    path: str,
    bodies: Sequence[dict[str, Any]],
    concurrency: int,
    total: int,
    lean: bool = False,
    timings: list[tuple[int, float, float]] | None = None,
) -> dict[str, Any]:
    """`lean`: the minimal client instead of httpx (same requests and bodies; far less CPU per request).
    `timings`: filled with (request number, sent, answered) in `time.perf_counter` seconds, one a request."""
    return asyncio.run(_load(base, path, bodies, concurrency, total, lean, timings))


def search_bodies() -> list[dict[str, Any]]:
    return [{"query": q, "k": 5} for q in QUESTIONS]


def chat_bodies() -> list[dict[str, Any]]:
    return [{"message": q, "conversation_id": None} for q in QUESTIONS]


def run(data_dir: Path, levels: Sequence[int] = (1, 8, 32), per_level: int = 200,
        log: Any = print) -> list[dict[str, Any]]:  # fmt: skip
    env = {"KETLUAN_RATE_LIMIT_PER_MINUTE": "100000000", "KETLUAN_LLM_BASE_URL": ""}
    results = []
    with serve(data_dir, env=env) as base:
        load(base, "/v1/search", search_bodies(), 2, 20)  # warm up
        for path, bodies in (("/v1/search", search_bodies()), ("/v1/chat", chat_bodies())):
            for c in levels:
                result = load(base, path, bodies, c, max(per_level, c * 10))
                log(f"  http {path} c={c}: {result}")
                results.append(result)
    return results
