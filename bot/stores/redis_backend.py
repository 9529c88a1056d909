"""A Redis URL → the client the Redis stores share, so several workers and hosts see one state; during an
outage the stores serve from a local SQLite file and journal their writes there, replayed in order later.

While Redis is down, reads and writes go to the local SQLite backend (`journal_path`, a file the workers of
one host share) and every acknowledged write is journaled there; the journal is replayed into Redis, before
anything else, as soon as Redis answers again (each store says how to replay its own entries).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

from bot.stores.backend import DEFAULT_RETENTION_DAYS, REDIS_UNAVAILABLE, Tables
from bot.stores.sqlite_backend import SQLiteBackend

log = logging.getLogger(__name__)
T = TypeVar("T")


class RedisBackend:
    """One Redis client (and connection pool) for every store, with `local` standing in during outages."""

    def __init__(
        self,
        url: str,
        tables: Sequence[Tables],
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
        self.client = redis.Redis.from_url(
            url,
            socket_timeout=socket_timeout,
            socket_connect_timeout=socket_timeout,
            health_check_interval=30,
            decode_responses=True,
        )
        self.errors: tuple[type[BaseException], ...] = (redis.RedisError, OSError)
        self.local = SQLiteBackend(journal_path, tables, retention_days=retention_days)
        self._replayers: dict[str, Callable[[list[Any]], None]] = {}
        self._down_until = 0.0
        self._lock = threading.Lock()
        self._replay_lock = threading.Lock()
        self._pending = self.local.journal_size() > 0  # left by an earlier process: replay it

    @property
    def degraded(self) -> bool:
        return time.monotonic() < self._down_until

    def key(self, *parts: str) -> str:
        return self.prefix + ":".join(parts)

    def on_replay(self, op: str, apply: Callable[[list[Any]], None]) -> None:
        """How journal entries named `op` are written into Redis once it is back (each store names its own)."""
        self._replayers[op] = apply

    def _down(self, what: str, exc: BaseException) -> None:
        with self._lock:
            if not self.degraded:
                log.error(
                    "redis unavailable (%s: %s) during %s; using the local journal for %.0f s",
                    exc.__class__.__name__, exc, what, self.retry_seconds,
                )  # fmt: skip
            self._down_until = time.monotonic() + self.retry_seconds

    def call(
        self,
        what: str,
        work: Callable[[], T],
        local: Callable[[], T],
        journal: list[Any] | None = None,
    ) -> T:
        """`work` against Redis; while Redis is down, `local` against the SQLite stand-in, and when the
        call is a write (`journal` = its arguments) a journal entry `what` to replay later."""
        if not self.degraded:
            try:
                if self._pending:
                    self._replay()
                return work()
            except self.errors as exc:
                self._down(what, exc)
        result = local()
        if journal is not None:
            self.local.journal_append(what, journal)
            self._pending = True
        return result

    # --- replaying the journal ----------------------------------------------------------------------
    def _replay(self) -> None:
        with self._replay_lock:  # other threads wait, so their writes land after the journaled ones
            if not self._pending:
                return
            replayed = self.local.journal_replay(self._apply)
            self._pending = self.local.journal_size() > 0
            if replayed:
                log.warning("redis is back: replayed %d journaled writes", replayed)

    def _apply(self, op: str, args: list[Any]) -> None:
        apply = self._replayers.get(op)
        if apply is None:
            log.error("unknown journal entry %r dropped", op)
            return
        apply(args)

    # --- health ---------------------------------------------------------------------------------------
    def ping(self) -> bool:
        try:
            ok = bool(self.client.ping())
        except self.errors:
            return False
        if ok and self.degraded:
            self._down_until = 0.0  # Redis is back: stop waiting for the retry pause
        if ok and self._pending:
            try:
                self._replay()
            except self.errors as exc:
                self._down("replay", exc)
                return False
        return ok

    def health(self) -> list[str]:
        problems = [] if self.ping() else [REDIS_UNAVAILABLE]
        return sorted(set(problems) | set(self.local.health()))

    def close(self) -> None:
        try:
            self.client.close()
        finally:
            self.local.close()
