"""Conversations, feedback, webhook dedupe and rate limits → SQLite under the data dir, or Redis when shared.

`open_store` picks Redis when `KETLUAN_REDIS_URL` is set; a Redis outage never fails a request: the
RedisStore logs it, serves from an in-process SQLite store meanwhile and tries Redis again after a pause.
"""

from __future__ import annotations

import json
import logging
import math
import sqlite3
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol, TypeVar

from bot.models import Turn
from bot.settings import BotSettings

log = logging.getLogger(__name__)

CONVERSATION_TTL_SECONDS = 30 * 24 * 3600
MAX_FEEDBACK_KEPT = 10_000
T = TypeVar("T")


class ConversationStore(Protocol):
    def history(self, conversation_id: str) -> list[Turn]: ...

    def append(self, conversation_id: str, turn: Turn, max_turns: int) -> None: ...

    def clear(self, conversation_id: str) -> None: ...

    def exists(self, conversation_id: str) -> bool: ...

    def create(self, conversation_id: str) -> None: ...

    def has_message(self, conversation_id: str, message_id: str) -> bool: ...

    def add_feedback(
        self, conversation_id: str, message_id: str, rating: str, comment: str | None
    ) -> None: ...

    def feedback(self, limit: int = 100) -> list[dict[str, Any]]: ...

    def mark_seen(self, namespace: str, key: str, ttl_seconds: int) -> bool: ...

    def get_value(self, namespace: str, key: str) -> str | None: ...

    def set_value(self, namespace: str, key: str, value: str) -> None: ...

    def rate_limit(self, key: str, limit: int, window_seconds: int) -> tuple[bool, float]: ...

    def ping(self) -> bool: ...

    def close(self) -> None: ...


_SCHEMA = """
CREATE TABLE IF NOT EXISTS conversations (
    id TEXT PRIMARY KEY, created_at REAL NOT NULL, updated_at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS turns (
    conversation_id TEXT NOT NULL, seq INTEGER PRIMARY KEY AUTOINCREMENT, data TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS turns_conversation ON turns (conversation_id, seq);
CREATE TABLE IF NOT EXISTS messages (
    conversation_id TEXT NOT NULL, message_id TEXT NOT NULL, PRIMARY KEY (conversation_id, message_id));
CREATE TABLE IF NOT EXISTS feedback (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, conversation_id TEXT NOT NULL, message_id TEXT NOT NULL,
    rating TEXT NOT NULL, comment TEXT, created_at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS seen (namespace TEXT NOT NULL, key TEXT NOT NULL, expires REAL NOT NULL,
    PRIMARY KEY (namespace, key));
CREATE TABLE IF NOT EXISTS rate (key TEXT PRIMARY KEY, window_start REAL NOT NULL, count INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS kv (namespace TEXT NOT NULL, key TEXT NOT NULL, value TEXT NOT NULL,
    PRIMARY KEY (namespace, key));
"""


