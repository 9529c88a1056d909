"""Request coalescing: the same question asked by several people at once is drafted once in a process, the
others wait for that answer; each still gets a turn of its own conversation; a first drafting that fails
does not fail the others (they draft their own), and nobody waits longer than the bound."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from bot.answer_cache import Flights, _Flight
from bot.models import ChatResponse
from bot.service import ChatService
from bot.settings import BotSettings
from bot.stores import sqlite_stores
from index.search import SearchIndex

QUESTION = "Trạm y tế cấp xã phải sắp xếp xong trước ngày nào?"
ASKERS = 4


class CountingFlights(Flights):
    """Counts the askers that wait for a flight."""

    def __init__(self, wait_seconds: float = 30.0) -> None:
        super().__init__(wait_seconds)
        self.waiting = 0

    def wait(self, flight: _Flight) -> None:
        self.waiting += 1
        super().wait(flight)

    async def wait_async(self, flight: _Flight) -> None:
        self.waiting += 1
        await super().wait_async(flight)


class GatedService(ChatService):
    """Counts the answers drafted; the first drafting holds until `release` is set, then fails if told."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.drafted = 0
        self.release = threading.Event()
        self.fail_first = False
        self._count = threading.Lock()

    def _draft(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        with self._count:
            self.drafted += 1
            first = self.drafted == 1
        if first:
            assert self.release.wait(30)
            if self.fail_first:
                raise RuntimeError("the first drafting failed")
        return super()._draft(*args, **kwargs)


@pytest.fixture()
def service(kl_index: SearchIndex) -> Iterator[GatedService]:
    store = sqlite_stores(":memory:")
    service = GatedService(kl_index, store, BotSettings(llm_base_url=None, redis_url=None))
    service.flights = CountingFlights()
    yield service
    store.close()


def _until(condition: Any, what: str, seconds: float = 30.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, what
        time.sleep(0.002)


def _ask_together(service: GatedService) -> list[ChatResponse | BaseException]:
    """ASKERS threads ask QUESTION; the first drafting is released once all the others wait for it."""
    flights = service.flights
    assert isinstance(flights, CountingFlights)

    def ask() -> ChatResponse | BaseException:
        try:
            return service.answer(QUESTION)
        except Exception as exc:
            return exc

    with ThreadPoolExecutor(ASKERS) as pool:
        futures = [pool.submit(ask) for _ in range(ASKERS)]
        _until(lambda: flights.waiting == ASKERS - 1, "the other askers never waited for the first")
        service.release.set()
        return [f.result(timeout=60) for f in futures]


def test_concurrent_identical_questions_are_drafted_once(service: GatedService) -> None:
    results = _ask_together(service)
    answers = [r for r in results if isinstance(r, ChatResponse)]
    assert len(answers) == ASKERS and service.drafted == 1
    assert len({(a.answer, a.answered, tuple(c.passage_id for c in a.citations)) for a in answers}) == 1
    # each asker has a conversation of its own holding its own turn, counted as a message of its own
    assert len({a.conversation_id for a in answers}) == ASKERS
    assert len({a.message_id for a in answers}) == ASKERS
    for a in answers:
        assert [t.message_id for t in service.stores.conversations.history(a.conversation_id)] == [
            a.message_id
        ]
    assert len(service.flights or ()) == 0


def test_a_failing_first_drafting_does_not_fail_the_waiters(service: GatedService) -> None:
    service.fail_first = True
    results = _ask_together(service)
    failed = [r for r in results if isinstance(r, BaseException)]
    answers = [r for r in results if isinstance(r, ChatResponse)]
    assert [str(e) for e in failed] == ["the first drafting failed"]
    assert len(answers) == ASKERS - 1 and all(a.answered for a in answers)
    # the failed one, then the waiters each their own (one that looks up after another put finds it)
    drafted = service.drafted
    assert 2 <= drafted <= ASKERS
    assert len({a.conversation_id for a in answers}) == ASKERS - 1
    assert len(service.flights or ()) == 0
    # and the next asker is answered from the cache one of them filled
    service.answer(QUESTION)
    assert service.drafted == drafted


def test_a_waiter_waits_no_longer_than_the_bound(service: GatedService) -> None:
    """A first asker that never lands (stuck): the next one drafts its own answer after the bound."""
    service.release.set()
    service.flights = Flights(wait_seconds=0.05)
    read = service._read(QUESTION, None, None, None)
    assert read.cache_key is not None and read.hit is None
    assert service.flights.lead(read.cache_key) is None  # held, as a stuck first asker would
    started = time.perf_counter()
    answer = service.answer(QUESTION)
    assert answer.answered and service.drafted == 1
    assert time.perf_counter() - started >= 0.05


def test_without_the_cache_nothing_is_coalesced(kl_index: SearchIndex) -> None:
    service = ChatService(kl_index, sqlite_stores(":memory:"), BotSettings(answer_cache_size=0))
    assert service.cache is None and service.flights is None


class _FakeLLM:
    """Answers with the first source cited, after `release`; counts its calls."""

    def __init__(self) -> None:
        self.calls = 0
        self.release = asyncio.Event()
        self.fail = False

    async def complete(self, question: str, sources: list[Any], history: Any) -> str:
        self.calls += 1
        await self.release.wait()
        if self.fail and self.calls == 1:
            raise ConnectionError("the LLM endpoint went away")
        return f"{sources[0].text} [1]"


def _llm_service(kl_index: SearchIndex) -> tuple[ChatService, _FakeLLM, CountingFlights]:
    llm = _FakeLLM()
    settings = BotSettings(llm_base_url="http://127.0.0.1:9/v1", llm_timeout=30, redis_url=None)
    service = ChatService(kl_index, sqlite_stores(":memory:"), settings, llm=llm)  # type: ignore[arg-type]
    flights = CountingFlights()
    service.flights = flights
    return service, llm, flights


async def _ask_async_together(service: ChatService, llm: _FakeLLM, flights: CountingFlights) -> list[Any]:
    tasks = [asyncio.create_task(service.answer_async(QUESTION)) for _ in range(ASKERS)]
    deadline = time.monotonic() + 30
    while not (flights.waiting == ASKERS - 1 and llm.calls >= 1):
        assert time.monotonic() < deadline, "the other askers never waited for the first"
        await asyncio.sleep(0.002)
    llm.release.set()
    return await asyncio.gather(*tasks, return_exceptions=True)


def test_concurrent_identical_questions_ask_the_llm_once(kl_index: SearchIndex) -> None:
    service, llm, flights = _llm_service(kl_index)
    answers = asyncio.run(_ask_async_together(service, llm, flights))
    assert all(isinstance(a, ChatResponse) for a in answers)
    assert llm.calls == 1
    assert len({a.conversation_id for a in answers}) == ASKERS
    assert {a.mode for a in answers} == {"llm"}


def test_a_failed_llm_answer_leaves_the_waiters_to_ask_themselves(kl_index: SearchIndex) -> None:
    """The first asker's LLM call fails: it gets the extractive stand-in (not cached), the waiters are
    released and ask the LLM each for itself."""
    service, llm, flights = _llm_service(kl_index)
    llm.fail = True
    answers = asyncio.run(_ask_async_together(service, llm, flights))
    assert all(isinstance(a, ChatResponse) for a in answers)
    assert sorted(a.mode for a in answers) == ["extractive"] + ["llm"] * (ASKERS - 1)
    assert 2 <= llm.calls <= ASKERS  # a waiter that looks up after another's answer was cached finds it
    assert len(flights) == 0
