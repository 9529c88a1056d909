"""Conversations, feedback, webhook dedupe and rate limits → SQLite under the data dir, or Redis when shared.

`open_store` picks Redis when `KETLUAN_REDIS_URL` is set. Neither store fails an answer because state cannot
be written: a failed write is logged and reported by `health()` (and so by /readyz), the answer goes out.

- SQLite: a file that is not a database is moved aside (`*.corrupt-<time>`) and a fresh one started;
  conversations older than the retention setting are purged, so the file stays bounded.
- Redis: during an outage every write goes to a local SQLite file (shared by the workers of one host) and
  to a journal in it; the journal is replayed into Redis, in order, as soon as Redis answers again.
"""

from __future__ import annotations

import json
import logging
import math
import re
import sqlite3
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol, TypeVar

from bot.models import Turn
from bot.settings import BotSettings
from bot.transactions import write_transaction

log = logging.getLogger(__name__)

DEFAULT_RETENTION_DAYS = 30.0
T = TypeVar("T")

# Reason codes `health()` reports (and /readyz shows); the log line beside each says more.
STATE_RESET = "state_reset"  # the state database was not a database: moved aside, started afresh
STATE_NOT_WRITABLE = "state_not_writable"  # writes fail (disk full, read-only): answering without saving
REDIS_UNAVAILABLE = "redis_unavailable"  # Redis does not answer: serving from the local journal

# SQLite primary result codes (the low byte of sqlite_errorcode)
_SQLITE_CORRUPT, _SQLITE_NOTADB = 11, 26
# The shape of the ids the service hands out (secrets.token_urlsafe) and the bots derive: during a Redis
# outage an id of this shape is taken to be a conversation the service made before the outage.
_ID = re.compile(r"[A-Za-z0-9_-]{1,200}")


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

    def health(self) -> list[str]: ...

    def close(self) -> None: ...


_SCHEMA = """
CREATE TABLE IF NOT EXISTS conversations (
    id TEXT PRIMARY KEY, created_at REAL NOT NULL, updated_at REAL NOT NULL);
CREATE INDEX IF NOT EXISTS conversations_updated ON conversations (updated_at);
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
CREATE TABLE IF NOT EXISTS journal (seq INTEGER PRIMARY KEY AUTOINCREMENT, op TEXT NOT NULL,
    args TEXT NOT NULL);
"""
# One feedback per message: older databases kept every post, so keep the newest of each before the index.
_FEEDBACK_UNIQUE = """
DELETE FROM feedback WHERE seq NOT IN (SELECT MAX(seq) FROM feedback GROUP BY conversation_id, message_id);
CREATE UNIQUE INDEX feedback_message ON feedback (conversation_id, message_id);
"""
_PURGE_EVERY_SECONDS = 3600.0


def _is_corrupt(exc: BaseException) -> bool:
    code = getattr(exc, "sqlite_errorcode", None)
    return isinstance(code, int) and code & 0xFF in (_SQLITE_CORRUPT, _SQLITE_NOTADB)


