"""A SQLite file under the data dir → the connection the SQLite stores share, with its faults handled.

A file that is not a database is moved aside (`*.corrupt-<time>`) and a fresh one started; a failed write
(disk full, read-only) is logged and reported by `health()`, never raised, so an answer goes out without
its state; each store's rows past retention are purged (at most hourly), so the file stays bounded. The
journal table holds the writes made while Redis was down (bot/stores/redis_backend.py replays it).
"""

from __future__ import annotations

import json
import logging
import sqlite3
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

from bot.stores.backend import DEFAULT_RETENTION_DAYS, STATE_NOT_WRITABLE, STATE_RESET, Tables
from bot.transactions import write_transaction

log = logging.getLogger(__name__)
T = TypeVar("T")

# SQLite primary result codes (the low byte of sqlite_errorcode)
_SQLITE_CORRUPT, _SQLITE_NOTADB = 11, 26
_OWN_SCHEMA = """
CREATE TABLE IF NOT EXISTS journal (seq INTEGER PRIMARY KEY AUTOINCREMENT, op TEXT NOT NULL,
    args TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS probe (name TEXT PRIMARY KEY, at REAL NOT NULL);
"""
_PURGE_EVERY_SECONDS = 3600.0


def _is_corrupt(exc: BaseException) -> bool:
    code = getattr(exc, "sqlite_errorcode", None)
    return isinstance(code, int) and code & 0xFF in (_SQLITE_CORRUPT, _SQLITE_NOTADB)


class SQLiteBackend:
    """One SQLite file (WAL) shared by the threads of one process (and by processes, through SQLite's
    locks); ":memory:" for a private one. Never raises for a failed read or write: logs it and reports it."""

    def __init__(
        self,
        path: Path | str,
        tables: Sequence[Tables],
        *,
        retention_days: float = DEFAULT_RETENTION_DAYS,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.path = str(path)
        self.tables = tuple(tables)
        self.retention_seconds = retention_days * 86400
        self.clock = clock
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
            db.executescript(_OWN_SCHEMA + "".join(t.schema for t in self.tables))
            for t in self.tables:
                if t.migrate is not None:
                    t.migrate(db)
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
                probe.execute("SELECT count(*) FROM journal").fetchone()
                fine = True
            finally:
                probe.close()
        except sqlite3.DatabaseError:
            fine = False
        if not fine:
            self._move_aside(exc)
        self._db = self._connect()

    # --- the two ways in for the stores: reads and writes that never fail the caller ----------------
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

    def write(self, what: str, work: Callable[[sqlite3.Connection], T], default: T) -> T:
        """`work` in one write transaction; `default` when it cannot be written (logged, reported)."""
        self._maybe_purge()
        return self._guard(what, lambda: self._tx(work), default, write=True)

    def read(self, what: str, sql: str, args: tuple[Any, ...]) -> list[Any]:
        """The rows of one query; [] when it cannot be read (logged)."""

        def run() -> list[Any]:
            with self._lock:
                return self._db.execute(sql, args).fetchall()

        return self._guard(what, run, [], write=False)

    # --- retention ------------------------------------------------------------------------------------
    def _maybe_purge(self) -> None:
        if time.monotonic() >= self._next_purge:
            self.purge()

    def purge(self) -> dict[str, int]:
        """Each store's rows past retention, in one transaction; how many items each store removed."""
        self._next_purge = time.monotonic() + _PURGE_EVERY_SECONDS
        now = self.clock()
        cutoff = now - self.retention_seconds

        def work(db: sqlite3.Connection) -> dict[str, int]:
            return {t.name: int(t.purge(db, now, cutoff)) for t in self.tables if t.purge is not None}

        removed: dict[str, int] = self._guard("purge", lambda: self._tx(work), {}, write=True)
        if any(removed.values()):
            log.info("purged from the state database (older than %.0f days): %s", self.retention_seconds / 86400,
                     ", ".join(f"{n} {name}" for name, n in removed.items() if n))  # fmt: skip
        return removed

    # --- the Redis journal (when this file stands in for Redis) --------------------------------------
    def journal_append(self, op: str, args: list[Any]) -> None:
        data = json.dumps(args, ensure_ascii=False)
        self.write("journal", lambda db: db.execute("INSERT INTO journal (op, args) VALUES (?, ?)", (op, data)),
                   None)  # fmt: skip

    def journal_size(self) -> int:
        rows = self.read("journal_size", "SELECT count(*) FROM journal", ())
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
        return bool(self.read("ping", "SELECT 1", ()))

    def health(self) -> list[str]:
        """Reason codes for a degraded store, [] when all is well; writes a probe row (a real write)."""
        now = self.clock()
        self._guard(
            "health probe",
            lambda: self._tx(lambda db: db.execute("INSERT OR REPLACE INTO probe VALUES ('health', ?)", (now,))),
            None, write=True,
        )  # fmt: skip
        problems = set(self._problems)
        if self._write_failed:
            problems.add(STATE_NOT_WRITABLE)
        return sorted(problems)

    def close(self) -> None:
        with self._lock:
            self._db.close()
