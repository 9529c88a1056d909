"""A question as the service read it (after follow-up resolution) + filters, day and index version → the
answer given before, so a question asked again costs a lookup: bounded in memory, shared through Redis
when it is configured (a Redis outage is a miss, never an error), else shared by the workers of one host
through a SQLite file (a file that fails is a miss too)."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import sqlite3
import threading
import time
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any, Generic, Protocol, TypeVar

from bot.models import ChatResponse, Turn
from bot.question import Question

log = logging.getLogger(__name__)
K = TypeVar("K")
V = TypeVar("V")


class AnswerCache(Protocol):
    def get(self, key: str) -> ChatResponse | None: ...

    def put(self, key: str, response: ChatResponse) -> None: ...


def answer_key(
    version: str,
    question: Question,
    filters: Any,
    day: str,
    history: Sequence[Turn] = (),
    answerer: str = "extractive",
) -> str:
    """The resolved question already holds what a follow-up took from the conversation (Kết luận, agency,
    topic), so equal keys mean equal extractive answers; the typed form is left out (its normalised form is
    in). `history` is for answers that read the whole conversation (the LLM's); `answerer` names who writes
    the answers ("extractive", or the LLM endpoint and model), so a service never gives another's answers
    from a cache they share (Redis, or the workers' file across a restart with other settings)."""
    parts = [
        answerer,
        version,
        day,
        repr(sorted(asdict(replace(question, original="")).items())),
        filters.model_dump_json() if filters is not None else "",
        *(f"{t.question}\x1f{t.answer}" for t in history),
    ]
    return hashlib.sha256("\x1e".join(parts).encode("utf-8")).hexdigest()


class Recent(Generic[K, V]):
    """The `size` most recently used values of this process, shared by its threads."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._items: OrderedDict[K, V] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: K) -> V | None:
        with self._lock:
            found = self._items.get(key)
            if found is not None:
                self._items.move_to_end(key)
            return found

    def put(self, key: K, value: V) -> None:
        with self._lock:
            self._items[key] = value
            self._items.move_to_end(key)
            while len(self._items) > self.size:
                self._items.popitem(last=False)

    def __len__(self) -> int:
        return len(self._items)


class _Flight:
    def __init__(self) -> None:
        self.landed = threading.Event()
        self.waiters: list[tuple[asyncio.AbstractEventLoop, asyncio.Future[None]]] = []


class Flights:
    """The answers being drafted in this process, by cache key: the first asker of a key leads (drafts it and
    calls `land`, also when it fails), later askers wait for it (at most `wait_seconds`) and then look the
    key up in the cache, so a question asked by many people at once is drafted once. No lock is held while
    an answer is drafted or waited for; a leader that failed or gave an answer not to be cached leaves the
    waiters a miss, and each drafts its own. Threads wait on an event; coroutines on a future, holding no
    thread (the leader of an LLM answer needs the event loop's few worker threads)."""

    def __init__(self, wait_seconds: float = 10.0) -> None:
        self.wait_seconds = wait_seconds
        self._running: dict[str, _Flight] = {}
        self._lock = threading.Lock()

    def lead(self, key: str) -> _Flight | None:
        """None: the caller leads and must call `land(key)` (in a `finally`); else the flight to wait for."""
        with self._lock:
            running = self._running.get(key)
            if running is None:
                self._running[key] = _Flight()
            return running

    def land(self, key: str) -> None:
        with self._lock:
            running = self._running.pop(key, None)
            waiters = running.waiters if running is not None else []
            if running is not None:
                running.landed.set()
        for loop, future in waiters:
            with contextlib.suppress(RuntimeError):  # a closed loop: nobody waits there any more
                loop.call_soon_threadsafe(_resolve, future)

    def wait(self, flight: _Flight) -> None:
        flight.landed.wait(self.wait_seconds)

    async def wait_async(self, flight: _Flight) -> None:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[None] = loop.create_future()
        with self._lock:
            if flight.landed.is_set():
                return
            flight.waiters.append((loop, future))
        try:
            async with asyncio.timeout(self.wait_seconds):
                await future
        except TimeoutError:
            pass

    def __len__(self) -> int:
        return len(self._running)


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


class MemoryAnswerCache(Recent[str, ChatResponse]):
    """The `size` most recently used answers of this process."""


class RedisAnswerCache:
    """Answers shared by every replica, each kept `ttl_seconds` (Redis evicts beyond its memory limit), with
    this process's most recent ones in front. While Redis fails, it is not asked for `retry_seconds`."""

    def __init__(
        self,
        url: str,
        *,
        size: int,
        ttl_seconds: int,
        prefix: str = "ketluan:answer:",
        socket_timeout: float = 0.2,
        retry_seconds: float = 5.0,
    ) -> None:
        import redis

        self._redis = redis.Redis.from_url(
            url, socket_timeout=socket_timeout, socket_connect_timeout=socket_timeout
        )
        self._errors: tuple[type[BaseException], ...] = (redis.RedisError, OSError)
        self.local = MemoryAnswerCache(size)
        self.ttl_seconds = max(int(ttl_seconds), 1)
        self.prefix = prefix
        self.retry_seconds = retry_seconds
        self._down_until = 0.0

    def get(self, key: str) -> ChatResponse | None:
        found = self.local.get(key)
        if found is not None or time.monotonic() < self._down_until:
            return found
        try:
            raw = self._redis.get(self.prefix + key)
        except self._errors as exc:
            self._down("get", exc)
            return None
        return _kept(self.local, key, raw)

    def put(self, key: str, response: ChatResponse) -> None:
        self.local.put(key, response)
        if time.monotonic() < self._down_until:
            return
        try:
            self._redis.set(self.prefix + key, response.model_dump_json(), ex=self.ttl_seconds)
        except self._errors as exc:
            self._down("put", exc)

    def _down(self, what: str, exc: BaseException) -> None:
        if time.monotonic() >= self._down_until:
            log.warning("answer cache: redis %s failed (%s); local cache only for %.0f s", what,
                        exc.__class__.__name__, self.retry_seconds)  # fmt: skip
        self._down_until = time.monotonic() + self.retry_seconds

    def close(self) -> None:
        self._redis.close()


def _kept(local: MemoryAnswerCache, key: str, raw: str | bytes | None) -> ChatResponse | None:
    """A shared store's stored answer, kept in this process's memory too; unreadable is a miss."""
    if raw is None:
        return None
    try:
        found = ChatResponse.model_validate_json(raw)
    except ValueError:
        return None
    local.put(key, found)
    return found


def host_cache_path(data_dir: Path | str) -> Path:
    """Where the workers of one host share their cached answers (without Redis)."""
    return Path(data_dir) / "state" / "answers.sqlite3"


def forget_host_cache(data_dir: Path | str) -> None:
    """Start the host's shared answers afresh: `ketluan serve` does, before its workers start, so a new
    release of the code never gives the answers of the one before (its memory caches did not either)."""
    path = host_cache_path(data_dir)
    for suffix in ("", "-wal", "-shm"):
        try:
            Path(f"{path}{suffix}").unlink(missing_ok=True)
        except OSError as exc:  # a read-only data dir: the cache will be a miss there anyway
            log.warning("answer cache: %s%s not removed (%s)", path, suffix, exc)


class SQLiteAnswerCache:
    """Answers shared by the worker processes of one host, each kept `ttl_seconds`, at most about `size`
    of them, with this process's most recent ones in front: without it each worker drafts every new
    question once for itself. Any SQLite error is a miss (or a put not shared) and is logged at most once a
    minute; the file is only a cache, so it is neither synced to disk nor kept when it is not a database."""

    _PRUNE_EVERY = 256  # puts between two prunes of expired and surplus rows

    def __init__(self, path: Path | str, *, size: int, ttl_seconds: float, busy_seconds: float = 0.2) -> None:
        self.local = MemoryAnswerCache(size)
        self.size = size
        self.ttl_seconds = max(float(ttl_seconds), 1.0)
        self.path = str(path)
        self._lock = threading.Lock()
        self._puts = 0
        self._logged = 0.0
        self._db: sqlite3.Connection | None = None
        for attempt in (1, 2):
            try:
                if self.path != ":memory:":
                    Path(self.path).parent.mkdir(parents=True, exist_ok=True)
                self._db = self._open(busy_seconds)
                return
            except sqlite3.DatabaseError as exc:
                if attempt == 1 and self.path != ":memory:" and Path(self.path).is_file():
                    log.warning("answer cache: %s is no database (%s); starting it afresh", self.path, exc)
                    for suffix in ("", "-wal", "-shm"):
                        Path(self.path + suffix).unlink(missing_ok=True)
                    continue
                self._failed("open", exc)
            except (sqlite3.Error, OSError, ValueError) as exc:  # ValueError: a path SQLite cannot take
                self._failed("open", exc)
            return

    def _open(self, busy_seconds: float) -> sqlite3.Connection:
        db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None, timeout=busy_seconds)
        try:
            if self.path != ":memory:":
                db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=OFF")
            db.execute(
                "CREATE TABLE IF NOT EXISTS answers (key TEXT PRIMARY KEY, at REAL NOT NULL, body TEXT NOT NULL)"
            )
            db.execute("CREATE INDEX IF NOT EXISTS answers_at ON answers (at)")
        except BaseException:
            db.close()
            raise
        return db

    def get(self, key: str) -> ChatResponse | None:
        found = self.local.get(key)
        if found is not None or self._db is None:
            return found
        try:
            with self._lock:
                row = self._db.execute(
                    "SELECT body FROM answers WHERE key = ? AND at > ?", (key, time.time() - self.ttl_seconds)
                ).fetchone()
        except sqlite3.Error as exc:
            self._failed("get", exc)
            return None
        return _kept(self.local, key, row[0] if row else None)

    def put(self, key: str, response: ChatResponse) -> None:
        self.local.put(key, response)
        if self._db is None:
            return
        body = response.model_dump_json()
        try:
            with self._lock:
                self._db.execute("INSERT OR REPLACE INTO answers VALUES (?, ?, ?)", (key, time.time(), body))
                self._puts += 1
                if self._puts % self._PRUNE_EVERY == 0:
                    self._prune(self._db)
        except sqlite3.Error as exc:
            self._failed("put", exc)

    def _prune(self, db: sqlite3.Connection) -> None:
        db.execute("DELETE FROM answers WHERE at <= ?", (time.time() - self.ttl_seconds,))
        db.execute(
            "DELETE FROM answers WHERE key IN (SELECT key FROM answers ORDER BY at DESC LIMIT -1 OFFSET ?)",
            (self.size,),
        )

    def _failed(self, what: str, exc: BaseException) -> None:
        if time.monotonic() - self._logged >= 60.0:
            self._logged = time.monotonic()
            log.warning("answer cache: sqlite %s failed (%s: %s); this worker's own answers only", what,
                        exc.__class__.__name__, exc)  # fmt: skip

    def __len__(self) -> int:
        """Answers in the shared file (0 when it cannot be read)."""
        if self._db is None:
            return 0
        try:
            with self._lock:
                return int(self._db.execute("SELECT count(*) FROM answers").fetchone()[0])
        except sqlite3.Error:
            return 0

    def close(self) -> None:
        if self._db is not None:
            with self._lock:
                self._db.close()
            self._db = None