class SQLiteStore:
    """One SQLite file (WAL) shared by the threads of one process (and by processes, through SQLite's
    locks); ":memory:" for a private store. Never raises for a failed write: logs it and reports it."""

    def __init__(
        self,
        path: Path | str,
        *,
        retention_days: float = DEFAULT_RETENTION_DAYS,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.path = str(path)
        self.retention_seconds = retention_days * 86400
        self._clock = clock
        self._lock = threading.Lock()
        self._problems: set[str] = set()  # sticky for this process: STATE_RESET
        self._write_failed = False
        self._last_write_log = 0.0
        self._next_purge = 0.0
        self._db = self._open()
        self.purge()

    # --- opening, and what to do with a file that is not a database ---------------------------------
    def _open(self) -> sqlite3.Connection:
        if self.path == ":memory:":
            return self._connect()
        try:
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
            return self._connect()
        except sqlite3.DatabaseError as exc:
            if not _is_corrupt(exc):
                log.error("state database cannot be opened (%s); keeping state in memory", exc)
                self._problems.add(STATE_NOT_WRITABLE)
                self.path = ":memory:"
                return self._connect()
            self._move_aside(exc)
            return self._connect()
        except OSError as exc:
            log.error("state folder cannot be created (%s); keeping state in memory", exc)
            self._problems.add(STATE_NOT_WRITABLE)
            self.path = ":memory:"
            return self._connect()

    def _connect(self) -> sqlite3.Connection:
        db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None, timeout=10.0)
        try:
            if self.path != ":memory:":
                db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")
            db.executescript(_SCHEMA)
            if db.execute("SELECT 1 FROM sqlite_master WHERE name = 'feedback_message'").fetchone() is None:
                db.executescript("BEGIN IMMEDIATE;" + _FEEDBACK_UNIQUE + "COMMIT;")
        except BaseException:
            db.close()
            raise
        return db

    def _move_aside(self, exc: BaseException) -> None:
        stamp = time.strftime("%Y%m%dT%H%M%S")
        target = Path(f"{self.path}.corrupt-{stamp}")
        for suffix in ("", "-wal", "-shm"):
            source = Path(self.path + suffix)
            if source.exists():
                source.replace(Path(str(target) + suffix))
        self._problems.add(STATE_RESET)
        log.error(
            "state database %s is not a database (%s); moved it aside to %s and started an empty one",
            self.path, exc, target.name,
        )  # fmt: skip

    def _recover(self, exc: BaseException) -> None:
        """The file was damaged while serving: move it aside and reopen, unless another process did."""
        self._db.close()
        try:
            probe = sqlite3.connect(self.path, timeout=10.0)
            try:
                probe.execute("SELECT count(*) FROM conversations").fetchone()
                fine = True
            finally:
                probe.close()
        except sqlite3.DatabaseError:
            fine = False
        if not fine:
            self._move_aside(exc)
        self._db = self._connect()

    # --- the two ways in: reads and writes that never fail the caller -------------------------------
    def _tx(self, work: Callable[[sqlite3.Connection], T]) -> T:
        return write_transaction(self._db, self._lock, work)

    def _guard(self, what: str, run: Callable[[], T], default: T, *, write: bool) -> T:
        for attempt in (1, 2):
            try:
                result = run()
                if write:
                    self._write_failed = False
                return result
            except sqlite3.DatabaseError as exc:
                if _is_corrupt(exc) and attempt == 1 and self.path != ":memory:":
                    with self._lock:
                        self._recover(exc)
                    continue
                self._failed(what, exc, write)
                return default
        return default  # pragma: no cover - the loop returns

    def _failed(self, what: str, exc: BaseException, write: bool) -> None:
        if write:
            self._write_failed = True
        now = time.monotonic()
        if now - self._last_write_log >= 10.0:  # one line per 10 s, not one per request
            self._last_write_log = now
            log.error("state %s failed during %s (%s); answering without it", "write" if write else "read",
                      what, exc)  # fmt: skip

    def _write(self, what: str, work: Callable[[sqlite3.Connection], T], default: T) -> T:
        self._maybe_purge()
        return self._guard(what, lambda: self._tx(work), default, write=True)

    def _read(self, what: str, sql: str, args: tuple[Any, ...]) -> list[Any]:
        def run() -> list[Any]:
            with self._lock:
                return self._db.execute(sql, args).fetchall()

        return self._guard(what, run, [], write=False)

    # --- conversations ------------------------------------------------------------------------------
    def history(self, conversation_id: str) -> list[Turn]:
        rows = self._read(
            "history", "SELECT data FROM turns WHERE conversation_id = ? ORDER BY seq", (conversation_id,)
        )
        return [Turn.model_validate_json(r[0]) for r in rows]

    def append(self, conversation_id: str, turn: Turn, max_turns: int) -> None:
        now = self._clock()

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

        self._write("append", work, None)

    def clear(self, conversation_id: str) -> None:
        self._write(
            "clear", lambda db: db.execute("DELETE FROM turns WHERE conversation_id = ?", (conversation_id,)), None
        )  # fmt: skip

    def create(self, conversation_id: str) -> None:
        now = self._clock()
        self._write(
            "create",
            lambda db: db.execute(
                "INSERT OR IGNORE INTO conversations VALUES (?, ?, ?)", (conversation_id, now, now)
            ),
            None,
        )

    def exists(self, conversation_id: str) -> bool:
        return bool(self._read("exists", "SELECT 1 FROM conversations WHERE id = ?", (conversation_id,)))

    def has_message(self, conversation_id: str, message_id: str) -> bool:
        return bool(
            self._read(
                "has_message",
                "SELECT 1 FROM messages WHERE conversation_id = ? AND message_id = ?",
                (conversation_id, message_id),
            )
        )

    # --- feedback: one per message, the latest wins -------------------------------------------------
    def add_feedback(
        self,
        conversation_id: str,
        message_id: str,
        rating: str,
        comment: str | None,
        created_at: float | None = None,
    ) -> None:
        at = self._clock() if created_at is None else created_at
        self._write(
            "add_feedback",
            lambda db: db.execute(
                "INSERT INTO feedback (conversation_id, message_id, rating, comment, created_at) "
                "VALUES (?, ?, ?, ?, ?) ON CONFLICT (conversation_id, message_id) DO UPDATE SET "
                "rating = excluded.rating, comment = excluded.comment, created_at = excluded.created_at",
                (conversation_id, message_id, rating, comment, at),
            ),
            None,
        )

    def feedback(self, limit: int = 100) -> list[dict[str, Any]]:
        rows = self._read(
            "feedback",
            "SELECT conversation_id, message_id, rating, comment, created_at FROM feedback "
            "ORDER BY created_at DESC, seq DESC LIMIT ?",
            (limit,),
        )
        keys = ("conversation_id", "message_id", "rating", "comment", "created_at")
        return [dict(zip(keys, r, strict=True)) for r in rows]

    # --- dedupe, small values, rate limits ----------------------------------------------------------
    def mark_seen(self, namespace: str, key: str, ttl_seconds: int) -> bool:
        return self.mark_seen_until(namespace, key, self._clock() + ttl_seconds)

    def mark_seen_until(self, namespace: str, key: str, expires: float) -> bool:
        now = self._clock()

        def work(db: sqlite3.Connection) -> bool:
            db.execute(
                "DELETE FROM seen WHERE namespace = ? AND key = ? AND expires <= ?", (namespace, key, now)
            )
            cursor = db.execute("INSERT OR IGNORE INTO seen VALUES (?, ?, ?)", (namespace, key, expires))
            return cursor.rowcount == 1

        return self._write("mark_seen", work, True)  # cannot record it: better answer twice than never

    def get_value(self, namespace: str, key: str) -> str | None:
        """A small shared value (e.g. the bots' refreshed Zalo token); None when unset."""
        rows = self._read(
            "get_value", "SELECT value FROM kv WHERE namespace = ? AND key = ?", (namespace, key)
        )
        return None if not rows else str(rows[0][0])

    def set_value(self, namespace: str, key: str, value: str) -> None:
        self._write(
            "set_value", lambda db: db.execute("INSERT OR REPLACE INTO kv VALUES (?, ?, ?)", (namespace, key, value)),
            None,
        )  # fmt: skip

    def rate_limit(self, key: str, limit: int, window_seconds: int) -> tuple[bool, float]:
        now = self._clock()

        def work(db: sqlite3.Connection) -> tuple[bool, float]:
            row = db.execute("SELECT window_start, count FROM rate WHERE key = ?", (key,)).fetchone()
            start, count = (row[0], row[1]) if row and now < row[0] + window_seconds else (now, 0)
            if count >= limit:
                return False, max(start + window_seconds - now, 0.001)
            db.execute("INSERT OR REPLACE INTO rate VALUES (?, ?, ?)", (key, start, count + 1))
            return True, 0.0

        return self._write("rate_limit", work, (True, 0.0))

    def rate_exceeded(self, key: str, limit: int, window_seconds: int) -> tuple[bool, float]:
        """Whether `key` has used up its `limit` in the current window, without counting this call."""
        now = self._clock()
        rows = self._read("rate_exceeded", "SELECT window_start, count FROM rate WHERE key = ?", (key,))
        if rows and now < rows[0][0] + window_seconds and rows[0][1] >= limit:
            return True, max(rows[0][0] + window_seconds - now, 0.001)
        return False, 0.0

    # --- retention ------------------------------------------------------------------------------------
    def _maybe_purge(self) -> None:
        if time.monotonic() >= self._next_purge:
            self.purge()

    def purge(self) -> int:
        """Delete conversations not touched within the retention period (with their turns, messages and
        feedback), expired dedupe marks and stale rate counters; the number of conversations removed."""
        self._next_purge = time.monotonic() + _PURGE_EVERY_SECONDS
        now = self._clock()
        cutoff = now - self.retention_seconds

        def work(db: sqlite3.Connection) -> int:
            old = "SELECT id FROM conversations WHERE updated_at < ?"
            for table in ("turns", "messages", "feedback"):
                db.execute(f"DELETE FROM {table} WHERE conversation_id IN ({old})", (cutoff,))
            db.execute("DELETE FROM feedback WHERE created_at < ?", (cutoff,))
            removed = db.execute("DELETE FROM conversations WHERE updated_at < ?", (cutoff,)).rowcount
            db.execute("DELETE FROM seen WHERE expires <= ?", (now,))
            db.execute("DELETE FROM rate WHERE window_start < ?", (now - 86400,))
            return int(removed)

        removed = self._guard("purge", lambda: self._tx(work), 0, write=True)
        if removed:
            log.info("purged %d conversations older than %.0f days from the state database", removed,
                     self.retention_seconds / 86400)  # fmt: skip
        return removed

    # --- the Redis journal (used when this store stands in for Redis) -------------------------------
    def journal_append(self, op: str, args: list[Any]) -> None:
        data = json.dumps(args, ensure_ascii=False)
        self._write("journal", lambda db: db.execute("INSERT INTO journal (op, args) VALUES (?, ?)", (op, data)),
                    None)  # fmt: skip

    def journal_size(self) -> int:
        rows = self._read("journal_size", "SELECT count(*) FROM journal", ())
        return int(rows[0][0]) if rows else 0

    def journal_replay(self, apply: Callable[[str, list[Any]], None], batch: int = 200) -> int:
        """Apply journal entries in order, deleting each once applied; the database stays locked meanwhile,
        so no other process replays the same entries. An error from `apply` stops the replay (what was
        applied stays deleted) and is raised."""
        replayed = 0
        while True:
            with self._lock:
                self._db.execute("BEGIN IMMEDIATE")
                try:
                    rows = self._db.execute(
                        "SELECT seq, op, args FROM journal ORDER BY seq LIMIT ?", (batch,)
                    ).fetchall()
                    for seq, op, args in rows:
                        apply(op, json.loads(args))
                        self._db.execute("DELETE FROM journal WHERE seq = ?", (seq,))
                        replayed += 1
                finally:
                    self._db.execute("COMMIT")
            if len(rows) < batch:
                return replayed

    # --- health ---------------------------------------------------------------------------------------
    def ping(self) -> bool:
        return bool(self._read("ping", "SELECT 1", ()))

    def health(self) -> list[str]:
        """Reason codes for a degraded store, [] when all is well; writes a probe row (a real write)."""
        now = str(self._clock())
        self._guard(
            "health probe",
            lambda: self._tx(lambda db: db.execute("INSERT OR REPLACE INTO kv VALUES ('health', 'probe', ?)", (now,))),
            None, write=True,
        )  # fmt: skip
        problems = set(self._problems)
        if self._write_failed:
            problems.add(STATE_NOT_WRITABLE)
        return sorted(problems)

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
    """Conversations in Redis so several workers share them. While Redis is down: reads and writes go to
    a local SQLite store (`journal_path`, a file the workers of one host share), every acknowledged write
    is journaled there, and the journal is replayed into Redis before anything else once it is back.

    Dedupe marks are written to both, so a redelivery is recognised through an outage; conversation and
    message ids of the service's shape are taken on trust while Redis cannot be asked (a follow-up keeps
    its conversation; its turns reach Redis with the replay, where feedback is checked again)."""

    def __init__(
        self,
        url: str,
        *,
        prefix: str = "ketluan:",
        retry_seconds: float = 5.0,
        socket_timeout: float = 0.5,
        journal_path: Path | str = ":memory:",
        retention_days: float = DEFAULT_RETENTION_DAYS,
    ) -> None:
        import redis

        self.url = url
        self.prefix = prefix
        self.retry_seconds = retry_seconds
        self.ttl_seconds = max(int(retention_days * 86400), 1)
        self._redis = redis.Redis.from_url(
            url,
            socket_timeout=socket_timeout,
            socket_connect_timeout=socket_timeout,
            health_check_interval=30,
            decode_responses=True,
        )
        self._errors: tuple[type[BaseException], ...] = (redis.RedisError, OSError)
        self._fallback = SQLiteStore(journal_path, retention_days=retention_days)
        self._down_until = 0.0
        self._lock = threading.Lock()
        self._replay_lock = threading.Lock()
        self._pending = self._fallback.journal_size() > 0  # left by an earlier process: replay it
        self._next_feedback_purge = 0.0
        self._rate = self._redis.register_script(_RATE_SCRIPT)

    @property
    def degraded(self) -> bool:
        return time.monotonic() < self._down_until

    def _k(self, *parts: str) -> str:
        return self.prefix + ":".join(parts)

    def _down(self, what: str, exc: BaseException) -> None:
        with self._lock:
            if not self.degraded:
                log.error(
                    "redis unavailable (%s: %s) during %s; using the local journal for %.0f s",
                    exc.__class__.__name__, exc, what, self.retry_seconds,
                )  # fmt: skip
            self._down_until = time.monotonic() + self.retry_seconds

    def _call(
        self,
        what: str,
        work: Callable[[], T],
        fallback: Callable[[SQLiteStore], T],
        journal: list[Any] | None = None,
    ) -> T:
        if not self.degraded:
            try:
                if self._pending:
                    self._replay()
                return work()
            except self._errors as exc:
                self._down(what, exc)
        result = fallback(self._fallback)
        if journal is not None:
            self._fallback.journal_append(what, journal)
            self._pending = True
        return result

    # --- replaying the journal ----------------------------------------------------------------------
    def _replay(self) -> None:
        with self._replay_lock:  # other threads wait, so their writes land after the journaled ones
            if not self._pending:
                return
            replayed = self._fallback.journal_replay(self._apply)
            self._pending = self._fallback.journal_size() > 0
            if replayed:
                log.warning("redis is back: replayed %d journaled writes", replayed)

    def _apply(self, op: str, args: list[Any]) -> None:
        if op == "create":
            self._create(args[0], args[1])
        elif op == "append":
            self._append(args[0], Turn.model_validate_json(args[1]), int(args[2]), args[3])
        elif op == "clear":
            self._redis.delete(self._k("turns", args[0]))
        elif op == "add_feedback":
            if self._redis.sismember(self._k("msgs", args[0]), args[1]):
                self._add_feedback(args[0], args[1], args[2], args[3], float(args[4]))
            else:
                log.warning("journaled feedback on unknown message %s dropped", args[1][:40])
        elif op == "mark_seen":
            ttl = int(float(args[2]) - time.time())
            if ttl > 0:
                self._redis.set(self._k("seen", args[0], args[1]), "1", nx=True, ex=ttl)
        elif op == "set_value":
            self._redis.set(self._k("kv", args[0], args[1]), args[2])
        else:
            log.error("unknown journal entry %r dropped", op)

    # --- conversations ------------------------------------------------------------------------------
    def history(self, conversation_id: str) -> list[Turn]:
        def work() -> list[Turn]:
            raw = self._redis.lrange(self._k("turns", conversation_id), 0, -1)
            return [Turn.model_validate_json(r) for r in raw]  # type: ignore[union-attr]

        return self._call("history", work, lambda s: s.history(conversation_id))

    def _append(self, conversation_id: str, turn: Turn, max_turns: int, at: float) -> None:
        turns, conv, msgs = (
            self._k("turns", conversation_id),
            self._k("conv", conversation_id),
            self._k("msgs", conversation_id),
        )
        pipe = self._redis.pipeline(transaction=True)
        pipe.set(conv, str(at), ex=self.ttl_seconds)
        if max_turns > 0:
            pipe.rpush(turns, turn.model_dump_json())
            pipe.ltrim(turns, -max_turns, -1)
            pipe.expire(turns, self.ttl_seconds)
        else:
            pipe.delete(turns)
        pipe.sadd(msgs, turn.message_id)
        pipe.expire(msgs, self.ttl_seconds)
        pipe.execute()

    def append(self, conversation_id: str, turn: Turn, max_turns: int) -> None:
        at = time.time()
        self._call(
            "append",
            lambda: self._append(conversation_id, turn, max_turns, at),
            lambda s: s.append(conversation_id, turn, max_turns),
            [conversation_id, turn.model_dump_json(), max_turns, at],
        )

    def clear(self, conversation_id: str) -> None:
        self._call(
            "clear",
            lambda: self._redis.delete(self._k("turns", conversation_id)) and None,
            lambda s: s.clear(conversation_id),
            [conversation_id],
        )

    def _create(self, conversation_id: str, at: float) -> None:
        self._redis.set(self._k("conv", conversation_id), str(at), ex=self.ttl_seconds, nx=True)

    def create(self, conversation_id: str) -> None:
        at = time.time()
        self._call(
            "create",
            lambda: self._create(conversation_id, at),
            lambda s: s.create(conversation_id),
            [conversation_id, at],
        )

    def exists(self, conversation_id: str) -> bool:
        return self._call(
            "exists",
            lambda: bool(self._redis.exists(self._k("conv", conversation_id))),
            lambda s: s.exists(conversation_id) or bool(_ID.fullmatch(conversation_id)),
        )

    def has_message(self, conversation_id: str, message_id: str) -> bool:
        return self._call(
            "has_message",
            lambda: bool(self._redis.sismember(self._k("msgs", conversation_id), message_id)),
            lambda s: (
                s.has_message(conversation_id, message_id)
                or bool(_ID.fullmatch(conversation_id) and _ID.fullmatch(message_id))
            ),
        )

    # --- feedback: one per message (a hash field), found newest first through a sorted set -----------
    def _add_feedback(self, conversation_id: str, message_id: str, rating: str, comment: str | None,
                      at: float) -> None:  # fmt: skip
        field = f"{conversation_id}\x1f{message_id}"
        item = {"conversation_id": conversation_id, "message_id": message_id, "rating": rating,
                "comment": comment, "created_at": at}  # fmt: skip
        pipe = self._redis.pipeline(transaction=True)
        pipe.hset(self._k("feedback", "items"), field, json.dumps(item, ensure_ascii=False))
        pipe.zadd(self._k("feedback", "recent"), {field: at})
        pipe.execute()
        if time.monotonic() >= self._next_feedback_purge:  # retention, not a count: nobody evicts others
            self._next_feedback_purge = time.monotonic() + _PURGE_EVERY_SECONDS
            cutoff = time.time() - self.ttl_seconds
            old = self._redis.zrangebyscore(self._k("feedback", "recent"), "-inf", cutoff)
            if old:
                pipe = self._redis.pipeline(transaction=True)
                pipe.hdel(self._k("feedback", "items"), *old)  # type: ignore[arg-type]
                pipe.zrem(self._k("feedback", "recent"), *old)  # type: ignore[arg-type]
                pipe.execute()

    def add_feedback(self, conversation_id: str, message_id: str, rating: str, comment: str | None) -> None:
        at = time.time()
        self._call(
            "add_feedback",
            lambda: self._add_feedback(conversation_id, message_id, rating, comment, at),
            lambda s: s.add_feedback(conversation_id, message_id, rating, comment, at),
            [conversation_id, message_id, rating, comment, at],
        )

    def feedback(self, limit: int = 100) -> list[dict[str, Any]]:
        def work() -> list[dict[str, Any]]:
            fields = self._redis.zrevrange(self._k("feedback", "recent"), 0, max(limit, 1) - 1)
            if not fields:
                return []
            raw = self._redis.hmget(self._k("feedback", "items"), fields)  # type: ignore[arg-type]
            return [json.loads(r) for r in raw if r]  # type: ignore[union-attr]

        return self._call("feedback", work, lambda s: s.feedback(limit))

    # --- dedupe, small values, rate limits ----------------------------------------------------------
    def mark_seen(self, namespace: str, key: str, ttl_seconds: int) -> bool:
        expires = time.time() + ttl_seconds

        def work() -> bool:
            first = bool(
                self._redis.set(self._k("seen", namespace, key), "1", nx=True, ex=max(int(ttl_seconds), 1))
            )
            self._fallback.mark_seen_until(namespace, key, expires)  # so an outage does not forget it
            return first

        return self._call(
            "mark_seen", work, lambda s: s.mark_seen_until(namespace, key, expires), [namespace, key, expires]
        )  # fmt: skip

    def get_value(self, namespace: str, key: str) -> str | None:
        def work() -> str | None:
            value = self._redis.get(self._k("kv", namespace, key))
            return None if value is None else str(value)

        return self._call("get_value", work, lambda s: s.get_value(namespace, key))

    def set_value(self, namespace: str, key: str, value: str) -> None:
        self._call("set_value", lambda: self._redis.set(self._k("kv", namespace, key), value) and None,
                   lambda s: s.set_value(namespace, key, value), [namespace, key, value])  # fmt: skip

    def rate_limit(self, key: str, limit: int, window_seconds: int) -> tuple[bool, float]:
        def work() -> tuple[bool, float]:
            count, ttl_ms = self._rate(keys=[self._k("rate", key)], args=[int(window_seconds * 1000)])
            if int(count) > limit:
                return False, max(int(ttl_ms), 1) / 1000.0
            return True, 0.0

        return self._call("rate_limit", work, lambda s: s.rate_limit(key, limit, window_seconds))

    def rate_exceeded(self, key: str, limit: int, window_seconds: int) -> tuple[bool, float]:
        def work() -> tuple[bool, float]:
            pipe = self._redis.pipeline(transaction=False)
            pipe.get(self._k("rate", key))
            pipe.pttl(self._k("rate", key))
            count, ttl_ms = pipe.execute()
            if count is not None and int(count) >= limit and int(ttl_ms) > 0:
                return True, int(ttl_ms) / 1000.0
            return False, 0.0

        return self._call("rate_exceeded", work, lambda s: s.rate_exceeded(key, limit, window_seconds))

    # --- health ---------------------------------------------------------------------------------------
    def ping(self) -> bool:
        try:
            ok = bool(self._redis.ping())
        except self._errors:
            return False
        if ok and self.degraded:
            self._down_until = 0.0  # Redis is back: stop waiting for the retry pause
        if ok and self._pending:
            try:
                self._replay()
            except self._errors as exc:
                self._down("replay", exc)
                return False
        return ok

    def health(self) -> list[str]:
        problems = [] if self.ping() else [REDIS_UNAVAILABLE]
        return sorted(set(problems) | set(self._fallback.health()))

    def close(self) -> None:
        try:
            self._redis.close()
        finally:
            self._fallback.close()


def open_store(settings: BotSettings, data_dir: Path) -> ConversationStore:
    """Redis when `KETLUAN_REDIS_URL` is set (journaling to data_dir/state/redis-journal.sqlite3 during an
    outage), else SQLite at data_dir/state/ketluan.sqlite3."""
    state = Path(data_dir) / "state"
    if settings.redis_url:
        return RedisStore(settings.redis_url, journal_path=state / "redis-journal.sqlite3",
                          retention_days=settings.state_retention_days)  # fmt: skip
    return SQLiteStore(state / "ketluan.sqlite3", retention_days=settings.state_retention_days)


def retry_after_seconds(value: float) -> int:
    """A Retry-After header value: whole seconds, at least 1."""
    return max(1, math.ceil(value))
