"""Questions asked → a bounded log for the operator: time, channel, intent, answered, latency, cited passages,
the answer, feedback; the asker only as a salted hash. On the backend of the other stores (bot/stores): a
SQLite file of its own in the data dir's state folder, or Redis through the backend's client, shared by hosts.

The channel is set where a question enters (`asking(...)` in the HTTP route or the bot adapter) and read
when the answer is finished, so the answering code needs no extra arguments; a question with no channel set
(`ketluan ask`, the evaluation) is not recorded."""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import secrets
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextvars import ContextVar
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol

from bot.settings import BotSettings
from bot.stores.redis_backend import RedisBackend
from bot.stores.sqlite_backend import SQLiteBackend

log = logging.getLogger(__name__)

CHANNELS = ("widget", "api", "telegram", "zalo")


@dataclass(frozen=True)
class Asker:
    channel: str
    user: str | None  # salted hash


@dataclass
class QuestionRecord:
    message_id: str
    at: float
    channel: str
    text: str
    intent: str
    answered: bool
    latency_ms: float
    passage_ids: list[str] = field(default_factory=list)
    answer: str = ""
    user: str | None = None
    feedback: str | None = None  # "up" | "down"
    comment: str | None = None

    def public(self) -> dict[str, Any]:
        """The shape of `GET /v1/admin/questions` (API.md) plus the rest."""
        out = asdict(self)
        out["at"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(self.at))
        return out


_ASKER: ContextVar[Asker | None] = ContextVar("ketluan_asker", default=None)


@contextlib.contextmanager
def asking(channel: str, user_key: str | None, salt: str) -> Iterator[None]:
    """Questions answered inside this block are recorded under `channel` and the hash of `user_key`."""
    user = hashlib.sha256(f"{salt}:{user_key}".encode()).hexdigest()[:16] if user_key else None
    token = _ASKER.set(Asker(channel, user))
    try:
        yield
    finally:
        _ASKER.reset(token)


def set_asker(channel: str, user_key: str | None, salt: str) -> None:
    """Like `asking`, for the rest of the current task (an HTTP route whose answer streams after it returns)."""
    user = hashlib.sha256(f"{salt}:{user_key}".encode()).hexdigest()[:16] if user_key else None
    _ASKER.set(Asker(channel, user))


def current_asker() -> Asker | None:
    return _ASKER.get()


class QuestionLog(Protocol):
    salt: str

    def record(self, record: QuestionRecord) -> None: ...

    def feedback(self, message_id: str, rating: str, comment: str | None) -> None: ...

    def questions(self, *, answered: bool | None = None, since: float | None = None,
                  channel: str | None = None, limit: int = 100) -> list[QuestionRecord]: ...  # fmt: skip

    def purge(self) -> int: ...

    def close(self) -> None: ...


