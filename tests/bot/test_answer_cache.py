"""The answer cache: a question asked again is answered from it, as a new message of its own conversation;
a follow-up is cached with the context it took from its conversation; a new index version, another day or
other filters miss; Redis shares answers between replicas and its outage is only a miss."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.answer_cache import (
    MemoryAnswerCache,
    RedisAnswerCache,
    SQLiteAnswerCache,
    answer_key,
    forget_host_cache,
    host_cache_path,
)
from bot.models import ChatResponse
from bot.service import ChatService
from bot.settings import BotSettings
from bot.stores import sqlite_stores
from index.search import SearchFilters, SearchIndex
from tests.redis_server import RedisServer

QUESTION = "Trạm y tế cấp xã phải sắp xếp xong trước ngày nào?"


class CountingService(ChatService):
    """Counts the answers actually drafted (a cached answer drafts nothing)."""

    drafted = 0

    def _draft(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        self.drafted += 1
        return super()._draft(*args, **kwargs)


@pytest.fixture()
def service(kl_index: SearchIndex) -> Iterator[CountingService]:
    store = sqlite_stores(":memory:")
    yield CountingService(kl_index, store, BotSettings(llm_base_url=None, redis_url=None))
    store.close()


def test_a_question_asked_again_is_answered_from_the_cache(service: CountingService) -> None:
    first = service.answer(QUESTION)
    # typed with other spacing, in another conversation: the same normalised question
    again = service.answer("  Trạm y tế cấp xã   phải sắp xếp xong trước ngày nào ?")
    assert service.drafted == 1
    assert (again.answer, again.citations, again.answered, again.intent) == (
        first.answer, first.citations, first.answered, first.intent,
    )  # fmt: skip
    assert again.conversation_id != first.conversation_id and again.message_id != first.message_id
    # the cached answer is a turn of its conversation like any other: history and feedback know it
    turns = service.stores.conversations.history(again.conversation_id)
    assert [t.message_id for t in turns] == [again.message_id]
    service.feedback(again.conversation_id, again.message_id, "up", None)


def test_without_the_cache_every_question_is_drafted(kl_index: SearchIndex) -> None:
    service = CountingService(kl_index, sqlite_stores(":memory:"), BotSettings(answer_cache_size=0))
    assert service.cache is None
    service.answer(QUESTION)
    service.answer(QUESTION)
    assert service.drafted == 2


def test_a_follow_up_is_cached_with_the_context_it_took(service: CountingService) -> None:
    on_183 = service.answer("Kết luận 183 giao Bộ Nội vụ làm gì?")
    on_179 = service.answer("Kết luận 179 giao Bộ Nội vụ làm gì?")
    follow_183 = service.answer("Còn Bộ Tài chính thì sao?", on_183.conversation_id)
    follow_179 = service.answer("Còn Bộ Tài chính thì sao?", on_179.conversation_id)
    assert service.drafted == 4  # the same words, two questions: 183 never names Bộ Tài chính, 179 does
    assert not follow_183.answered and follow_179.answered
    again = service.answer("Kết luận 183 giao Bộ Nội vụ làm gì?")
    follow_again = service.answer("Còn Bộ Tài chính thì sao?", again.conversation_id)
    assert service.drafted == 4
    assert follow_again.answer == follow_183.answer


def test_a_new_index_version_misses(service: CountingService, monkeypatch: pytest.MonkeyPatch) -> None:
    service.answer(QUESTION)
    monkeypatch.setattr(service.index, "version", "another-build")
    service.answer(QUESTION)
    assert service.drafted == 2


@pytest.mark.parametrize(
    ("change", "differs"),
    [
        ({}, False),
        ({"version": "v2"}, True),
        ({"day": "2026-12-03"}, True),
        ({"filters": SearchFilters(ket_luan=["183-KL/TW"])}, True),
    ],
)
def test_the_key_names_version_day_and_filters(
    service: CountingService, change: dict[str, object], differs: bool
) -> None:
    question = service.extractive.analyze(QUESTION)
    base: dict[str, object] = {"version": "v1", "question": question, "filters": None, "day": "2026-12-02"}
    assert (answer_key(**base) != answer_key(**(base | change))) is differs  # type: ignore[arg-type]


def test_memory_cache_is_bounded() -> None:
    cache = MemoryAnswerCache(2)
    response = ChatResponse(conversation_id="c", message_id="m", answer="a", answered=False, citations=[],
                            mode="extractive", latency_ms=1.0)  # fmt: skip
    for key in ("k1", "k2", "k1", "k3"):
        cache.put(key, response)
    assert len(cache) == 2 and cache.get("k2") is None and cache.get("k1") is not None


def test_redis_shares_answers_between_replicas_and_an_outage_is_a_miss(
    redis_server: RedisServer, tmp_path: Path
) -> None:
    one = RedisAnswerCache(redis_server.url, size=10, ttl_seconds=60)
    other = RedisAnswerCache(redis_server.url, size=10, ttl_seconds=60)
    response = ChatResponse(conversation_id="c", message_id="m", answer="Trả lời [1].", answered=True,
                            citations=[], mode="extractive", latency_ms=1.0)  # fmt: skip
    one.put("k", response)
    assert other.get("k") == response
    redis_server.stop()
    assert other.get("missing") is None  # no error while Redis is down
    other.put("k2", response)  # kept locally
    assert other.get("k2") == response
    one.close()
    other.close()


class ReadCounter:
    """Counts the messages the service's reader reads."""

    def __init__(self, service: ChatService, monkeypatch: pytest.MonkeyPatch) -> None:
        self.read: list[str] = []
        analyze = service.extractive.analyze

        def counted(message: str, today: object = None) -> object:
            self.read.append(message)
            return analyze(message, today)  # type: ignore[arg-type]

        monkeypatch.setattr(service.extractive, "analyze", counted)


