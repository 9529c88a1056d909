"""A key (an address, an API key, a conversation) and its limit per window → allowed or not, and the wait."""

from __future__ import annotations

import sqlite3
from typing import Protocol

from bot.stores.backend import Tables
from bot.stores.redis_backend import RedisBackend
from bot.stores.sqlite_backend import SQLiteBackend


class RateLimitStore(Protocol):
    def rate_limit(self, key: str, limit: int, window_seconds: int) -> tuple[bool, float]:
        """Count this call against `key`'s window: (allowed, seconds to wait when not)."""
        ...

    def rate_exceeded(self, key: str, limit: int, window_seconds: int) -> tuple[bool, float]:
        """Whether `key` has used up its `limit` in the current window, without counting this call."""
        ...


def _purge(db: sqlite3.Connection, now: float, cutoff: float) -> int:
    """Counters whose window began more than a day ago (one per made-up key would pile up)."""
    return int(db.execute("DELETE FROM rate WHERE window_start < ?", (now - 86400,)).rowcount)


TABLES = Tables(
    "rate",
    "CREATE TABLE IF NOT EXISTS rate (key TEXT PRIMARY KEY, window_start REAL NOT NULL, count INTEGER NOT NULL);",
    purge=_purge,
)


class SQLiteRateLimits:
    """A fixed window counter per key; when it cannot be written, the call is allowed."""

    def __init__(self, backend: SQLiteBackend) -> None:
        self._b = backend

    def rate_limit(self, key: str, limit: int, window_seconds: int) -> tuple[bool, float]:
        now = self._b.clock()

        def work(db: sqlite3.Connection) -> tuple[bool, float]:
            row = db.execute("SELECT window_start, count FROM rate WHERE key = ?", (key,)).fetchone()
            start, count = (row[0], row[1]) if row and now < row[0] + window_seconds else (now, 0)
            if count >= limit:
                return False, max(start + window_seconds - now, 0.001)
            db.execute("INSERT OR REPLACE INTO rate VALUES (?, ?, ?)", (key, start, count + 1))
            return True, 0.0

        return self._b.write("rate_limit", work, (True, 0.0))

    def rate_exceeded(self, key: str, limit: int, window_seconds: int) -> tuple[bool, float]:
        now = self._b.clock()
        rows = self._b.read("rate_exceeded", "SELECT window_start, count FROM rate WHERE key = ?", (key,))
        if rows and now < rows[0][0] + window_seconds and rows[0][1] >= limit:
            return True, max(rows[0][0] + window_seconds - now, 0.001)
        return False, 0.0


# Fixed window counter; returns {count, ttl in ms} atomically so several workers share one limit.
_RATE_SCRIPT = """
local count = redis.call('INCR', KEYS[1])
if count == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
local ttl = redis.call('PTTL', KEYS[1])
if ttl < 0 then redis.call('PEXPIRE', KEYS[1], ARGV[1]); ttl = tonumber(ARGV[1]) end
return {count, ttl}
"""


class RedisRateLimits:
    """The same window in Redis, shared by every worker; counted locally (not journaled) during an outage."""

    def __init__(self, backend: RedisBackend) -> None:
        self._b = backend
        self._r = backend.client
        self._local = SQLiteRateLimits(backend.local)
        self._script = self._r.register_script(_RATE_SCRIPT)

    def rate_limit(self, key: str, limit: int, window_seconds: int) -> tuple[bool, float]:
        def work() -> tuple[bool, float]:
            count, ttl_ms = self._script(keys=[self._b.key("rate", key)], args=[int(window_seconds * 1000)])
            if int(count) > limit:
                return False, max(int(ttl_ms), 1) / 1000.0
            return True, 0.0

        return self._b.call("rate_limit", work, lambda: self._local.rate_limit(key, limit, window_seconds))

    def rate_exceeded(self, key: str, limit: int, window_seconds: int) -> tuple[bool, float]:
        def work() -> tuple[bool, float]:
            pipe = self._r.pipeline(transaction=False)
            pipe.get(self._b.key("rate", key))
            pipe.pttl(self._b.key("rate", key))
            count, ttl_ms = pipe.execute()
            if count is not None and int(count) >= limit and int(ttl_ms) > 0:
                return True, int(ttl_ms) / 1000.0
            return False, 0.0

        return self._b.call(
            "rate_exceeded", work, lambda: self._local.rate_exceeded(key, limit, window_seconds)
        )
