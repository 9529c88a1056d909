"""Ratings of answers (one per message, the latest wins) → kept for the retention period, newest first."""

from __future__ import annotations

import json
import logging
import sqlite3
import time
from collections.abc import Callable
from typing import Any, Protocol

from bot.stores.backend import Tables
from bot.stores.redis_backend import RedisBackend
from bot.stores.sqlite_backend import SQLiteBackend

log = logging.getLogger(__name__)

_PURGE_EVERY_SECONDS = 3600.0
_KEYS = ("conversation_id", "message_id", "rating", "comment", "created_at")


class FeedbackStore(Protocol):
    def add(self, conversation_id: str, message_id: str, rating: str, comment: str | None) -> None: ...

    def recent(self, limit: int = 100) -> list[dict[str, Any]]:
        """The newest ratings first: {conversation_id, message_id, rating, comment, created_at}."""
        ...


# One feedback per message: older databases kept every post, so keep the newest of each before the index.
_UNIQUE = """
DELETE FROM feedback WHERE seq NOT IN (SELECT MAX(seq) FROM feedback GROUP BY conversation_id, message_id);
CREATE UNIQUE INDEX feedback_message ON feedback (conversation_id, message_id);
"""


def _migrate(db: sqlite3.Connection) -> None:
    if db.execute("SELECT 1 FROM sqlite_master WHERE name = 'feedback_message'").fetchone() is None:
        db.executescript("BEGIN IMMEDIATE;" + _UNIQUE + "COMMIT;")


def _purge(db: sqlite3.Connection, now: float, cutoff: float) -> int:
    """Ratings past retention, and those of conversations that are (run before the conversations' purge)."""
    gone = db.execute(
        "DELETE FROM feedback WHERE conversation_id IN (SELECT id FROM conversations WHERE updated_at < ?)",
        (cutoff,),
    ).rowcount
    return int(gone + db.execute("DELETE FROM feedback WHERE created_at < ?", (cutoff,)).rowcount)


TABLES = Tables(
    "feedback",
    """
CREATE TABLE IF NOT EXISTS feedback (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, conversation_id TEXT NOT NULL, message_id TEXT NOT NULL,
    rating TEXT NOT NULL, comment TEXT, created_at REAL NOT NULL);
""",
    migrate=_migrate,
    purge=_purge,
)


class SQLiteFeedback:
    def __init__(self, backend: SQLiteBackend) -> None:
        self._b = backend

    def add(
        self,
        conversation_id: str,
        message_id: str,
        rating: str,
        comment: str | None,
        created_at: float | None = None,
    ) -> None:
        at = self._b.clock() if created_at is None else created_at
        self._b.write(
            "add_feedback",
            lambda db: db.execute(
                "INSERT INTO feedback (conversation_id, message_id, rating, comment, created_at) "
                "VALUES (?, ?, ?, ?, ?) ON CONFLICT (conversation_id, message_id) DO UPDATE SET "
                "rating = excluded.rating, comment = excluded.comment, created_at = excluded.created_at",
                (conversation_id, message_id, rating, comment, at),
            ),
            None,
        )

    def recent(self, limit: int = 100) -> list[dict[str, Any]]:
        rows = self._b.read(
            "feedback",
            "SELECT conversation_id, message_id, rating, comment, created_at FROM feedback "
            "ORDER BY created_at DESC, seq DESC LIMIT ?",
            (limit,),
        )
        return [dict(zip(_KEYS, r, strict=True)) for r in rows]


class RedisFeedback:
    """One hash field per message, found newest first through a sorted set; purged by age, never by count,
    so nobody's flood evicts anyone else's rating. A journaled rating is replayed only on a message Redis
    knows (`known(conversation_id, message_id)`), as the HTTP route checks before it accepts one."""

    def __init__(self, backend: RedisBackend, known: Callable[[str, str], bool]) -> None:
        self._b = backend
        self._r = backend.client
        self._local = SQLiteFeedback(backend.local)
        self._known = known
        self._next_purge = 0.0
        backend.on_replay("add_feedback", self._replay)

    def _replay(self, args: list[Any]) -> None:
        if self._known(args[0], args[1]):
            self._add(args[0], args[1], args[2], args[3], float(args[4]))
        else:
            log.warning("journaled feedback on unknown message %s dropped", args[1][:40])

    def _add(
        self, conversation_id: str, message_id: str, rating: str, comment: str | None, at: float
    ) -> None:
        items, recent = self._b.key("feedback", "items"), self._b.key("feedback", "recent")
        field = f"{conversation_id}\x1f{message_id}"
        item = dict(zip(_KEYS, (conversation_id, message_id, rating, comment, at), strict=True))
        pipe = self._r.pipeline(transaction=True)
        pipe.hset(items, field, json.dumps(item, ensure_ascii=False))
        pipe.zadd(recent, {field: at})
        pipe.execute()
        if time.monotonic() >= self._next_purge:
            self._next_purge = time.monotonic() + _PURGE_EVERY_SECONDS
            old = self._r.zrangebyscore(recent, "-inf", time.time() - self._b.ttl_seconds)
            if old:
                pipe = self._r.pipeline(transaction=True)
                pipe.hdel(items, *old)  # type: ignore[arg-type]
                pipe.zrem(recent, *old)  # type: ignore[arg-type]
                pipe.execute()

    def add(self, conversation_id: str, message_id: str, rating: str, comment: str | None) -> None:
        at = time.time()
        self._b.call(
            "add_feedback",
            lambda: self._add(conversation_id, message_id, rating, comment, at),
            lambda: self._local.add(conversation_id, message_id, rating, comment, at),
            [conversation_id, message_id, rating, comment, at],
        )

    def recent(self, limit: int = 100) -> list[dict[str, Any]]:
        def work() -> list[dict[str, Any]]:
            fields = self._r.zrevrange(self._b.key("feedback", "recent"), 0, max(limit, 1) - 1)
            if not fields:
                return []
            raw = self._r.hmget(self._b.key("feedback", "items"), fields)  # type: ignore[arg-type]
            return [json.loads(r) for r in raw if r]  # type: ignore[union-attr]

        return self._b.call("feedback", work, lambda: self._local.recent(limit))
