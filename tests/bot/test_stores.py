"""Each small store on its own, table-driven, on both backends (SQLite, and a real redis-server): conversations,
feedback, dedupe marks, rate limits; the SQLite backend's per-store retention and the Redis journal's replay."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from bot.models import Turn
from bot.stores import TABLES, Stores, redis_stores, sqlite_stores
from bot.stores.redis_backend import RedisBackend
from bot.stores.sqlite_backend import SQLiteBackend
from tests.redis_server import RedisServer


def turn(message_id: str) -> Turn:
    return Turn(message_id=message_id, question="câu hỏi", answer="trả lời [1]", answered=True)


@pytest.fixture(params=["sqlite", "redis"])
def stores(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Stores]:
    if request.param == "sqlite":
        s = sqlite_stores(tmp_path / "state" / "k.sqlite3")
    else:
        server: RedisServer = request.getfixturevalue("redis_server")
        s = redis_stores(server.url, prefix=f"t{time.monotonic_ns()}:")
    yield s
    s.close()


# --- conversations: (writes, conversation asked about) → (exists, history, has m1) ----------------------
Write = tuple[str, str, str]  # (op, conversation id, message id)


@pytest.mark.parametrize(
    ("writes", "asked", "exists", "history", "has_m1"),
    [
        ([], "c", False, [], False),
        ([("create", "c", "")], "c", True, [], False),
        ([("append", "c", "m1")], "c", True, ["m1"], True),
        (
            [("append", "c", "m1"), ("append", "c", "m2"), ("append", "c", "m3")],
            "c",
            True,
            ["m2", "m3"],
            True,
        ),
        (
            [("append", "c", "m1"), ("clear", "c", "")],
            "c",
            True,
            [],
            True,
        ),  # cleared: feedback still finds m1
        ([("append", "c", "m1")], "other", False, [], False),
        ([("append", "c", "m1"), ("create", "c", "")], "c", True, ["m1"], True),  # create keeps what is there
    ],
)
def test_conversations(
    stores: Stores, writes: list[Write], asked: str, exists: bool, history: list[str], has_m1: bool
) -> None:
    talks = stores.conversations
    for op, cid, mid in writes:
        if op == "append":
            talks.append(cid, turn(mid), max_turns=2)
        elif op == "create":
            talks.create(cid)
        else:
            talks.clear(cid)
    assert talks.exists(asked) is exists
    assert [t.message_id for t in talks.history(asked)] == history
    assert talks.has_message(asked, "m1") is has_m1


def test_no_turns_kept_when_history_is_off(stores: Stores) -> None:
    stores.conversations.append("c", turn("m1"), max_turns=0)
    assert stores.conversations.history("c") == [] and stores.conversations.has_message("c", "m1")


# --- feedback: posts → newest first, one per message ----------------------------------------------------
Post = tuple[str, str, str, str | None]  # (conversation, message, rating, comment)


@pytest.mark.parametrize(
    ("posts", "limit", "expected"),
    [
        ([], 10, []),
        ([("c", "m1", "up", None)], 10, [("m1", "up", None)]),
        ([("c", "m1", "up", None), ("c", "m1", "down", "sai")], 10, [("m1", "down", "sai")]),
        (
            [("c", "m1", "up", None), ("c", "m2", "down", "sai")],
            10,
            [("m2", "down", "sai"), ("m1", "up", None)],
        ),
        ([("c", "m1", "up", None), ("c", "m2", "down", None)], 1, [("m2", "down", None)]),
        (
            [("c", "m1", "up", None), ("d", "m1", "down", None)],
            10,
            [("m1", "down", None), ("m1", "up", None)],
        ),
    ],
)
def test_feedback(
    stores: Stores, posts: list[Post], limit: int, expected: list[tuple[str, str, Any]]
) -> None:
    for post in posts:
        stores.feedback.add(*post)
    got = stores.feedback.recent(limit)
    assert [(i["message_id"], i["rating"], i["comment"]) for i in got] == expected
    assert all(set(i) == {"conversation_id", "message_id", "rating", "comment", "created_at"} for i in got)


# --- dedupe marks ----------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("marks", "expected"),
    [
        ([("telegram", "1")], [True]),
        ([("telegram", "1"), ("telegram", "1")], [True, False]),
        ([("telegram", "1"), ("zalo", "1")], [True, True]),  # namespaces apart
        ([("telegram", "1"), ("telegram", "2"), ("telegram", "1")], [True, True, False]),
    ],
)
def test_dedupe(stores: Stores, marks: list[tuple[str, str]], expected: list[bool]) -> None:
    assert [stores.seen.mark_seen(ns, key, 60) for ns, key in marks] == expected


def test_a_dedupe_mark_expires(tmp_path: Path) -> None:
    now = [1000.0]
    stores = sqlite_stores(":memory:", clock=lambda: now[0])
    assert stores.seen.mark_seen("telegram", "1", 60)
    now[0] += 59
    assert not stores.seen.mark_seen("telegram", "1", 60)
    now[0] += 2
    assert stores.seen.mark_seen("telegram", "1", 60)
    stores.close()


# --- rate limits -----------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("limit", "calls", "allowed"),
    [(1, 1, [True]), (1, 2, [True, False]), (3, 2, [True, True]), (3, 4, [True, True, True, False])],
)
def test_rate_limit(stores: Stores, limit: int, calls: int, allowed: list[bool]) -> None:
    assert stores.rates.rate_exceeded("k", limit, 60) == (False, 0.0)
    verdicts = [stores.rates.rate_limit("k", limit, 60) for _ in range(calls)]
    assert [ok for ok, _ in verdicts] == allowed
    assert all(0 < wait <= 60 for ok, wait in verdicts if not ok)
    blocked, wait = stores.rates.rate_exceeded("k", limit, 60)
    assert blocked == (calls >= limit) and (0 < wait <= 60 if blocked else wait == 0)
    assert stores.rates.rate_exceeded("k", limit, 60)[0] == blocked  # peeking does not count


def test_rate_limits_per_key_and_window() -> None:
    now = [1000.0]
    stores = sqlite_stores(":memory:", clock=lambda: now[0])
    rates = stores.rates
    assert rates.rate_limit("a", 1, 60) == (True, 0.0)
    assert rates.rate_limit("a", 1, 60) == (False, 60.0)
    assert rates.rate_limit("b", 1, 60) == (True, 0.0)
    now[0] += 45
    assert rates.rate_limit("a", 1, 60) == (False, 15.0)
    now[0] += 15
    assert rates.rate_limit("a", 1, 60) == (True, 0.0)  # a new window
    stores.close()


# --- retention: each store purges its own rows -----------------------------------------------------------
DAY = 86400.0


@pytest.mark.parametrize(
    ("write", "age_days", "purged"),
    [
        (lambda s: s.conversations.append("c", turn("m"), 5), 31, {"conversations": 1}),
        (lambda s: s.conversations.append("c", turn("m"), 5), 29, {}),
        (lambda s: s.feedback.add("c", "m", "up", None), 31, {"feedback": 1}),
        (lambda s: s.seen.mark_seen("telegram", "1", 600), 1, {"seen": 1}),
        (lambda s: s.rates.rate_limit("k", 5, 60), 2, {"rate": 1}),
        (lambda s: s.rates.rate_limit("k", 5, 60), 0.5, {}),
    ],
)
def test_each_store_purges_its_own_rows(
    write: Callable[[Stores], object], age_days: float, purged: dict[str, int]
) -> None:
    now = [1_000_000.0]
    stores = sqlite_stores(":memory:", retention_days=30, clock=lambda: now[0])
    write(stores)
    now[0] += age_days * DAY
    assert isinstance(stores.backend, SQLiteBackend)
    removed = stores.backend.purge()
    assert set(removed) == {t.name for t in TABLES}
    assert {name: n for name, n in removed.items() if n} == purged
    stores.close()


def test_an_old_conversation_takes_its_feedback_along(tmp_path: Path) -> None:
    now = [1_000_000.0]
    path = tmp_path / "k.sqlite3"
    stores = sqlite_stores(path, retention_days=30, clock=lambda: now[0])
    stores.conversations.append("c", turn("m"), 5)
    now[0] += 20 * DAY
    stores.feedback.add("c", "m", "down", "sai")  # newer than the retention, but its conversation is not
    now[0] += 11 * DAY
    assert isinstance(stores.backend, SQLiteBackend)
    assert stores.backend.purge() == {"feedback": 1, "conversations": 1, "seen": 0, "rate": 0}
    stores.close()
    with sqlite3.connect(path) as db:
        assert [db.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in ("feedback", "messages")] == [
            0,
            0,
        ]


# --- the Redis journal: every write a store journals during an outage is replayed by that store ---------
@pytest.mark.parametrize(
    ("write", "check"),
    [
        (lambda s: s.conversations.create("c"), lambda s: s.conversations.exists("c")),
        (
            lambda s: s.conversations.append("c", turn("m1"), 5),
            lambda s: [t.message_id for t in s.conversations.history("c")] == ["m1"],
        ),
        (
            lambda s: s.seen.mark_seen("telegram", "1", 600),
            lambda s: not s.seen.mark_seen("telegram", "1", 600),
        ),
    ],
)
def test_each_journaled_write_is_replayed(
    redis_server: RedisServer,
    tmp_path: Path,
    write: Callable[[Stores], object],
    check: Callable[[Stores], bool],
) -> None:
    journal = tmp_path / "journal.sqlite3"
    down = redis_stores("redis://127.0.0.1:1/0", socket_timeout=0.2, journal_path=journal)  # nobody listens
    write(down)
    assert isinstance(down.backend, RedisBackend) and down.backend.local.journal_size() == 1
    down.close()
    up = redis_stores(redis_server.url, journal_path=journal)
    assert up.backend.health() == []  # replays the journal
    reader = redis_stores(redis_server.url)
    assert check(reader)
    for s in (up, reader):
        s.close()


def test_journaled_clear_and_feedback_are_replayed_in_order(
    redis_server: RedisServer, tmp_path: Path
) -> None:
    journal = tmp_path / "journal.sqlite3"
    before = redis_stores(redis_server.url)
    before.conversations.append("c", turn("m1"), 5)
    before.close()
    down = redis_stores("redis://127.0.0.1:1/0", socket_timeout=0.2, journal_path=journal)
    down.conversations.append("c", turn("m2"), 5)
    down.conversations.clear("c")
    down.feedback.add("c", "m1", "down", "sai")
    down.feedback.add("c", "never-answered", "up", None)  # dropped on replay: Redis does not know it
    down.close()
    up = redis_stores(redis_server.url, journal_path=journal)
    assert up.backend.ping()
    assert up.conversations.history("c") == [] and up.conversations.has_message("c", "m2")
    assert [(i["message_id"], i["rating"]) for i in up.feedback.recent(10)] == [("m1", "down")]
    up.close()


def test_an_unknown_journal_entry_is_dropped(redis_server: RedisServer, tmp_path: Path) -> None:
    journal = tmp_path / "journal.sqlite3"
    local = SQLiteBackend(journal, TABLES)
    local.journal_append("set_value", ["zalo", "token", "x"])  # written by an older version, read by none
    local.close()
    up = redis_stores(redis_server.url, journal_path=journal)
    assert up.backend.ping() and isinstance(up.backend, RedisBackend)
    assert up.backend.local.journal_size() == 0
    up.close()
