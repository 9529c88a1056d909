"""Conversation stores: SQLite, and Redis (a real redis-server on a free loopback port) incl. outages."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.models import Turn
from bot.service import ChatService
from bot.settings import BotSettings
from bot.store import ConversationStore, RedisStore, SQLiteStore
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
