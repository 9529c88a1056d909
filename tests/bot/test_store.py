"""Conversation stores: SQLite, and Redis (a real redis-server on a free loopback port) incl. outages."""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.models import Turn
from bot.service import ChatService
from bot.settings import BotSettings
from bot.store import (
    REDIS_UNAVAILABLE,
    STATE_NOT_WRITABLE,
    STATE_RESET,
    ConversationStore,
    RedisStore,
    SQLiteStore,
)
from index.search import SearchIndex
from tests.redis_server import RedisServer, wait_until


def turn(n: int) -> Turn:
    return Turn(message_id=f"m{n}", question=f"câu hỏi {n}", answer=f"trả lời {n} [1]", answered=True,
                ket_luan=["183-KL/TW"], passage_ids=["p"], created_at=float(n))  # fmt: skip


@pytest.fixture(params=["sqlite", "redis"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[ConversationStore]:
    if request.param == "sqlite":
        s: ConversationStore = SQLiteStore(tmp_path / "state" / "k.sqlite3")
        yield s
        s.close()
    else:
        server: RedisServer = request.getfixturevalue("redis_server")
        r = RedisStore(server.url, prefix=f"t{time.monotonic_ns()}:")
        yield r
        r.close()


def test_history_is_kept_in_order_and_bounded(store: ConversationStore) -> None:
    assert not store.exists("c1")
    for n in range(5):
        store.append("c1", turn(n), max_turns=3)
    assert store.exists("c1")
    assert [t.message_id for t in store.history("c1")] == ["m2", "m3", "m4"]
    assert store.has_message("c1", "m0")  # feedback on an older answer still finds it
    assert store.history("other") == []
    store.clear("c1")
    assert store.history("c1") == []


def test_create_makes_an_empty_conversation(store: ConversationStore) -> None:
    store.create("c2")
    assert store.exists("c2") and store.history("c2") == []


def test_feedback_newest_first(store: ConversationStore) -> None:
    store.add_feedback("c", "m1", "up", None)
    store.add_feedback("c", "m2", "down", "sai ngày")
    items = store.feedback(10)
    assert [(i["message_id"], i["rating"], i["comment"]) for i in items] == [
        ("m2", "down", "sai ngày"),
        ("m1", "up", None),
    ]
    assert len(store.feedback(1)) == 1


def test_mark_seen_is_true_once(store: ConversationStore) -> None:
    assert store.mark_seen("telegram", "42", 60)
    assert not store.mark_seen("telegram", "42", 60)
    assert store.mark_seen("zalo", "42", 60)


def test_mark_seen_is_atomic_across_threads(store: ConversationStore) -> None:
    results: list[bool] = []
    lock = threading.Lock()

    def worker() -> None:
        ok = store.mark_seen("ns", "same", 60)
        with lock:
            results.append(ok)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results.count(True) == 1


def test_rate_limit_allows_up_to_the_limit(store: ConversationStore) -> None:
    verdicts = [store.rate_limit("ip:1", 3, 60) for _ in range(4)]
    assert [ok for ok, _ in verdicts] == [True, True, True, False]
    assert 0 < verdicts[-1][1] <= 60
    assert store.rate_limit("ip:2", 3, 60)[0]


def test_rate_limit_window_expires(store: ConversationStore) -> None:
    assert store.rate_limit("k", 1, 1)[0]
    assert not store.rate_limit("k", 1, 1)[0]
    wait_until(lambda: store.rate_limit("k", 1, 1)[0], timeout=5)


def test_ping(store: ConversationStore) -> None:
    assert store.ping()


def test_two_redis_workers_share_conversations(redis_server: RedisServer) -> None:
    a, b = RedisStore(redis_server.url), RedisStore(redis_server.url)
    a.append("shared", turn(1), 5)
    assert [t.message_id for t in b.history("shared")] == ["m1"]
    assert a.rate_limit("ip", 1, 60)[0] and not b.rate_limit("ip", 1, 60)[0]
    a.close()
    b.close()


def test_redis_outage_degrades_and_recovers(redis_server: RedisServer) -> None:
    store = RedisStore(redis_server.url, retry_seconds=0.2, socket_timeout=0.3)
    store.append("c", turn(1), 5)
    redis_server.stop()
    store.append("c2", turn(2), 5)  # no exception: served locally
    assert [t.message_id for t in store.history("c2")] == ["m2"]
    assert store.degraded
    assert store.mark_seen("ns", "k", 60)
    assert not store.ping()
    redis_server.start()  # same port, empty data (no persistence)
    wait_until(store.ping)
    store.append("c3", turn(3), 5)
    assert not store.degraded
    assert [t.message_id for t in RedisStore(redis_server.url).history("c3")] == ["m3"]
    store.close()


def test_service_keeps_answering_through_a_redis_outage(
    redis_server: RedisServer, kl_index: SearchIndex
) -> None:
    store = RedisStore(redis_server.url, retry_seconds=0.2, socket_timeout=0.3)
    service = ChatService(kl_index, store, BotSettings(redis_url=redis_server.url))
    first = service.answer("Kết luận 183 giao Bộ Nội vụ việc gì?")
    redis_server.stop()
    during = service.answer("Ai ký Kết luận 221?", first.conversation_id)
    assert during.answered and "Trần Cẩm Tú" in during.answer
    redis_server.start()
    wait_until(store.ping)
    after = service.answer("Kết luận 183 ban hành ngày nào?", first.conversation_id)
    assert after.answered and "1/8/2025" in after.answer
    store.close()


# --- one feedback per message; nobody evicts anyone's feedback -------------------------------------
def test_feedback_is_one_per_message_and_the_latest_wins(store: ConversationStore) -> None:
    for n in range(50):
        store.add_feedback("c", "m1", "up" if n % 2 else "down", f"lần {n}")
    store.add_feedback("c", "m2", "up", None)
    items = store.feedback(1000)
    assert [(i["message_id"], i["rating"], i["comment"]) for i in items] == [
        ("m2", "up", None),
        ("m1", "up", "lần 49"),
    ]


def test_redis_feedback_of_others_survives_a_flood_on_one_message(redis_server: RedisServer) -> None:
    store = RedisStore(redis_server.url)
    store.add_feedback("other", "theirs", "down", "sai")
    for _ in range(10_050):  # the old list kept 10,000 items, newest first: this evicted everyone else
        store.add_feedback("mine", "m", "up", None)
    items = store.feedback(20_000)
    assert ("other", "theirs") in {(i["conversation_id"], i["message_id"]) for i in items} and len(items) == 2
    store.close()


def test_sqlite_feedback_rows_do_not_grow_per_duplicate_post(tmp_path: Path) -> None:
    path = tmp_path / "k.sqlite3"
    store = SQLiteStore(path)
    for _ in range(500):
        store.add_feedback("c", "m", "up", None)
    store.close()
    with sqlite3.connect(path) as db:
        assert db.execute("SELECT count(*) FROM feedback").fetchone()[0] == 1


def test_an_old_database_with_duplicate_feedback_is_migrated(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite3"
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE feedback (seq INTEGER PRIMARY KEY AUTOINCREMENT, conversation_id TEXT NOT NULL, "
                   "message_id TEXT NOT NULL, rating TEXT NOT NULL, comment TEXT, created_at REAL NOT NULL)")  # fmt: skip
        db.executemany("INSERT INTO feedback (conversation_id, message_id, rating, comment, created_at) VALUES "
                       "('c', 'm', ?, NULL, ?)", [("down", time.time() - 9), ("up", time.time() - 5)])  # fmt: skip
    store = SQLiteStore(path)
    assert [(i["message_id"], i["rating"]) for i in store.feedback(10)] == [("m", "up")]
    store.close()


# --- a state database that is not one, or cannot be written -----------------------------------------
def test_a_state_file_that_is_not_a_database_is_moved_aside(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "state" / "ketluan.sqlite3"
    path.parent.mkdir()
    path.write_bytes(b"this is not a database at all " * 200)
    with caplog.at_level(logging.ERROR, logger="bot.store"):
        store = SQLiteStore(path)
    store.append("c", turn(1), 5)
    assert [t.message_id for t in store.history("c")] == ["m1"]
    assert store.health() == [STATE_RESET]
    aside = [p for p in path.parent.iterdir() if ".corrupt-" in p.name]
    assert len(aside) == 1 and aside[0].read_bytes().startswith(b"this is not a database")
    assert any("not a database" in m and aside[0].name in m for m in caplog.messages)
    store.close()


def test_failed_writes_are_reported_not_raised(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "k.sqlite3")
    assert store.health() == []
    store._db.execute("PRAGMA query_only = ON")  # every write now fails, as on a full or read-only disk
    store.append("c", turn(1), 5)
    store.create("c2")
    store.add_feedback("c", "m1", "up", None)
    assert store.rate_limit("k", 1, 60)[0] and store.mark_seen("ns", "k", 60)
    assert store.health() == [STATE_NOT_WRITABLE]
    store._db.execute("PRAGMA query_only = OFF")
    assert store.health() == []  # the probe writes again: no longer degraded
    store.close()


def test_conversations_older_than_the_retention_are_purged(tmp_path: Path) -> None:
    now = [1_000_000.0]
    path = tmp_path / "k.sqlite3"
    store = SQLiteStore(path, retention_days=30, clock=lambda: now[0])
    for n in range(20):
        store.append(f"old{n}", turn(n), 5)
        store.add_feedback(f"old{n}", f"m{n}", "up", None)
        store.rate_limit(f"bearer:made-up-{n}", 5, 60)  # one counter per made-up key
        store.mark_seen("telegram", f"update-{n}", 600)
    now[0] += 29 * 86400
    store.append("recent", turn(99), 5)
    store.rate_limit("ip:recent", 5, 60)
    store.mark_seen("telegram", "update-recent", 600)
    now[0] += 2 * 86400  # the old ones are 31 days old now, "recent" 2 days
    assert store.purge() == 20
    assert not store.exists("old3") and store.history("old3") == [] and store.exists("recent")
    assert [i["conversation_id"] for i in store.feedback(100)] == []
    store.close()
    with sqlite3.connect(path) as db:
        assert db.execute("SELECT count(*) FROM turns").fetchone()[0] == 1
        assert db.execute("SELECT key FROM rate").fetchall() == []  # counters a day old are gone
        assert db.execute("SELECT key FROM seen").fetchall() == []  # so are expired dedupe marks


# --- a Redis outage loses nothing that was acknowledged ----------------------------------------------
@pytest.fixture()
def durable_redis(tmp_path: Path) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path, persist=True)
    server.start()
    yield server
    server.stop()


def test_redis_outage_writes_are_journaled_and_replayed(durable_redis: RedisServer, tmp_path: Path) -> None:
    journal = tmp_path / "state" / "redis-journal.sqlite3"
    store = RedisStore(durable_redis.url, retry_seconds=0.2, socket_timeout=0.3, journal_path=journal)
    store.append("c_before_outage", turn(1), 5)
    assert store.mark_seen("telegram", "update-1", 600)
    durable_redis.stop()

    assert store.exists("c_before_outage")  # a follow-up keeps its conversation
    store.append("c_before_outage", turn(2), 5)
    store.create("c_during_outage")
    store.append("c_during_outage", turn(3), 5)
    assert store.has_message("c_before_outage", "m1")
    store.add_feedback("c_before_outage", "m1", "down", "sai ngày")
    assert not store.mark_seen("telegram", "update-1", 600)  # seen before the outage: still a duplicate
    assert store.mark_seen("telegram", "update-2", 600) and not store.mark_seen("telegram", "update-2", 600)
    assert store.health() == [REDIS_UNAVAILABLE]
    store.close()  # the process goes away before Redis is back: the journal is on disk

    durable_redis.start()
    later = RedisStore(durable_redis.url, journal_path=journal)
    assert later.health() == []  # replays the journal
    reader = RedisStore(durable_redis.url)
    assert [t.message_id for t in reader.history("c_before_outage")] == ["m1", "m2"]
    assert reader.exists("c_during_outage") and [t.message_id for t in reader.history("c_during_outage")] == [
        "m3"
    ]
    assert [(i["message_id"], i["rating"]) for i in reader.feedback(10)] == [("m1", "down")]
    assert not reader.mark_seen("telegram", "update-2", 600)  # the dedupe mark reached Redis too
    later.close()
    reader.close()
