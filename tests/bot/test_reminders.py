"""Deadline reminders and the bot state under them: sent N days before, once, by one worker, after restarts."""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from bot.reminders import Reminders
from bot.state import BotState, RedisState, SQLiteState, Subscription
from index.tasks import TaskBook
from tests.bot.channel_fakes import PUBLIC_URL, directive
from tests.redis_server import RedisServer

TODAY = dt.date(2025, 12, 1)
BOOK = TaskBook(
    [
        directive(1, deadline=TODAY + dt.timedelta(days=1)),
        directive(2, deadline=TODAY + dt.timedelta(days=3)),
        directive(3, deadline=TODAY + dt.timedelta(days=4)),
        directive(4, deadline=TODAY - dt.timedelta(days=1)),  # already past
        directive(5),  # no deadline
        directive(6, "Bộ Y tế", deadline=TODAY + dt.timedelta(days=1)),
    ],
    [],
)


@pytest.fixture(params=["sqlite", "redis"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Callable[[], BotState]]:
    """New connections to one shared backend: each call is another worker (or the same after a restart)."""
    made: list[BotState] = []
    if request.param == "sqlite":
        path = tmp_path / "state" / "ketluan.sqlite3"

        def make() -> BotState:
            made.append(SQLiteState(path))
            return made[-1]
    else:
        import redis

        server: RedisServer = request.getfixturevalue("redis_server")
        prefix = f"t{time.monotonic_ns()}:"

        def make() -> BotState:
            made.append(RedisState(redis.Redis.from_url(server.url, decode_responses=True), prefix))
            return made[-1]

    yield make
    for state in made:
        state.close()


class Outbox:
    def __init__(self) -> None:
        self.sent: list[tuple[Subscription, list[str]]] = []

    async def send_reminder(self, subscription: Subscription, texts: list[str]) -> None:
        self.sent.append((subscription, texts))


def reminders(state: BotState, outbox: Outbox, day: list[dt.date], days_before: int = 3) -> Reminders:
    return Reminders(state, lambda: BOOK, {"telegram": outbox, "zalo": outbox}, public_url=PUBLIC_URL,
                     days_before=days_before, today=lambda: day[0])  # fmt: skip


def test_tasks_due_within_n_days_are_reminded_once(backend: Callable[[], BotState]) -> None:
    state, outbox, day = backend(), Outbox(), [TODAY]
    state.subscribe(Subscription("telegram", "-100", "Bộ Nội vụ", 5))
    worker = reminders(state, outbox, day)
    assert asyncio.run(worker.tick()) == 1
    [(subscription, texts)] = outbox.sent
    assert subscription == Subscription("telegram", "-100", "Bộ Nội vụ", 5)
    body = "\n".join(texts)
    assert "Nhắc hạn nhiệm vụ của Bộ Nội vụ" in body
    assert "việc thứ 1" in body and "còn 1 ngày" in body and "việc thứ 2" in body and "còn 3 ngày" in body
    assert "việc thứ 3" not in body and "việc thứ 4" not in body and "việc thứ 6" not in body
    assert f"{PUBLIC_URL}/documents/kl183-621b55#kl183-621b55.m3.d1" in body
    assert asyncio.run(worker.tick()) == 0  # sent once

    restarted = reminders(backend(), outbox, day)  # a new process, same backend
    assert asyncio.run(restarted.tick()) == 0
    day[0] = TODAY + dt.timedelta(days=1)  # the next day, task 3 comes within 3 days
    assert asyncio.run(restarted.tick()) == 1
    assert "việc thứ 3" in "\n".join(outbox.sent[-1][1]) and "việc thứ 1" not in "\n".join(outbox.sent[-1][1])


def test_the_number_of_days_is_a_setting(backend: Callable[[], BotState]) -> None:
    state, outbox = backend(), Outbox()
    state.subscribe(Subscription("zalo", "u-1", "Bộ Nội vụ"))
    asyncio.run(reminders(state, outbox, [TODAY], days_before=1).tick())
    [(_, texts)] = outbox.sent
    assert "việc thứ 1" in "\n".join(texts) and "việc thứ 2" not in "\n".join(texts)


def test_two_workers_ticking_at_once_send_each_reminder_once(backend: Callable[[], BotState]) -> None:
    outbox = Outbox()
    first, second = backend(), backend()
    first.subscribe(Subscription("zalo", "u-1", "Bộ Nội vụ"))
    first.subscribe(Subscription("zalo", "u-2", "Bộ Y tế"))

    async def both() -> list[int]:
        a, b = reminders(first, outbox, [TODAY]), reminders(second, outbox, [TODAY])
        return list(await asyncio.gather(a.tick(), b.tick()))

    assert sum(asyncio.run(both())) >= 2
    # the two workers may split one chat's reminders between them, but none is sent twice
    items = sorted(
        (s.chat, line)
        for s, texts in outbox.sent
        for t in texts
        for line in t.splitlines()
        if line.startswith("• ")
    )
    assert [chat for chat, _ in items] == ["u-1", "u-1", "u-2"] and len(set(items)) == 3


def test_a_failed_send_is_logged_and_not_repeated(
    backend: Callable[[], BotState], caplog: pytest.LogCaptureFixture
) -> None:
    class Broken:
        async def send_reminder(self, subscription: Subscription, texts: list[str]) -> None:
            raise RuntimeError("chat not found")

    state = backend()
    state.subscribe(Subscription("telegram", "7", "Bộ Nội vụ"))
    worker = Reminders(
        state, lambda: BOOK, {"telegram": Broken()}, public_url=PUBLIC_URL, today=lambda: TODAY
    )
    assert asyncio.run(worker.tick()) == 0
    assert "could not be sent" in caplog.text and "chat not found" in caplog.text


def test_the_loop_ticks_until_stopped() -> None:
    state, outbox = SQLiteState(":memory:"), Outbox()
    state.subscribe(Subscription("telegram", "1", "Bộ Nội vụ"))
    worker = reminders(state, outbox, [TODAY])

    async def run() -> None:
        stop = asyncio.Event()
        task = asyncio.create_task(worker.run(stop, interval_seconds=3600))
        while not outbox.sent:
            assert not task.done()
            await asyncio.sleep(0.01)
        stop.set()
        await asyncio.wait_for(task, 5)

    asyncio.run(run())
    assert len(outbox.sent) == 1


def test_without_a_task_book_nothing_is_due() -> None:
    state = SQLiteState(":memory:")
    state.subscribe(Subscription("telegram", "1", "Bộ Nội vụ"))
    worker = Reminders(
        state, lambda: None, {"telegram": Outbox()}, public_url=PUBLIC_URL, today=lambda: TODAY
    )
    assert worker.due(TODAY) == []


# --- the state ---------------------------------------------------------------------------------------
def test_claims_locks_values_and_subscriptions(backend: Callable[[], BotState]) -> None:
    a, b = backend(), backend()
    assert a.claim("k", 60) and not b.claim("k", 60)
    owner = a.acquire("lock", 60)
    assert owner is not None and b.acquire("lock", 60) is None
    b.release("lock", "not-the-owner")
    assert b.acquire("lock", 60) is None
    a.release("lock", owner)
    assert b.acquire("lock", 60) is not None
    a.put("v", "1")
    assert b.get("v") == "1" and b.get("missing") is None
    assert a.subscribe(Subscription("zalo", "u", "Bộ Nội vụ")) and not b.subscribe(
        Subscription("zalo", "u", "Bộ Nội vụ")
    )
    a.subscribe(Subscription("zalo", "u", "Bộ Y tế"))
    a.subscribe(Subscription("telegram", "u", "Bộ Y tế"))
    assert [s.agency for s in b.subscriptions("zalo", "u")] == ["Bộ Nội vụ", "Bộ Y tế"]
    assert b.unsubscribe("zalo", "u", "Bộ Y tế") == 1
    assert b.unsubscribe("zalo", "u") == 1
    assert [s.channel for s in a.subscriptions()] == ["telegram"]


def test_an_expired_lock_or_claim_can_be_taken_again() -> None:
    now = [1000.0]
    state = SQLiteState(":memory:", clock=lambda: now[0])
    assert state.acquire("lock", 10) is not None and state.claim("c", 10)
    now[0] += 11
    assert state.acquire("lock", 10) is not None and state.claim("c", 10)
    state.put("v", "x", ttl_seconds=5)
    now[0] += 6
    assert state.get("v") is None


def test_the_state_sits_on_the_backend_of_the_stores(tmp_path: Path, redis_server: RedisServer) -> None:
    from bot.state import open_state
    from bot.stores.redis_backend import RedisBackend
    from bot.stores.sqlite_backend import SQLiteBackend

    local = SQLiteBackend(tmp_path / "state" / "ketluan.sqlite3", [])
    state = open_state(local)
    assert isinstance(state, SQLiteState) and state.path == local.path
    state.close()
    local.close()
    redis = RedisBackend(redis_server.url, [], prefix="p:")
    shared = open_state(redis)
    assert isinstance(shared, RedisState)
    assert shared.claim("k", 60)
    assert redis.client.exists("p:bot:claim:k")  # the backend's own client and key space
    redis.close()
