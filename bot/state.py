"""What the bots keep besides conversations → locks, one-time claims, small values and agency subscriptions.

Kept on the backend of the other stores (bot/stores), so every worker sees the same state: Redis when
`KETLUAN_REDIS_URL` is set (the backend's own client is reused), else tables of their own in the backend's
SQLite file (a second connection to it; WAL lets several processes share it).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import secrets
import sqlite3
import threading
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, TypeVar

from bot.stores.redis_backend import RedisBackend
from bot.stores.sqlite_backend import SQLiteBackend
from bot.transactions import write_transaction

log = logging.getLogger(__name__)
T = TypeVar("T")


@dataclass(frozen=True)
class Subscription:
    """A chat that follows an agency's deadlines; `thread` is a Telegram forum topic (0 = none)."""

    channel: str
    chat: str
    agency: str
    thread: int = 0


class BotState(Protocol):
    def claim(self, key: str, ttl_seconds: float) -> bool:
        """True for the one caller (of every worker) that claims `key` first; the claim lasts ttl_seconds."""
        ...

    def acquire(self, name: str, ttl_seconds: float) -> str | None:
        """A lease on lock `name` (its owner token), or None while someone else holds it."""
        ...

    def release(self, name: str, owner: str) -> None: ...

    def get(self, key: str) -> str | None: ...

    def put(self, key: str, value: str, ttl_seconds: float | None = None) -> None: ...

    def subscribe(self, subscription: Subscription) -> bool:
        """True when it is new."""
        ...

    def unsubscribe(self, channel: str, chat: str, agency: str | None = None, thread: int = 0) -> int:
        """Stop following `agency` (None: every agency); how many subscriptions ended."""
        ...

    def subscriptions(self, channel: str | None = None, chat: str | None = None) -> list[Subscription]: ...

    def close(self) -> None: ...


_SCHEMA = """
CREATE TABLE IF NOT EXISTS bot_locks (name TEXT PRIMARY KEY, owner TEXT NOT NULL, expires REAL NOT NULL);
CREATE TABLE IF NOT EXISTS bot_claims (key TEXT PRIMARY KEY, expires REAL NOT NULL);
CREATE TABLE IF NOT EXISTS bot_values (key TEXT PRIMARY KEY, value TEXT NOT NULL, expires REAL);
CREATE TABLE IF NOT EXISTS bot_subscriptions (channel TEXT NOT NULL, chat TEXT NOT NULL,
    thread INTEGER NOT NULL DEFAULT 0, agency TEXT NOT NULL, created REAL NOT NULL,
    PRIMARY KEY (channel, chat, thread, agency));
"""


class SQLiteState:
    """Bot state in a SQLite file; ":memory:" keeps it private to this process (tests, throwaway stores)."""

    def __init__(self, path: Path | str, clock: Callable[[], float] = time.time) -> None:
        self.path = str(path)
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        self._clock = clock
        self._lock = threading.Lock()
        self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None, timeout=10.0)
        if self.path != ":memory:":
            _set_wal(self._db)
        self._db.executescript(_SCHEMA)

    def _tx(self, work: Callable[[sqlite3.Connection], T]) -> T:
        return write_transaction(self._db, self._lock, work)

    def claim(self, key: str, ttl_seconds: float) -> bool:
        now = self._clock()

        def work(db: sqlite3.Connection) -> bool:
            db.execute("DELETE FROM bot_claims WHERE key = ? AND expires <= ?", (key, now))
            cursor = db.execute("INSERT OR IGNORE INTO bot_claims VALUES (?, ?)", (key, now + ttl_seconds))
            return cursor.rowcount == 1

        return self._tx(work)

    def acquire(self, name: str, ttl_seconds: float) -> str | None:
        owner, now = secrets.token_hex(8), self._clock()

        def work(db: sqlite3.Connection) -> str | None:
            db.execute("DELETE FROM bot_locks WHERE name = ? AND expires <= ?", (name, now))
            cursor = db.execute(
                "INSERT OR IGNORE INTO bot_locks VALUES (?, ?, ?)", (name, owner, now + ttl_seconds)
            )
            return owner if cursor.rowcount == 1 else None

        return self._tx(work)

    def release(self, name: str, owner: str) -> None:
        self._tx(lambda db: db.execute("DELETE FROM bot_locks WHERE name = ? AND owner = ?", (name, owner)))

    def get(self, key: str) -> str | None:
        with self._lock:
            row = self._db.execute("SELECT value, expires FROM bot_values WHERE key = ?", (key,)).fetchone()
        if row is None or (row[1] is not None and row[1] <= self._clock()):
            return None
        return str(row[0])

    def put(self, key: str, value: str, ttl_seconds: float | None = None) -> None:
        expires = None if ttl_seconds is None else self._clock() + ttl_seconds
        self._tx(
            lambda db: db.execute("INSERT OR REPLACE INTO bot_values VALUES (?, ?, ?)", (key, value, expires))
        )

    def subscribe(self, subscription: Subscription) -> bool:
        s = subscription
        return self._tx(
            lambda db: (
                db.execute(
                    "INSERT OR IGNORE INTO bot_subscriptions VALUES (?, ?, ?, ?, ?)",
                    (s.channel, s.chat, s.thread, s.agency, self._clock()),
                ).rowcount
                == 1
            )
        )

    def unsubscribe(self, channel: str, chat: str, agency: str | None = None, thread: int = 0) -> int:
        sql = "DELETE FROM bot_subscriptions WHERE channel = ? AND chat = ? AND thread = ?"
        args: tuple[Any, ...] = (channel, chat, thread)
        if agency is not None:
            sql, args = sql + " AND agency = ?", (*args, agency)
        return self._tx(lambda db: db.execute(sql, args).rowcount)

    def subscriptions(self, channel: str | None = None, chat: str | None = None) -> list[Subscription]:
        sql, args = "SELECT channel, chat, agency, thread FROM bot_subscriptions WHERE 1 = 1", list[str]()
        if channel is not None:
            sql, args = sql + " AND channel = ?", [*args, channel]
        if chat is not None:
            sql, args = sql + " AND chat = ?", [*args, chat]
        with self._lock:
            rows = self._db.execute(sql + " ORDER BY created, agency", args).fetchall()
        return [Subscription(r[0], r[1], r[2], int(r[3])) for r in rows]

    def close(self) -> None:
        with self._lock:
            self._db.close()