def _salt(path: Path) -> str:
    """A random salt kept beside the log, made once: hashes stay comparable across restarts and workers."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with contextlib.suppress(FileExistsError):
        fd = path.open("x", encoding="utf-8")
        with fd:
            fd.write(secrets.token_hex(16))
    return path.read_text("utf-8").strip()


class SQLiteQuestionLog:
    """At most `max_rows` questions, none older than `retention_days` (purged on write, at most hourly)."""

    def __init__(self, path: Path | str, *, retention_days: float = 90, max_rows: int = 100_000,
                 salt: str | None = None) -> None:  # fmt: skip
        self.path = str(path)
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        self.salt = salt or (
            _salt(Path(self.path).with_suffix(".salt")) if self.path != ":memory:" else "test"
        )
        self.retention = retention_days * 86_400
        self.max_rows = max_rows
        self._lock = threading.Lock()
        self._db = sqlite3.connect(self.path, check_same_thread=False, timeout=10)
        self._db.execute("PRAGMA busy_timeout=10000")
        with contextlib.suppress(sqlite3.OperationalError):
            self._db.execute("PRAGMA journal_mode=WAL")
        # as the conversation store: in WAL mode a commit is not synced to disk on its own (a power cut may
        # lose the last questions, never corrupt the file); one fsync per question held every answer ~4 ms
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS questions (message_id TEXT PRIMARY KEY, at REAL, channel TEXT, "
            "answered INTEGER, body TEXT, feedback TEXT)"
        )
        self._db.execute("CREATE INDEX IF NOT EXISTS questions_at ON questions(at)")
        self._db.commit()
        self._purged = 0.0

    def record(self, record: QuestionRecord) -> None:
        with self._lock:
            self._db.execute(
                "INSERT OR REPLACE INTO questions VALUES (?, ?, ?, ?, ?, ?)",
                (record.message_id, record.at, record.channel, int(record.answered),
                 json.dumps(asdict(record), ensure_ascii=False), record.feedback),
            )  # fmt: skip
            self._db.commit()
        if time.time() - self._purged > 3600:
            self.purge()

    def feedback(self, message_id: str, rating: str, comment: str | None) -> None:
        with self._lock:
            row = self._db.execute(
                "SELECT body FROM questions WHERE message_id = ?", (message_id,)
            ).fetchone()
            if row is None:
                return
            body = json.loads(row[0])
            body.update(feedback=rating, comment=comment)
            self._db.execute("UPDATE questions SET body = ?, feedback = ? WHERE message_id = ?",
                             (json.dumps(body, ensure_ascii=False), rating, message_id))  # fmt: skip
            self._db.commit()

    def questions(self, *, answered: bool | None = None, since: float | None = None,
                  channel: str | None = None, limit: int = 100) -> list[QuestionRecord]:  # fmt: skip
        where: list[str] = ["1=1"]
        args: list[Any] = []
        if answered is not None:
            where.append("answered = ?")
            args.append(int(answered))
        if since is not None:
            where.append("at >= ?")
            args.append(since)
        if channel:
            where.append("channel = ?")
            args.append(channel)
        sql = f"SELECT body FROM questions WHERE {' AND '.join(where)} ORDER BY at DESC LIMIT ?"
        with self._lock:
            rows = self._db.execute(sql, (*args, limit)).fetchall()
        return [QuestionRecord(**json.loads(r[0])) for r in rows]

    def purge(self) -> int:
        """Rows past retention, then the oldest beyond `max_rows`."""
        self._purged = time.time()
        with self._lock:
            gone = self._db.execute(
                "DELETE FROM questions WHERE at < ?", (time.time() - self.retention,)
            ).rowcount
            gone += self._db.execute(
                "DELETE FROM questions WHERE message_id IN (SELECT message_id FROM questions "
                "ORDER BY at DESC LIMIT -1 OFFSET ?)",
                (self.max_rows,),
            ).rowcount
            self._db.commit()
        return int(gone)

    def close(self) -> None:
        with self._lock:
            self._db.close()


class RedisQuestionLog:
    """The same log in Redis, for several workers and hosts: one sorted set by time, one hash of records.
    `client` is the stores' Redis client (bot/stores/redis_backend.py: decoded responses), which it closes."""

    def __init__(self, client: Any, *, retention_days: float = 90, max_rows: int = 100_000,
                 salt: str | None = None, prefix: str = "ketluan:questions") -> None:  # fmt: skip
        self._r = client
        self.retention = retention_days * 86_400
        self.max_rows = max_rows
        self.prefix = prefix
        if salt is None:
            self._r.set(f"{prefix}:salt", secrets.token_hex(16), nx=True)
            salt = str(self._r.get(f"{prefix}:salt") or "")
        self.salt = salt

    def _safe(self, what: str, work: Any, default: Any) -> Any:
        try:
            return work()
        except Exception as exc:  # analytics never break answering
            log.warning("question log (%s) failed: %s", what, exc)
            return default

    def record(self, record: QuestionRecord) -> None:
        def work() -> None:
            pipe = self._r.pipeline()
            pipe.hset(
                f"{self.prefix}:rows", record.message_id, json.dumps(asdict(record), ensure_ascii=False)
            )
            pipe.zadd(f"{self.prefix}:at", {record.message_id: record.at})
            pipe.execute()

        self._safe("record", work, None)
        self._safe("purge", self.purge, 0)

    def feedback(self, message_id: str, rating: str, comment: str | None) -> None:
        def work() -> None:
            raw = self._r.hget(f"{self.prefix}:rows", message_id)
            if raw is None:
                return
            body = json.loads(raw)
            body.update(feedback=rating, comment=comment)
            self._r.hset(f"{self.prefix}:rows", message_id, json.dumps(body, ensure_ascii=False))

        self._safe("feedback", work, None)

    def questions(self, *, answered: bool | None = None, since: float | None = None,
                  channel: str | None = None, limit: int = 100) -> list[QuestionRecord]:  # fmt: skip
        def work() -> list[QuestionRecord]:
            ids = self._r.zrevrangebyscore(
                f"{self.prefix}:at", "+inf", since if since is not None else "-inf"
            )
            out: list[QuestionRecord] = []
            for start in range(0, len(ids), 500):
                for raw in self._r.hmget(f"{self.prefix}:rows", ids[start : start + 500]):
                    if raw is None:
                        continue
                    rec = QuestionRecord(**json.loads(raw))
                    if (answered is None or rec.answered == answered) and (
                        not channel or rec.channel == channel
                    ):
                        out.append(rec)
                        if len(out) >= limit:
                            return out
            return out

        result: list[QuestionRecord] = self._safe("questions", work, [])
        return result

    def purge(self) -> int:
        old = self._r.zrangebyscore(f"{self.prefix}:at", "-inf", time.time() - self.retention)
        extra = self._r.zcard(f"{self.prefix}:at") - len(old) - self.max_rows
        if extra > 0:
            old += self._r.zrange(f"{self.prefix}:at", len(old), len(old) + extra - 1)
        if old:
            self._r.hdel(f"{self.prefix}:rows", *old)
            self._r.zrem(f"{self.prefix}:at", *old)
        return len(old)

    def close(self) -> None:
        """The client belongs to the stores' backend, which closes it."""


def open_question_log(
    settings: BotSettings, data_dir: Path, backend: SQLiteBackend | RedisBackend
) -> QuestionLog | None:
    """None when recording is switched off; in Redis when the stores' backend is Redis (its client, its key
    prefix), else in data_dir/state/questions.sqlite3."""
    if not settings.analytics_enabled:
        return None
    if isinstance(backend, RedisBackend):
        return RedisQuestionLog(backend.client, retention_days=settings.analytics_retention_days,
                                max_rows=settings.analytics_max_rows, prefix=backend.key("questions"))  # fmt: skip
    return SQLiteQuestionLog(Path(data_dir) / "state" / "questions.sqlite3",
                             retention_days=settings.analytics_retention_days,
                             max_rows=settings.analytics_max_rows)  # fmt: skip
