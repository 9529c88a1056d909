"""A store's tables (schema, migration for older files, retention) → what the SQLite backend creates and
purges for it; and the reason codes the backends' `health()` reports."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from dataclasses import dataclass

DEFAULT_RETENTION_DAYS = 30.0

# Reason codes `health()` reports (and /readyz shows); the log line beside each says more.
STATE_RESET = "state_reset"  # the state database was not a database: moved aside, started afresh
STATE_NOT_WRITABLE = "state_not_writable"  # writes fail (disk full, read-only): answering without saving
REDIS_UNAVAILABLE = "redis_unavailable"  # Redis does not answer: serving from the local journal


@dataclass(frozen=True)
class Tables:
    """One store's part of the SQLite file. `purge(db, now, cutoff)` deletes what is past retention (rows
    older than `cutoff`, expired marks) and says how many items it removed; stores purge in the order given."""

    name: str
    schema: str
    migrate: Callable[[sqlite3.Connection], None] | None = None
    purge: Callable[[sqlite3.Connection, float, float], int] | None = None