class SQLiteStore:
    """One SQLite file (WAL) shared by the threads of one process; ":memory:" for a private store."""

    def __init__(self, path: Path | str) -> None:
        self.path = str(path)
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None, timeout=10.0)
        if self.path != ":memory:":
            self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(_SCHEMA)

    def _tx(self, work: Callable[[sqlite3.Connection], T]) -> T:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                result = work(self._db)
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")
            return result

    def history(self, conversation_id: str) -> list[Turn]:
        with self._lock:
            rows = self._db.execute(
                "SELECT data FROM turns WHERE conversation_id = ? ORDER BY seq", (conversation_id,)
            ).fetchall()
        return [Turn.model_validate_json(r[0]) for r in rows]

    def append(self, conversation_id: str, turn: Turn, max_turns: int) -> None:
        now = time.time()

        def work(db: sqlite3.Connection) -> None:
            db.execute(
                "INSERT INTO conversations VALUES (?, ?, ?) "
                "ON CONFLICT(id) DO UPDATE SET updated_at = excluded.updated_at",
                (conversation_id, now, now),
            )
            db.execute(
                "INSERT INTO turns (conversation_id, data) VALUES (?, ?)",
                (conversation_id, turn.model_dump_json()),
            )
            db.execute("INSERT OR IGNORE INTO messages VALUES (?, ?)", (conversation_id, turn.message_id))
            db.execute(
                "DELETE FROM turns WHERE conversation_id = ? AND seq NOT IN "
                "(SELECT seq FROM turns WHERE conversation_id = ? ORDER BY seq DESC LIMIT ?)",
                (conversation_id, conversation_id, max(max_turns, 0)),
            )

        self._tx(work)

    def clear(self, conversation_id: str) -> None:
        self._tx(lambda db: db.execute("DELETE FROM turns WHERE conversation_id = ?", (conversation_id,)))

    def create(self, conversation_id: str) -> None:
        now = time.time()
        self._tx(
            lambda db: db.execute(
                "INSERT OR IGNORE INTO conversations VALUES (?, ?, ?)", (conversation_id, now, now)
            )
        )

    def exists(self, conversation_id: str) -> bool:
        with self._lock:
            row = self._db.execute("SELECT 1 FROM conversations WHERE id = ?", (conversation_id,)).fetchone()
        return row is not None

    def has_message(self, conversation_id: str, message_id: str) -> bool:
        with self._lock:
            row = self._db.execute(
                "SELECT 1 FROM messages WHERE conversation_id = ? AND message_id = ?",
                (conversation_id, message_id),
            ).fetchone()
        return row is not None

    def add_feedback(self, conversation_id: str, message_id: str, rating: str, comment: str | None) -> None:
        self._tx(
            lambda db: db.execute(
                "INSERT INTO feedback (conversation_id, message_id, rating, comment, created_at) "
                "VALUES (?, ?, ?, ?, ?)",
                (conversation_id, message_id, rating, comment, time.time()),
            )
        )

    def feedback(self, limit: int = 100) -> list[dict[str, Any]]:
        with self._lock:
            rows = self._db.execute(
                "SELECT conversation_id, message_id, rating, comment, created_at FROM feedback "
                "ORDER BY seq DESC LIMIT ?",
                (limit,),
            ).fetchall()
        keys = ("conversation_id", "message_id", "rating", "comment", "created_at")
        return [dict(zip(keys, r, strict=True)) for r in rows]

    def mark_seen(self, namespace: str, key: str, ttl_seconds: int) -> bool:
        now = time.time()

        def work(db: sqlite3.Connection) -> bool:
            db.execute(
                "DELETE FROM seen WHERE namespace = ? AND key = ? AND expires <= ?", (namespace, key, now)
            )
            cursor = db.execute(
                "INSERT OR IGNORE INTO seen VALUES (?, ?, ?)", (namespace, key, now + ttl_seconds)
            )
            return cursor.rowcount == 1

        return self._tx(work)

    def get_value(self, namespace: str, key: str) -> str | None:
        """A small shared value (e.g. the bots' refreshed Zalo token); None when unset."""
        with self._lock:
            row = self._db.execute(
                "SELECT value FROM kv WHERE namespace = ? AND key = ?", (namespace, key)
            ).fetchone()
        return None if row is None else str(row[0])

    def set_value(self, namespace: str, key: str, value: str) -> None:
        self._tx(lambda db: db.execute("INSERT OR REPLACE INTO kv VALUES (?, ?, ?)", (namespace, key, value)))

    def rate_limit(self, key: str, limit: int, window_seconds: int) -> tuple[bool, float]:
        now = time.time()

        def work(db: sqlite3.Connection) -> tuple[bool, float]:
            row = db.execute("SELECT window_start, count FROM rate WHERE key = ?", (key,)).fetchone()
            start, count = (row[0], row[1]) if row and now < row[0] + window_seconds else (now, 0)
            if count >= limit:
                return False, max(start + window_seconds - now, 0.001)
            db.execute("INSERT OR REPLACE INTO rate VALUES (?, ?, ?)", (key, start, count + 1))
            return True, 0.0

        return self._tx(work)

    def ping(self) -> bool:
        try:
            with self._lock:
                self._db.execute("SELECT 1").fetchone()
            return True
        except sqlite3.Error:
            return False

    def close(self) -> None:
        with self._lock:
            self._db.close()


