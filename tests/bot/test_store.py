"""The state stores on SQLite and on Redis (a real redis-server on a free loopback port), incl. the backends'
faults: a corrupt file, failed writes, retention, a Redis outage journaled and replayed."""

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
from bot.stores import Stores, redis_stores, sqlite_stores
from bot.stores.backend import REDIS_UNAVAILABLE, STATE_NOT_WRITABLE, STATE_RESET
from bot.stores.redis_backend import RedisBackend
from bot.stores.sqlite_backend import SQLiteBackend
from index.search import SearchIndex
from tests.redis_server import RedisServer, wait_until


def turn(n: int) -> Turn:
    return Turn(message_id=f"m{n}", question=f"câu hỏi {n}", answer=f"trả lời {n} [1]", answered=True,
                ket_luan=["183-KL/TW"], passage_ids=["p"], created_at=float(n))  # fmt: skip


def sqlite_of(stores: Stores) -> SQLiteBackend:
    assert isinstance(stores.backend, SQLiteBackend)
    return stores.backend


def redis_of(stores: Stores) -> RedisBackend:
    assert isinstance(stores.backend, RedisBackend)
    return stores.backend


@pytest.fixture(params=["sqlite", "redis"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Stores]:
    if request.param == "sqlite":
        s = sqlite_stores(tmp_path / "state" / "k.sqlite3")
        yield s
        s.close()
    else:
        server: RedisServer = request.getfixturevalue("redis_server")
        r = redis_stores(server.url, prefix=f"t{time.monotonic_ns()}:")
        yield r
        r.close()


def test_history_is_kept_in_order_and_bounded(store: Stores) -> None:
    assert not store.conversations.exists("c1")
    for n in range(5):
        store.conversations.append("c1", turn(n), max_turns=3)
    assert store.conversations.exists("c1")
    assert [t.message_id for t in store.conversations.history("c1")] == ["m2", "m3", "m4"]
    assert store.conversations.has_message("c1", "m0")  # feedback on an older answer still finds it
    assert store.conversations.history("other") == []
    store.conversations.clear("c1")
    assert store.conversations.history("c1") == []


def test_create_makes_an_empty_conversation(store: Stores) -> None:
    store.conversations.create("c2")
    assert store.conversations.exists("c2") and store.conversations.history("c2") == []


def test_feedback_newest_first(store: Stores) -> None:
    store.feedback.add("c", "m1", "up", None)
    store.feedback.add("c", "m2", "down", "sai ngày")
    items = store.feedback.recent(10)
    assert [(i["message_id"], i["rating"], i["comment"]) for i in items] == [
        ("m2", "down", "sai ngày"),
        ("m1", "up", None),
    ]
    assert len(store.feedback.recent(1)) == 1


def test_mark_seen_is_true_once(store: Stores) -> None:
    assert store.seen.mark_seen("telegram", "42", 60)
    assert not store.seen.mark_seen("telegram", "42", 60)
    assert store.seen.mark_seen("zalo", "42", 60)


def test_mark_seen_is_atomic_across_threads(store: Stores) -> None:
    results: list[bool] = []
    lock = threading.Lock()

    def worker() -> None:
        ok = store.seen.mark_seen("ns", "same", 60)
        with lock:
            results.append(ok)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results.count(True) == 1


def test_rate_limit_allows_up_to_the_limit(store: Stores) -> None:
    verdicts = [store.rates.rate_limit("ip:1", 3, 60) for _ in range(4)]
    assert [ok for ok, _ in verdicts] == [True, True, True, False]
    assert 0 < verdicts[-1][1] <= 60
    assert store.rates.rate_limit("ip:2", 3, 60)[0]


def test_rate_limit_window_expires(store: Stores) -> None:
    assert store.rates.rate_limit("k", 1, 1)[0]
    assert not store.rates.rate_limit("k", 1, 1)[0]
    wait_until(lambda: store.rates.rate_limit("k", 1, 1)[0], timeout=5)


def test_ping(store: Stores) -> None:
    assert store.backend.ping()


def test_two_redis_workers_share_conversations(redis_server: RedisServer) -> None:
    a, b = redis_stores(redis_server.url), redis_stores(redis_server.url)
    a.conversations.append("shared", turn(1), 5)
    assert [t.message_id for t in b.conversations.history("shared")] == ["m1"]
    assert a.rates.rate_limit("ip", 1, 60)[0] and not b.rates.rate_limit("ip", 1, 60)[0]
    a.close()
    b.close()


def test_redis_outage_degrades_and_recovers(redis_server: RedisServer) -> None:
    store = redis_stores(redis_server.url, retry_seconds=0.2, socket_timeout=0.3)
    store.conversations.append("c", turn(1), 5)
    redis_server.stop()
    store.conversations.append("c2", turn(2), 5)  # no exception: served locally
    assert [t.message_id for t in store.conversations.history("c2")] == ["m2"]
    assert redis_of(store).degraded
    assert store.seen.mark_seen("ns", "k", 60)
    assert not store.backend.ping()
    redis_server.start()  # same port, empty data (no persistence)
    wait_until(store.backend.ping)
    store.conversations.append("c3", turn(3), 5)
    assert not redis_of(store).degraded
    assert [t.message_id for t in redis_stores(redis_server.url).conversations.history("c3")] == ["m3"]
    store.close()


def test_service_keeps_answering_through_a_redis_outage(
    redis_server: RedisServer, kl_index: SearchIndex
) -> None:
    store = redis_stores(redis_server.url, retry_seconds=0.2, socket_timeout=0.3)
    service = ChatService(kl_index, store, BotSettings(redis_url=redis_server.url))
    first = service.answer("Kết luận 183 giao Bộ Nội vụ việc gì?")
    redis_server.stop()
    during = service.answer("Ai ký Kết luận 221?", first.conversation_id)
    assert during.answered and "Trần Cẩm Tú" in during.answer
    redis_server.start()
    wait_until(store.backend.ping)
    after = service.answer("Kết luận 183 ban hành ngày nào?", first.conversation_id)
    assert after.answered and "1/8/2025" in after.answer
    store.close()


# --- one feedback per message; nobody evicts anyone's feedback -------------------------------------
def test_feedback_is_one_per_message_and_the_latest_wins(store: Stores) -> None:
    for n in range(50):
        store.feedback.add("c", "m1", "up" if n % 2 else "down", f"lần {n}")
    store.feedback.add("c", "m2", "up", None)
    items = store.feedback.recent(1000)
    assert [(i["message_id"], i["rating"], i["comment"]) for i in items] == [
        ("m2", "up", None),
        ("m1", "up", "lần 49"),
    ]


def test_redis_feedback_of_others_survives_a_flood_on_one_message(redis_server: RedisServer) -> None:
    store = redis_stores(redis_server.url)
    store.feedback.add("other", "theirs", "down", "sai")
    for _ in range(10_050):  # the old list kept 10,000 items, newest first: this evicted everyone else
        store.feedback.add("mine", "m", "up", None)
    items = store.feedback.recent(20_000)
    assert ("other", "theirs") in {(i["conversation_id"], i["message_id"]) for i in items} and len(items) == 2
    store.close()


def test_sqlite_feedback_rows_do_not_grow_per_duplicate_post(tmp_path: Path) -> None:
    path = tmp_path / "k.sqlite3"
    store = sqlite_stores(path)
    for _ in range(500):
        store.feedback.add("c", "m", "up", None)
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
    store = sqlite_stores(path)
    assert [(i["message_id"], i["rating"]) for i in store.feedback.recent(10)] == [("m", "up")]
    store.close()


# --- a state database that is not one, or cannot be written -----------------------------------------
def test_a_state_file_that_is_not_a_database_is_moved_aside(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "state" / "ketluan.sqlite3"
    path.parent.mkdir()
    path.write_bytes(b"this is not a database at all " * 200)
    with caplog.at_level(logging.ERROR, logger="bot.stores.sqlite_backend"):
        store = sqlite_stores(path)
    store.conversations.append("c", turn(1), 5)
    assert [t.message_id for t in store.conversations.history("c")] == ["m1"]
    assert store.backend.health() == [STATE_RESET]
    aside = [p for p in path.parent.iterdir() if ".corrupt-" in p.name]
    assert len(aside) == 1 and aside[0].read_bytes().startswith(b"this is not a database")
    assert any("not a database" in m and aside[0].name in m for m in caplog.messages)
    store.close()


def test_failed_writes_are_reported_not_raised(tmp_path: Path) -> None:
    store = sqlite_stores(tmp_path / "k.sqlite3")
    assert store.backend.health() == []
    sqlite_of(store)._db.execute(
        "PRAGMA query_only = ON"
    )  # every write now fails, as on a full or read-only disk
    store.conversations.append("c", turn(1), 5)
    store.conversations.create("c2")
    store.feedback.add("c", "m1", "up", None)
    assert store.rates.rate_limit("k", 1, 60)[0] and store.seen.mark_seen("ns", "k", 60)
    assert store.backend.health() == [STATE_NOT_WRITABLE]
    sqlite_of(store)._db.execute("PRAGMA query_only = OFF")
    assert store.backend.health() == []  # the probe writes again: no longer degraded
    store.close()


def test_conversations_older_than_the_retention_are_purged(tmp_path: Path) -> None:
    now = [1_000_000.0]
    path = tmp_path / "k.sqlite3"
    store = sqlite_stores(path, retention_days=30, clock=lambda: now[0])
    for n in range(20):
        store.conversations.append(f"old{n}", turn(n), 5)
        store.feedback.add(f"old{n}", f"m{n}", "up", None)
        store.rates.rate_limit(f"bearer:made-up-{n}", 5, 60)  # one counter per made-up key
        store.seen.mark_seen("telegram", f"update-{n}", 600)
    now[0] += 29 * 86400
    store.conversations.append("recent", turn(99), 5)
    store.rates.rate_limit("ip:recent", 5, 60)
    store.seen.mark_seen("telegram", "update-recent", 600)
    now[0] += 2 * 86400  # the old ones are 31 days old now, "recent" 2 days
    assert sqlite_of(store).purge()["conversations"] == 20
    assert (
        not store.conversations.exists("old3")
        and store.conversations.history("old3") == []
        and store.conversations.exists("recent")
    )
    assert [i["conversation_id"] for i in store.feedback.recent(100)] == []
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
    store = redis_stores(durable_redis.url, retry_seconds=0.2, socket_timeout=0.3, journal_path=journal)
    store.conversations.append("c_before_outage", turn(1), 5)
    assert store.seen.mark_seen("telegram", "update-1", 600)
    durable_redis.stop()

    assert store.conversations.exists("c_before_outage")  # a follow-up keeps its conversation
    store.conversations.append("c_before_outage", turn(2), 5)
    store.conversations.create("c_during_outage")
    store.conversations.append("c_during_outage", turn(3), 5)
    assert store.conversations.has_message("c_before_outage", "m1")
    store.feedback.add("c_before_outage", "m1", "down", "sai ngày")
    assert not store.seen.mark_seen("telegram", "update-1", 600)  # seen before the outage: still a duplicate
    assert store.seen.mark_seen("telegram", "update-2", 600) and not store.seen.mark_seen(
        "telegram", "update-2", 600
    )
    assert store.backend.health() == [REDIS_UNAVAILABLE]
    store.close()  # the process goes away before Redis is back: the journal is on disk

    durable_redis.start()
    later = redis_stores(durable_redis.url, journal_path=journal)
    assert later.backend.health() == []  # replays the journal
    reader = redis_stores(durable_redis.url)
    assert [t.message_id for t in reader.conversations.history("c_before_outage")] == ["m1", "m2"]
    assert reader.conversations.exists("c_during_outage") and [
        t.message_id for t in reader.conversations.history("c_during_outage")
    ] == ["m3"]
    assert [(i["message_id"], i["rating"]) for i in reader.feedback.recent(10)] == [("m1", "down")]
    assert not reader.seen.mark_seen("telegram", "update-2", 600)  # the dedupe mark reached Redis too
    later.close()
    reader.close()
