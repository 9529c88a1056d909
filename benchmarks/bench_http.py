"""A running `ketluan serve` on loopback + request bodies → latency percentiles, throughput and errors at several
concurrency levels (httpx async clients, one connection each)."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

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


async def _load(base: str, path: str, bodies: Sequence[dict[str, Any]], concurrency: int,
                total: int) -> dict[str, Any]:  # fmt: skip
    latencies: list[float] = []
    statuses: dict[str, int] = {}
    errors = 0
    counter = iter(range(total))

    async def client() -> None:
        nonlocal errors
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
                latencies.append((time.perf_counter() - t) * 1000)
                statuses[key] = statuses.get(key, 0) + 1
                if not key.startswith("2"):
                    errors += 1

    started = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(concurrency)))
    wall = time.perf_counter() - started
    a = np.asarray(latencies)
    return {"path": path, "concurrency": concurrency, "requests": total, "errors": errors, "statuses": statuses,
            "throughput_rps": round(total / wall, 2),
            **{f"p{q}_ms": round(float(np.percentile(a, q)), 2) for q in (50, 95, 99)}}  # fmt: skip


def load(
    base: str, path: str, bodies: Sequence[dict[str, Any]], concurrency: int, total: int
) -> dict[str, Any]:
    return asyncio.run(_load(base, path, bodies, concurrency, total))


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