# Fixed window counter; returns {count, ttl in ms} atomically so several workers share one limit.
_RATE_SCRIPT = """
local count = redis.call('INCR', KEYS[1])
if count == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
local ttl = redis.call('PTTL', KEYS[1])
if ttl < 0 then redis.call('PEXPIRE', KEYS[1], ARGV[1]); ttl = tonumber(ARGV[1]) end
return {count, ttl}
"""


class RedisStore:
    """Conversations in Redis so several workers share them; degrades to a local store while Redis is down."""

    def __init__(
        self, url: str, *, prefix: str = "ketluan:", retry_seconds: float = 5.0, socket_timeout: float = 0.5
    ) -> None:
        import redis

        self.url = url
        self.prefix = prefix
        self.retry_seconds = retry_seconds
        self._redis = redis.Redis.from_url(
            url,
            socket_timeout=socket_timeout,
            socket_connect_timeout=socket_timeout,
            health_check_interval=30,
            decode_responses=True,
        )
        self._errors: tuple[type[BaseException], ...] = (redis.RedisError, OSError)
        self._fallback = SQLiteStore(":memory:")
        self._down_until = 0.0
        self._lock = threading.Lock()
        self._rate = self._redis.register_script(_RATE_SCRIPT)

    @property
    def degraded(self) -> bool:
        return time.monotonic() < self._down_until

    def _k(self, *parts: str) -> str:
        return self.prefix + ":".join(parts)

    def _call(self, what: str, work: Callable[[], T], fallback: Callable[[SQLiteStore], T]) -> T:
        if self.degraded:
            return fallback(self._fallback)
        try:
            return work()
        except self._errors as exc:
            with self._lock:
                if not self.degraded:
                    log.error(
                        "redis unavailable (%s: %s) during %s; using the local store for %.0f s",
                        exc.__class__.__name__,
                        exc,
                        what,
                        self.retry_seconds,
                    )
                self._down_until = time.monotonic() + self.retry_seconds
            return fallback(self._fallback)

    def history(self, conversation_id: str) -> list[Turn]:
        def work() -> list[Turn]:
            raw = self._redis.lrange(self._k("turns", conversation_id), 0, -1)
            return [Turn.model_validate_json(r) for r in raw]  # type: ignore[union-attr]

        return self._call("history", work, lambda s: s.history(conversation_id))

    def append(self, conversation_id: str, turn: Turn, max_turns: int) -> None:
        def work() -> None:
            turns, conv, msgs = (
                self._k("turns", conversation_id),
                self._k("conv", conversation_id),
                self._k("msgs", conversation_id),
            )
            pipe = self._redis.pipeline(transaction=True)
            pipe.set(conv, str(time.time()), ex=CONVERSATION_TTL_SECONDS)
            if max_turns > 0:
                pipe.rpush(turns, turn.model_dump_json())
                pipe.ltrim(turns, -max_turns, -1)
                pipe.expire(turns, CONVERSATION_TTL_SECONDS)
            else:
                pipe.delete(turns)
            pipe.sadd(msgs, turn.message_id)
            pipe.expire(msgs, CONVERSATION_TTL_SECONDS)
            pipe.execute()

        self._call("append", work, lambda s: s.append(conversation_id, turn, max_turns))

    def clear(self, conversation_id: str) -> None:
        self._call(
            "clear",
            lambda: self._redis.delete(self._k("turns", conversation_id)) and None,
            lambda s: s.clear(conversation_id),
        )

    def create(self, conversation_id: str) -> None:
        def work() -> None:
            self._redis.set(
                self._k("conv", conversation_id), str(time.time()), ex=CONVERSATION_TTL_SECONDS, nx=True
            )

        self._call("create", work, lambda s: s.create(conversation_id))

    def exists(self, conversation_id: str) -> bool:
        return self._call(
            "exists",
            lambda: bool(self._redis.exists(self._k("conv", conversation_id))),
            lambda s: s.exists(conversation_id),
        )

    def has_message(self, conversation_id: str, message_id: str) -> bool:
        return self._call(
            "has_message",
            lambda: bool(self._redis.sismember(self._k("msgs", conversation_id), message_id)),
            lambda s: s.has_message(conversation_id, message_id),
        )

    def add_feedback(self, conversation_id: str, message_id: str, rating: str, comment: str | None) -> None:
        item = {
            "conversation_id": conversation_id,
            "message_id": message_id,
            "rating": rating,
            "comment": comment,
            "created_at": time.time(),
        }

        def work() -> None:
            pipe = self._redis.pipeline(transaction=True)
            pipe.lpush(self._k("feedback"), json.dumps(item, ensure_ascii=False))
            pipe.ltrim(self._k("feedback"), 0, MAX_FEEDBACK_KEPT - 1)
            pipe.execute()

        self._call(
            "add_feedback", work, lambda s: s.add_feedback(conversation_id, message_id, rating, comment)
        )

    def feedback(self, limit: int = 100) -> list[dict[str, Any]]:
        def work() -> list[dict[str, Any]]:
            raw = self._redis.lrange(self._k("feedback"), 0, max(limit, 1) - 1)
            return [json.loads(r) for r in raw]  # type: ignore[union-attr]

        return self._call("feedback", work, lambda s: s.feedback(limit))

    def mark_seen(self, namespace: str, key: str, ttl_seconds: int) -> bool:
        return self._call(
            "mark_seen",
            lambda: bool(
                self._redis.set(self._k("seen", namespace, key), "1", nx=True, ex=max(int(ttl_seconds), 1))
            ),
            lambda s: s.mark_seen(namespace, key, ttl_seconds),
        )

    def get_value(self, namespace: str, key: str) -> str | None:
        def work() -> str | None:
            value = self._redis.get(self._k("kv", namespace, key))
            return None if value is None else str(value)

        return self._call("get_value", work, lambda s: s.get_value(namespace, key))

    def set_value(self, namespace: str, key: str, value: str) -> None:
        self._call("set_value", lambda: self._redis.set(self._k("kv", namespace, key), value) and None,
                   lambda s: s.set_value(namespace, key, value))  # fmt: skip

    def rate_limit(self, key: str, limit: int, window_seconds: int) -> tuple[bool, float]:
        def work() -> tuple[bool, float]:
            count, ttl_ms = self._rate(keys=[self._k("rate", key)], args=[int(window_seconds * 1000)])
            if int(count) > limit:
                return False, max(int(ttl_ms), 1) / 1000.0
            return True, 0.0

        return self._call("rate_limit", work, lambda s: s.rate_limit(key, limit, window_seconds))

    def ping(self) -> bool:
        try:
            ok = bool(self._redis.ping())
        except self._errors:
            return False
        if ok and self.degraded:
            self._down_until = 0.0  # Redis is back: stop waiting for the retry pause
        return ok

    def close(self) -> None:
        try:
            self._redis.close()
        finally:
            self._fallback.close()


def open_store(settings: BotSettings, data_dir: Path) -> ConversationStore:
    """Redis when `KETLUAN_REDIS_URL` is set, else SQLite at data_dir/state/ketluan.sqlite3."""
    if settings.redis_url:
        return RedisStore(settings.redis_url)
    return SQLiteStore(Path(data_dir) / "state" / "ketluan.sqlite3")


def retry_after_seconds(value: float) -> int:
    """A Retry-After header value: whole seconds, at least 1."""
    return max(1, math.ceil(value))