def test_a_question_asked_again_is_not_read_again(
    service: CountingService, monkeypatch: pytest.MonkeyPatch
) -> None:
    reads = ReadCounter(service, monkeypatch)
    first = service.answer(QUESTION)
    again = service.answer(QUESTION)
    follow = service.answer("Còn Bộ Tài chính thì sao?", again.conversation_id)
    service.answer("Còn Bộ Tài chính thì sao?", follow.conversation_id)
    # the history's questions are not read again either, when a follow-up resolves its context
    assert reads.read == [QUESTION, "Còn Bộ Tài chính thì sao?"]
    assert again.answer == first.answer


def test_a_reading_is_kept_for_its_day_only(
    service: CountingService, monkeypatch: pytest.MonkeyPatch
) -> None:
    reads = ReadCounter(service, monkeypatch)
    for day in (dt.date(2026, 12, 2), dt.date(2026, 12, 2), dt.date(2026, 12, 3)):
        service.answer("Những nhiệm vụ nào đến hạn trong tuần tới?", today=day)
    assert len(reads.read) == 2  # "tuần tới" is another week on another day


def test_without_the_cache_every_question_is_read(
    kl_index: SearchIndex, monkeypatch: pytest.MonkeyPatch
) -> None:
    service = ChatService(kl_index, sqlite_stores(":memory:"), BotSettings(answer_cache_size=0))
    reads = ReadCounter(service, monkeypatch)
    service.answer(QUESTION)
    service.answer(QUESTION)
    assert reads.read == [QUESTION, QUESTION]


def test_a_cached_answer_still_starts_a_stored_conversation(service: CountingService) -> None:
    """A new conversation is written with its first turn (one write, not two): a follow-up that names it,
    in this worker or another, finds it, its history and its message."""
    service.answer(QUESTION)
    hit = service.answer(QUESTION)
    assert service.drafted == 1
    assert service.stores.conversations.exists(hit.conversation_id)
    assert service.stores.conversations.has_message(hit.conversation_id, hit.message_id)
    follow = service.answer("Còn Bộ Tài chính thì sao?", hit.conversation_id)
    assert follow.conversation_id == hit.conversation_id
    assert [t.message_id for t in service.stores.conversations.history(hit.conversation_id)] == [
        hit.message_id,
        follow.message_id,
    ]


def _response(answer: str = "Trả lời [1].") -> ChatResponse:
    return ChatResponse(conversation_id="c", message_id="m", answer=answer, answered=True, citations=[],
                        mode="extractive", latency_ms=1.0)  # fmt: skip


def test_sqlite_shares_answers_between_the_workers_of_a_host(tmp_path: Path) -> None:
    one = SQLiteAnswerCache(tmp_path / "answers.sqlite3", size=10, ttl_seconds=60)
    other = SQLiteAnswerCache(tmp_path / "answers.sqlite3", size=10, ttl_seconds=60)
    one.put("k", _response())
    assert other.get("k") == _response() and other.get("missing") is None
    one.close()
    other.close()


