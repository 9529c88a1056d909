"""Each small store on its own, table-driven, on both backends (SQLite, and a real redis-server): conversations,
feedback, dedupe marks, rate limits; the SQLite backend's per-store retention and the Redis journal's replay."""

from __future__ import annotations

import json
import os
import sqlite3
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from bot.models import Turn
from bot.stores import TABLES, Stores, redis_stores, sqlite_stores
from bot.stores.jobs import job_records
from bot.stores.redis_backend import RedisBackend
from bot.stores.sqlite_backend import SQLiteBackend
from index.embedding import HashingEmbedder
from index.jobs import HOST, FileJobRecords, Job, JobRecords, JobState
from index.library import Library
from index.settings import IndexSettings
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


# --- operator jobs and the audit log: files under admin/, or Redis shared by hosts ------------------------
def job(job_id: str, state: JobState = "queued", **more: Any) -> Job:
    return Job(job_id=job_id, state=state, action="add", document_id="kl221-abc123", pid=os.getpid(), host=HOST,
               **more)  # fmt: skip


@pytest.fixture(params=["files", "redis"])
def records(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[JobRecords]:
    files = FileJobRecords(tmp_path / "admin")
    if request.param == "files":
        yield files
        return
    server: RedisServer = request.getfixturevalue("redis_server")
    backend = RedisBackend(server.url, [], prefix=f"t{time.monotonic_ns()}:")
    yield job_records(backend, tmp_path / "admin")
    backend.close()


@pytest.mark.parametrize(
    ("saved", "newest_first", "loaded"),
    [
        ([], [], None),
        ([job("20260101T000000-aaaa")], ["20260101T000000-aaaa"], "queued"),
        (
            [job("20260101T000000-aaaa"), job("20260101T000000-aaaa", "done")],
            ["20260101T000000-aaaa"],
            "done",
        ),
        (
            [job("20260101T000000-aaaa"), job("20260102T000000-bbbb"), job("20251231T235959-cccc")],
            ["20260102T000000-bbbb", "20260101T000000-aaaa", "20251231T235959-cccc"],
            "queued",
        ),
    ],
)
def test_job_records(
    records: JobRecords, saved: list[Job], newest_first: list[str], loaded: str | None
) -> None:
    for j in saved:
        records.save(j)
    assert [j.job_id for j in records.recent()] == newest_first
    found = records.load("20260101T000000-aaaa")
    assert (found.state if found else None) == loaded
    assert records.load("20990101T000000-none") is None


def test_only_the_newest_jobs_are_kept(records: JobRecords, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("index.jobs.KEEP_JOBS", 3)
    monkeypatch.setattr("bot.stores.jobs.KEEP_JOBS", 3)
    for n in range(5):
        records.save(job(f"2026010{n}T000000-aaaa"))
    assert [j.job_id[:9] for j in records.recent()] == ["20260104T", "20260103T", "20260102T"]
    assert records.load("20260100T000000-aaaa") is None


def test_the_audit_log_of_every_host_is_one(redis_server: RedisServer, tmp_path: Path) -> None:
    backends = [RedisBackend(redis_server.url, [], prefix="p:") for _ in "ab"]
    hosts = [job_records(b, tmp_path / h / "admin") for h, b in zip("ab", backends, strict=True)]
    hosts[0].audit({"action": "add", "job_id": "j1"})
    hosts[1].audit({"action": "add.done", "job_id": "j1"})
    lines = backends[0].client.lrange("p:admin:audit", 0, -1)
    assert [json.loads(x)["action"] for x in lines] == ["add", "add.done"]  # type: ignore[union-attr]
    assert not any((tmp_path / h / "admin").exists() for h in "ab")
    for b in backends:
        b.close()


def test_jobs_and_audit_written_during_a_redis_outage_are_replayed(
    redis_server: RedisServer, tmp_path: Path
) -> None:
    journal = tmp_path / "journal.sqlite3"
    down = RedisBackend("redis://127.0.0.1:1/0", TABLES, socket_timeout=0.2, journal_path=journal)
    local = job_records(down, tmp_path / "admin")
    local.save(job("20260101T000000-aaaa"))
    local.audit({"action": "add", "job_id": "20260101T000000-aaaa"})
    local.save(job("20260101T000000-aaaa", "done"))
    assert local.load("20260101T000000-aaaa") == job(
        "20260101T000000-aaaa", "done"
    )  # this host's files meanwhile
    down.close()
    up = RedisBackend(redis_server.url, TABLES, journal_path=journal)
    shared = job_records(up, tmp_path / "other-host" / "admin")
    assert up.ping()  # replays the journal
    assert [(j.job_id, j.state) for j in shared.recent()] == [("20260101T000000-aaaa", "done")]
    assert [json.loads(x)["action"] for x in up.client.lrange("ketluan:admin:audit", 0, -1)] == ["add"]  # type: ignore[union-attr]
    up.close()


@pytest.mark.parametrize(
    ("host", "pid", "state"),
    [
        (HOST, os.getpid(), "running"),  # alive here
        (HOST, 2**22 + 12345, "failed"),  # ended here: interrupted
        ("", 2**22 + 12345, "failed"),  # a record from before hosts were named: this host's
        ("another-host", 2**22 + 12345, "running"),  # cannot be looked at from here: as written
    ],
)
def test_a_job_of_a_process_that_ended_reads_as_failed_only_on_its_host(
    tmp_path: Path, host: str, pid: int, state: str
) -> None:
    library = Library(
        IndexSettings(data_dir=tmp_path, embedding_model="hashing-64"), lambda: HashingEmbedder(8)
    )
    library.records.save(job("20260101T000000-aaaa", "running").model_copy(update={"host": host, "pid": pid}))
    assert library.job("20260101T000000-aaaa").state == state
    assert [j.state for j in library.jobs()] == [state]
