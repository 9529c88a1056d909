"""A SQLite connection and its lock → one write transaction at a time: BEGIN IMMEDIATE (the file's write lock,
one process at a time), the work, COMMIT; ROLLBACK when the work raises."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def write_transaction(
    db: sqlite3.Connection, lock: threading.Lock, work: Callable[[sqlite3.Connection], T]
) -> T:
    with lock:
        db.execute("BEGIN IMMEDIATE")
        try:
            result = work(db)
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")
        return result
