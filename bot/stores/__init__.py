"""Settings and the data dir → the service's state: one backend (SQLite under the data dir, or Redis when
`KETLUAN_REDIS_URL` is set) and the small stores on it, one concern each.

| store           | module           | what it keeps                                       |
|-----------------|------------------|-----------------------------------------------------|
| `conversations` | conversations.py | conversation ids, their last turns, the message ids |
| `feedback`      | feedback.py      | one rating per answered message                     |
| `seen`          | dedupe.py        | webhook deliveries already handled                  |
| `rates`         | rate_limits.py   | request counters per address, key and conversation  |

The backend (sqlite_backend.py, redis_backend.py) owns the connection and its faults: a corrupt file moved
aside, failed writes reported by `health()` rather than raised, a Redis outage served from a local SQLite
journal that is replayed in order once Redis is back. The bots' state (bot/state.py), the question log
(bot/analytics.py) and the operator's jobs and audit log (jobs.py) open on the same backend.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from bot.settings import BotSettings
from bot.stores import conversations, dedupe, feedback, rate_limits
from bot.stores.backend import DEFAULT_RETENTION_DAYS
from bot.stores.redis_backend import RedisBackend
from bot.stores.sqlite_backend import SQLiteBackend

# feedback before conversations: its purge finds the ratings of conversations about to be purged
TABLES = (feedback.TABLES, conversations.TABLES, dedupe.TABLES, rate_limits.TABLES)


@dataclass(frozen=True)
class Stores:
    backend: SQLiteBackend | RedisBackend  # the connection: ping(), health() (reason codes), close()
    conversations: conversations.ConversationStore
    feedback: feedback.FeedbackStore
    seen: dedupe.DedupeStore
    rates: rate_limits.RateLimitStore

    def close(self) -> None:
        self.backend.close()


def sqlite_stores(
    path: Path | str,
    *,
    retention_days: float = DEFAULT_RETENTION_DAYS,
    clock: Callable[[], float] = time.time,
) -> Stores:
    """The stores in one SQLite file; ":memory:" for a private, throwaway one."""
    backend = SQLiteBackend(path, TABLES, retention_days=retention_days, clock=clock)
    return Stores(
        backend,
        conversations.SQLiteConversations(backend),
        feedback.SQLiteFeedback(backend),
        dedupe.SQLiteDedupe(backend),
        rate_limits.SQLiteRateLimits(backend),
    )


def redis_stores(
    url: str,
    *,
    prefix: str = "ketluan:",
    retry_seconds: float = 5.0,
    socket_timeout: float = 0.5,
    journal_path: Path | str = ":memory:",
    retention_days: float = DEFAULT_RETENTION_DAYS,
) -> Stores:
    """The stores in Redis (shared by workers and hosts), journaling to `journal_path` during an outage."""
    backend = RedisBackend(url, TABLES, prefix=prefix, retry_seconds=retry_seconds, socket_timeout=socket_timeout,
                           journal_path=journal_path, retention_days=retention_days)  # fmt: skip
    talks = conversations.RedisConversations(backend)
    return Stores(
        backend,
        talks,
        feedback.RedisFeedback(backend, known=talks.known_message),
        dedupe.RedisDedupe(backend),
        rate_limits.RedisRateLimits(backend),
    )


def open_stores(settings: BotSettings, data_dir: Path) -> Stores:
    """Redis when `KETLUAN_REDIS_URL` is set (journaling to data_dir/state/redis-journal.sqlite3 during an
    outage), else SQLite at data_dir/state/ketluan.sqlite3."""
    state = Path(data_dir) / "state"
    if settings.redis_url:
        return redis_stores(settings.redis_url, journal_path=state / "redis-journal.sqlite3",
                            retention_days=settings.state_retention_days)  # fmt: skip
    return sqlite_stores(state / "ketluan.sqlite3", retention_days=settings.state_retention_days)