def test_sqlite_answers_expire_and_stay_bounded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cache = SQLiteAnswerCache(tmp_path / "answers.sqlite3", size=3, ttl_seconds=60)
    monkeypatch.setattr(SQLiteAnswerCache, "_PRUNE_EVERY", 1)
    for n in range(5):
        cache.put(f"k{n}", _response(f"{n} [1]."))
    assert len(cache) == 3  # the three most recent
    reader = SQLiteAnswerCache(tmp_path / "answers.sqlite3", size=3, ttl_seconds=60)
    assert reader.get("k0") is None and reader.get("k4") == _response("4 [1].")
    later = time.time() + 61
    monkeypatch.setattr(time, "time", lambda: later)
    fresh = SQLiteAnswerCache(tmp_path / "answers.sqlite3", size=3, ttl_seconds=60)
    assert fresh.get("k3") is None  # expired, though still in the file until the next prune


def test_a_sqlite_cache_that_fails_is_a_miss(tmp_path: Path) -> None:
    (tmp_path / "answers.sqlite3").write_bytes(b"not a database" * 100)
    cache = SQLiteAnswerCache(tmp_path / "answers.sqlite3", size=3, ttl_seconds=60)
    cache.put("k", _response())  # a file that was no database is started afresh: only a cache
    assert SQLiteAnswerCache(tmp_path / "answers.sqlite3", size=3, ttl_seconds=60).get("k") == _response()
    unreadable = SQLiteAnswerCache(tmp_path / "answers.sqlite3" / "a.sqlite3", size=3, ttl_seconds=60)
    unreadable.put("k2", _response())  # kept by this process at least
    assert unreadable.get("k2") == _response() and unreadable.get("k") is None and len(unreadable) == 0


def test_two_workers_of_one_host_draft_a_question_once(kl_index: SearchIndex, tmp_path: Path) -> None:
    """Two services (as two `ketluan serve` workers) with the host's shared cache: the second worker's first
    ask of a question is a hit, an answer like the first one, stored as a turn of its own conversation."""
    settings = BotSettings(llm_base_url=None, redis_url=None)
    store = sqlite_stores(tmp_path / "state.sqlite3")
    workers = [
        CountingService(
            kl_index,
            store,
            settings,
            cache=SQLiteAnswerCache(tmp_path / "answers.sqlite3", size=10, ttl_seconds=60),
        )
        for _ in range(2)
    ]
    first = workers[0].answer(QUESTION)
    second = workers[1].answer(QUESTION)
    assert (workers[0].drafted, workers[1].drafted) == (1, 0)
    assert (second.answer, second.citations, second.answered) == (
        first.answer,
        first.citations,
        first.answered,
    )
    assert store.conversations.has_message(second.conversation_id, second.message_id)


def test_an_llm_service_never_gives_the_extractive_answers_of_a_shared_cache(
    kl_index: SearchIndex, tmp_path: Path
) -> None:
    """The same file (or Redis) behind a service without an LLM, then one with: the cached extractive answer
    is not the LLM service's answer; nor is one LLM model's answer another's."""
    store = sqlite_stores(":memory:")
    shared = SQLiteAnswerCache(tmp_path / "answers.sqlite3", size=10, ttl_seconds=60)
    extractive = CountingService(
        kl_index, store, BotSettings(llm_base_url=None, redis_url=None), cache=shared
    )
    extractive.answer(QUESTION)
    extractive.answer(QUESTION)
    assert extractive.drafted == 1
    drafted = []
    for model in ("model-a", "model-b", "model-a"):
        settings = BotSettings(llm_base_url="http://127.0.0.1:9/v1", llm_model=model, redis_url=None)
        with_llm = CountingService(kl_index, store, settings, llm=object(), cache=shared)  # type: ignore[arg-type]
        with_llm.answer(QUESTION)  # the sync path drafts extractively; what matters here is the key
        drafted.append(with_llm.drafted)
    assert drafted == [1, 1, 0]


def test_a_new_server_starts_the_hosts_shared_answers_afresh(tmp_path: Path) -> None:
    """`ketluan serve` forgets the shared answers of the server before it (maybe of other code)."""
    before = SQLiteAnswerCache(host_cache_path(tmp_path), size=10, ttl_seconds=60)
    before.put("k", _response())
    before.close()
    forget_host_cache(tmp_path)
    forget_host_cache(tmp_path)  # nothing left to remove: no error
    assert SQLiteAnswerCache(host_cache_path(tmp_path), size=10, ttl_seconds=60).get("k") is None
