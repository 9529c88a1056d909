"""The operator's question log (SQLite and Redis) and the console's report over it."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.analytics import (
    QuestionLog,
    QuestionRecord,
    RedisQuestionLog,
    SQLiteQuestionLog,
    asking,
    current_asker,
    open_question_log,
)
from bot.question_report import summary, unanswered_groups
from bot.settings import BotSettings
from bot.stores import redis_stores, sqlite_stores
from bot.stores.redis_backend import RedisBackend
from tests.redis_server import RedisServer


def _record(i: int, *, at: float | None = None, answered: bool = True, channel: str = "api",
            text: str = "Câu hỏi", latency: float = 10.0) -> QuestionRecord:  # fmt: skip
    return QuestionRecord(message_id=f"m{i}", at=at if at is not None else time.time() - i, channel=channel,
                          text=text, intent="fact", answered=answered, latency_ms=latency,
                          passage_ids=["kl183-621b55.m1.d1"], answer="Trả lời [1].", user="abc")  # fmt: skip


@pytest.fixture(params=["sqlite", "redis"])
def qlog(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[QuestionLog]:
    if request.param == "sqlite":
        log = SQLiteQuestionLog(tmp_path / "q.sqlite3", retention_days=1, max_rows=100)
        yield log
        log.close()
        return
    server: RedisServer = request.getfixturevalue("redis_server")
    backend = RedisBackend(server.url, [])
    yield RedisQuestionLog(backend.client, retention_days=1, max_rows=100)
    backend.close()


def test_record_filter_and_feedback(qlog: QuestionLog) -> None:
    qlog.record(_record(1, channel="telegram", answered=False, text="Kết luận 999 nói gì?"))
    qlog.record(_record(2, channel="widget"))
    assert [r.message_id for r in qlog.questions()] == ["m1", "m2"]  # newest first
    assert [r.message_id for r in qlog.questions(answered=False)] == ["m1"]
    assert [r.message_id for r in qlog.questions(channel="widget")] == ["m2"]
    assert qlog.questions(since=time.time() + 60) == []
    qlog.feedback("m2", "down", "sai hạn")
    qlog.feedback("unknown", "up", None)  # nothing to attach it to: ignored
    down = qlog.questions(channel="widget")[0]
    assert (down.feedback, down.comment) == ("down", "sai hạn")


def test_retention_and_size_are_bounded(qlog: QuestionLog) -> None:
    qlog.record(_record(0, at=time.time() - 2 * 86_400))  # past the one-day retention
    for i in range(1, 106):
        qlog.record(_record(i))
    qlog.purge()
    kept = qlog.questions(limit=1000)
    assert len(kept) == 100 and "m0" not in {r.message_id for r in kept}
    assert {r.message_id for r in kept} == {f"m{i}" for i in range(1, 101)}  # the newest


def test_salt_stays_and_users_are_hashed(tmp_path: Path) -> None:
    first = SQLiteQuestionLog(tmp_path / "q.sqlite3")
    again = SQLiteQuestionLog(tmp_path / "q.sqlite3")
    assert first.salt == again.salt and len(first.salt) == 32
    with asking("zalo", "user-123", first.salt):
        asker = current_asker()
        assert asker is not None and asker.channel == "zalo" and asker.user and "user-123" not in asker.user
    assert current_asker() is None


def test_unanswered_questions_are_grouped_by_similarity() -> None:
    texts = ["Kết luận 250 nói về chuyển đổi số?", "Kết luận 250 nói gì về chuyển đổi số",
             "kết luận 250 về chuyển đổi số nói gì?", "Thời tiết Hà Nội ngày mai thế nào?"]  # fmt: skip
    records = [_record(i, answered=False, text=t) for i, t in enumerate(texts)] + [_record(9, answered=True)]
    groups = unanswered_groups(records)
    assert [g["count"] for g in groups] == [3, 1]
    assert groups[1]["question"] == "Thời tiết Hà Nội ngày mai thế nào?"


def test_summary_numbers() -> None:
    now = time.time()
    records = [_record(i, at=now - i * 86_400, answered=i % 2 == 0, latency=float(10 * (i + 1)),
                       channel=("api", "zalo")[i % 2]) for i in range(4)]  # fmt: skip
    records[1].feedback, records[1].comment = "down", "chưa đúng"
    report = summary(records, days=7)
    assert report["questions"] == 4 and report["answer_rate"] == 0.5
    assert report["latency_ms"]["p50"] == 25.0
    assert len(report["per_day"]) == 7 and sum(r["total"] for r in report["per_day"]) == 4
    today = dt.datetime.now(dt.UTC).date().isoformat()
    assert report["per_day"][-1] == {"day": today, "total": 1, "api": 1}
    assert report["thumbs_down"][0]["comment"] == "chưa đúng"


def test_the_log_sits_on_the_backend_of_the_stores(tmp_path: Path, redis_server: RedisServer) -> None:
    settings = BotSettings(redis_url=None)
    local = sqlite_stores(":memory:")
    log = open_question_log(settings, tmp_path, local.backend)
    assert isinstance(log, SQLiteQuestionLog) and log.path == str(tmp_path / "state" / "questions.sqlite3")
    log.close()
    local.close()
    hosts = [redis_stores(redis_server.url, prefix="p:") for _ in range(2)]  # two hosts, one Redis
    one, other = (
        open_question_log(settings, tmp_path / h, s.backend) for h, s in zip("ab", hosts, strict=True)
    )
    assert isinstance(one, RedisQuestionLog) and isinstance(other, RedisQuestionLog)
    assert one.salt == other.salt  # the hashes of an asker agree across hosts
    one.record(_record(1))
    assert [r.message_id for r in other.questions()] == ["m1"]
    assert hosts[0].backend.client.zcard("p:questions:at") == 1  # type: ignore[union-attr]
    assert open_question_log(BotSettings(analytics_enabled=False), tmp_path, hosts[0].backend) is None
    for s in hosts:
        s.close()


def test_sqlite_log_does_not_sync_the_disk_on_every_question(tmp_path: Path) -> None:
    """WAL with synchronous=NORMAL, like the conversation store: a commit costs no fsync (a power cut may
    lose the last questions, never the file), and a reopened log still has what was recorded."""
    log = SQLiteQuestionLog(tmp_path / "q.sqlite3")
    log.record(_record(1))
    assert log._db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert log._db.execute("PRAGMA synchronous").fetchone()[0] == 1  # NORMAL (FULL is 2)
    log.close()
    reopened = SQLiteQuestionLog(tmp_path / "q.sqlite3")
    assert [r.message_id for r in reopened.questions()] == ["m1"]
    reopened.close()
