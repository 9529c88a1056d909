"""Conversation ids and turns → kept, bounded to the last turns, on the SQLite or the Redis backend."""

from __future__ import annotations

import re
import sqlite3
import time
from typing import Protocol

from bot.models import Turn
from bot.stores.backend import Tables
from bot.stores.redis_backend import RedisBackend
from bot.stores.sqlite_backend import SQLiteBackend

# The shape of the ids the service hands out (secrets.token_urlsafe) and the bots derive: during a Redis
# outage an id of this shape is taken to be a conversation the service made before the outage.
_ID = re.compile(r"[A-Za-z0-9_-]{1,200}")


class ConversationStore(Protocol):
    def history(self, conversation_id: str) -> list[Turn]: ...

    def append(self, conversation_id: str, turn: Turn, max_turns: int) -> None: ...

    def clear(self, conversation_id: str) -> None: ...

    def exists(self, conversation_id: str) -> bool: ...

    def create(self, conversation_id: str) -> None: ...

    def has_message(self, conversation_id: str, message_id: str) -> bool:
        """Whether `message_id` was answered in the conversation (even if its turn is no longer kept)."""
        ...


def _purge(db: sqlite3.Connection, now: float, cutoff: float) -> int:
    """Conversations not touched within the retention period, with their turns and message ids."""
    old = "SELECT id FROM conversations WHERE updated_at < ?"
    for table in ("turns", "messages"):
        db.execute(f"DELETE FROM {table} WHERE conversation_id IN ({old})", (cutoff,))
    return int(db.execute("DELETE FROM conversations WHERE updated_at < ?", (cutoff,)).rowcount)


TABLES = Tables(
    "conversations",
    """
CREATE TABLE IF NOT EXISTS conversations (
    id TEXT PRIMARY KEY, created_at REAL NOT NULL, updated_at REAL NOT NULL);
CREATE INDEX IF NOT EXISTS conversations_updated ON conversations (updated_at);
CREATE TABLE IF NOT EXISTS turns (
    conversation_id TEXT NOT NULL, seq INTEGER PRIMARY KEY AUTOINCREMENT, data TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS turns_conversation ON turns (conversation_id, seq);
CREATE TABLE IF NOT EXISTS messages (
    conversation_id TEXT NOT NULL, message_id TEXT NOT NULL, PRIMARY KEY (conversation_id, message_id));
""",
    purge=_purge,
)


class SQLiteConversations:
    def __init__(self, backend: SQLiteBackend) -> None:
        self._b = backend

    def history(self, conversation_id: str) -> list[Turn]:
        rows = self._b.read(
            "history", "SELECT data FROM turns WHERE conversation_id = ? ORDER BY seq", (conversation_id,)
        )
        return [Turn.model_validate_json(r[0]) for r in rows]

    def append(self, conversation_id: str, turn: Turn, max_turns: int) -> None:
        now = self._b.clock()

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

        self._b.write("append", work, None)

    def clear(self, conversation_id: str) -> None:
        self._b.write(
            "clear", lambda db: db.execute("DELETE FROM turns WHERE conversation_id = ?", (conversation_id,)), None
        )  # fmt: skip

    def create(self, conversation_id: str) -> None:
        now = self._b.clock()
        self._b.write(
            "create",
            lambda db: db.execute(
                "INSERT OR IGNORE INTO conversations VALUES (?, ?, ?)", (conversation_id, now, now)
            ),
            None,
        )

    def exists(self, conversation_id: str) -> bool:
        return bool(self._b.read("exists", "SELECT 1 FROM conversations WHERE id = ?", (conversation_id,)))

    def has_message(self, conversation_id: str, message_id: str) -> bool:
        return bool(
            self._b.read(
                "has_message",
                "SELECT 1 FROM messages WHERE conversation_id = ? AND message_id = ?",
                (conversation_id, message_id),
            )
        )


class RedisConversations:
    """Turns in a list per conversation, message ids in a set; both expire with the retention period.

    While Redis cannot be asked, conversation and message ids of the service's shape are taken on trust (a
    follow-up keeps its conversation; its turns reach Redis with the replay, where feedback is checked again)."""

    def __init__(self, backend: RedisBackend) -> None:
        self._b = backend
        self._r = backend.client
        self._local = SQLiteConversations(backend.local)
        backend.on_replay("create", lambda a: self._create(a[0], a[1]))
        backend.on_replay(
            "append", lambda a: self._append(a[0], Turn.model_validate_json(a[1]), int(a[2]), a[3])
        )
        backend.on_replay("clear", lambda a: self._clear(a[0]))

    def history(self, conversation_id: str) -> list[Turn]:
        def work() -> list[Turn]:
            raw = self._r.lrange(self._b.key("turns", conversation_id), 0, -1)
            return [Turn.model_validate_json(r) for r in raw]  # type: ignore[union-attr]

        return self._b.call("history", work, lambda: self._local.history(conversation_id))

    def _append(self, conversation_id: str, turn: Turn, max_turns: int, at: float) -> None:
        k = self._b.key
        turns, conv, msgs = (
            k("turns", conversation_id),
            k("conv", conversation_id),
            k("msgs", conversation_id),
        )
        ttl = self._b.ttl_seconds
        pipe = self._r.pipeline(transaction=True)
        pipe.set(conv, str(at), ex=ttl)
        if max_turns > 0:
            pipe.rpush(turns, turn.model_dump_json())
            pipe.ltrim(turns, -max_turns, -1)
            pipe.expire(turns, ttl)
        else:
            pipe.delete(turns)
        pipe.sadd(msgs, turn.message_id)
        pipe.expire(msgs, ttl)
        pipe.execute()

    def append(self, conversation_id: str, turn: Turn, max_turns: int) -> None:
        at = time.time()
        self._b.call(
            "append",
            lambda: self._append(conversation_id, turn, max_turns, at),
            lambda: self._local.append(conversation_id, turn, max_turns),
            [conversation_id, turn.model_dump_json(), max_turns, at],
        )

    def _clear(self, conversation_id: str) -> None:
        self._r.delete(self._b.key("turns", conversation_id))

    def clear(self, conversation_id: str) -> None:
        self._b.call(
            "clear",
            lambda: self._clear(conversation_id),
            lambda: self._local.clear(conversation_id),
            [conversation_id],
        )

    def _create(self, conversation_id: str, at: float) -> None:
        self._r.set(self._b.key("conv", conversation_id), str(at), ex=self._b.ttl_seconds, nx=True)

    def create(self, conversation_id: str) -> None:
        at = time.time()
        self._b.call(
            "create",
            lambda: self._create(conversation_id, at),
            lambda: self._local.create(conversation_id),
            [conversation_id, at],
        )

    def exists(self, conversation_id: str) -> bool:
        return self._b.call(
            "exists",
            lambda: bool(self._r.exists(self._b.key("conv", conversation_id))),
            lambda: self._local.exists(conversation_id) or bool(_ID.fullmatch(conversation_id)),
        )

    def has_message(self, conversation_id: str, message_id: str) -> bool:
        return self._b.call(
            "has_message",
            lambda: bool(self._r.sismember(self._b.key("msgs", conversation_id), message_id)),
            lambda: (
                self._local.has_message(conversation_id, message_id)
                or bool(_ID.fullmatch(conversation_id) and _ID.fullmatch(message_id))
            ),
        )

    def known_message(self, conversation_id: str, message_id: str) -> bool:
        """Whether Redis itself knows the message (no trust during an outage): raises when it cannot say."""
        return bool(self._r.sismember(self._b.key("msgs", conversation_id), message_id))
