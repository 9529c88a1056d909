"""A (namespace, key) pair such as a webhook's update id → True the first time it is seen within its TTL."""

from __future__ import annotations

import sqlite3
import time
from typing import Any, Protocol

from bot.stores.backend import Tables
from bot.stores.redis_backend import RedisBackend
from bot.stores.sqlite_backend import SQLiteBackend


class DedupeStore(Protocol):
    def mark_seen(self, namespace: str, key: str, ttl_seconds: int) -> bool:
        """True for the first caller (of every worker) that marks the pair; the mark lasts ttl_seconds."""
        ...


def _purge(db: sqlite3.Connection, now: float, cutoff: float) -> int:
    return int(db.execute("DELETE FROM seen WHERE expires <= ?", (now,)).rowcount)


TABLES = Tables(
    "seen",
    """
CREATE TABLE IF NOT EXISTS seen (namespace TEXT NOT NULL, key TEXT NOT NULL, expires REAL NOT NULL,
    PRIMARY KEY (namespace, key));
""",
    purge=_purge,
)


class SQLiteDedupe:
    def __init__(self, backend: SQLiteBackend) -> None:
        self._b = backend

    def mark_seen(self, namespace: str, key: str, ttl_seconds: int) -> bool:
        return self.mark_seen_until(namespace, key, self._b.clock() + ttl_seconds)

    def mark_seen_until(self, namespace: str, key: str, expires: float) -> bool:
        now = self._b.clock()

        def work(db: sqlite3.Connection) -> bool:
            db.execute(
                "DELETE FROM seen WHERE namespace = ? AND key = ? AND expires <= ?", (namespace, key, now)
            )
            cursor = db.execute("INSERT OR IGNORE INTO seen VALUES (?, ?, ?)", (namespace, key, expires))
            return cursor.rowcount == 1

        return self._b.write("mark_seen", work, True)  # cannot record it: better answer twice than never


class RedisDedupe:
    """Marks are written to Redis and to the local stand-in, so a redelivery is recognised through an outage."""

    def __init__(self, backend: RedisBackend) -> None:
        self._b = backend
        self._r = backend.client
        self._local = SQLiteDedupe(backend.local)
        backend.on_replay("mark_seen", self._replay)

    def _replay(self, args: list[Any]) -> None:
        ttl = int(float(args[2]) - time.time())
        if ttl > 0:
            self._r.set(self._b.key("seen", args[0], args[1]), "1", nx=True, ex=ttl)

    def mark_seen(self, namespace: str, key: str, ttl_seconds: int) -> bool:
        expires = time.time() + ttl_seconds

        def work() -> bool:
            first = bool(
                self._r.set(self._b.key("seen", namespace, key), "1", nx=True, ex=max(int(ttl_seconds), 1))
            )
            self._local.mark_seen_until(namespace, key, expires)  # so an outage does not forget it
            return first

        return self._b.call(
            "mark_seen", work, lambda: self._local.mark_seen_until(namespace, key, expires), [namespace, key, expires]
        )  # fmt: skip