# Delete the lock only if we still own it (it may have expired and been taken by another worker).
_RELEASE_SCRIPT = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


class RedisState:
    """Bot state in Redis, next to the conversations, through the stores' client."""

    def __init__(self, client: Any, prefix: str = "ketluan:") -> None:
        self._redis = client
        self._prefix = prefix + "bot:"
        self._release = client.register_script(_RELEASE_SCRIPT)

    def _k(self, *parts: str) -> str:
        return self._prefix + ":".join(parts)

    def claim(self, key: str, ttl_seconds: float) -> bool:
        return bool(self._redis.set(self._k("claim", key), "1", nx=True, px=max(1, int(ttl_seconds * 1000))))

    def acquire(self, name: str, ttl_seconds: float) -> str | None:
        owner = secrets.token_hex(8)
        ok = self._redis.set(self._k("lock", name), owner, nx=True, px=max(1, int(ttl_seconds * 1000)))
        return owner if ok else None

    def release(self, name: str, owner: str) -> None:
        self._release(keys=[self._k("lock", name)], args=[owner])

    def get(self, key: str) -> str | None:
        value = self._redis.get(self._k("value", key))
        return None if value is None else str(value)

    def put(self, key: str, value: str, ttl_seconds: float | None = None) -> None:
        px = None if ttl_seconds is None else max(1, int(ttl_seconds * 1000))
        self._redis.set(self._k("value", key), value, px=px)

    @staticmethod
    def _field(s: Subscription) -> str:
        return json.dumps([s.channel, s.chat, s.thread, s.agency], ensure_ascii=False)

    def subscribe(self, subscription: Subscription) -> bool:
        return bool(self._redis.hsetnx(self._k("subscriptions"), self._field(subscription), str(time.time())))

    def unsubscribe(self, channel: str, chat: str, agency: str | None = None, thread: int = 0) -> int:
        gone = [
            self._field(s)
            for s in self.subscriptions(channel, chat)
            if s.thread == thread and (agency is None or s.agency == agency)
        ]
        return int(self._redis.hdel(self._k("subscriptions"), *gone)) if gone else 0

    def subscriptions(self, channel: str | None = None, chat: str | None = None) -> list[Subscription]:
        raw: dict[str, str] = self._redis.hgetall(self._k("subscriptions"))
        out = []
        for field, _created in sorted(raw.items(), key=lambda kv: (float(kv[1]), kv[0])):
            ch, ct, thread, agency = json.loads(field)
            if (channel is None or ch == channel) and (chat is None or ct == chat):
                out.append(Subscription(ch, ct, agency, int(thread)))
        return out

    def close(self) -> None:
        """The client belongs to the stores' backend, which closes it."""


def open_state(backend: SQLiteBackend | RedisBackend) -> BotState:
    """The bot state on the stores' backend: its Redis client and key space, else its SQLite file."""
    if isinstance(backend, RedisBackend):
        return RedisState(backend.client, backend.prefix)
    return SQLiteState(backend.path)


@contextlib.asynccontextmanager
async def held(
    state: BotState, name: str, *, ttl: float = 60.0, wait: float = 30.0, poll: float = 0.05
) -> AsyncIterator[bool]:
    """Hold lock `name` across workers while the block runs; False when it could not be had within `wait`
    seconds. A state backend that fails is logged and the block runs unlocked: better than not at all."""
    deadline = time.monotonic() + wait
    owner: str | None = None
    while True:
        try:
            owner = await asyncio.to_thread(state.acquire, name, ttl)
        except Exception:
            log.warning("bot state: could not take lock %s; going on without it", name, exc_info=True)
            yield True
            return
        if owner is not None or time.monotonic() >= deadline:
            break
        await asyncio.sleep(poll)
    try:
        yield owner is not None
    finally:
        if owner is not None:
            with contextlib.suppress(Exception):
                await asyncio.to_thread(state.release, name, owner)


def _set_wal(db: sqlite3.Connection, attempts: int = 100) -> None:
    """WAL mode, waiting for another process that opens the same new file at the same moment: SQLite answers
    "database is locked" to the journal-mode change without calling the busy handler."""
    for attempt in range(attempts):
        try:
            db.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError:
            if attempt == attempts - 1:
                raise
            time.sleep(0.02)
