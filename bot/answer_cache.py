"""A question as the service read it (after follow-up resolution) + filters, day and index version → the
answer given before, so a question asked again costs a lookup: bounded in memory, shared through Redis
when it is configured (a Redis outage is a miss, never an error)."""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import asdict, replace
from typing import Any, Generic, Protocol, TypeVar

from bot.models import ChatResponse, Turn
from bot.question import Question

log = logging.getLogger(__name__)
K = TypeVar("K")
V = TypeVar("V")


class AnswerCache(Protocol):
    def get(self, key: str) -> ChatResponse | None: ...

    def put(self, key: str, response: ChatResponse) -> None: ...


def answer_key(
    version: str,
    question: Question,
    filters: Any,
    day: str,
    history: Sequence[Turn] = (),
) -> str:
    """The resolved question already holds what a follow-up took from the conversation (Kết luận, agency,
    topic), so equal keys mean equal extractive answers; the typed form is left out (its normalised form is
    in). `history` is for answers that read the whole conversation (the LLM's)."""
    parts = [
        version,
        day,
        repr(sorted(asdict(replace(question, original="")).items())),
        filters.model_dump_json() if filters is not None else "",
        *(f"{t.question}\x1f{t.answer}" for t in history),
    ]
    return hashlib.sha256("\x1e".join(parts).encode("utf-8")).hexdigest()


class Recent(Generic[K, V]):
    """The `size` most recently used values of this process, shared by its threads."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._items: OrderedDict[K, V] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: K) -> V | None:
        with self._lock:
            found = self._items.get(key)
            if found is not None:
                self._items.move_to_end(key)
            return found

    def put(self, key: K, value: V) -> None:
        with self._lock:
            self._items[key] = value
            self._items.move_to_end(key)
            while len(self._items) > self.size:
                self._items.popitem(last=False)

    def __len__(self) -> int:
        return len(self._items)


class MemoryAnswerCache(Recent[str, ChatResponse]):
    """The `size` most recently used answers of this process."""


class RedisAnswerCache:
    """Answers shared by every replica, each kept `ttl_seconds` (Redis evicts beyond its memory limit), with
    this process's most recent ones in front. While Redis fails, it is not asked for `retry_seconds`."""

    def __init__(
        self,
        url: str,
        *,
        size: int,
        ttl_seconds: int,
        prefix: str = "ketluan:answer:",
        socket_timeout: float = 0.2,
        retry_seconds: float = 5.0,
    ) -> None:
        import redis

        self._redis = redis.Redis.from_url(
            url, socket_timeout=socket_timeout, socket_connect_timeout=socket_timeout
        )
        self._errors: tuple[type[BaseException], ...] = (redis.RedisError, OSError)
        self.local = MemoryAnswerCache(size)
        self.ttl_seconds = max(int(ttl_seconds), 1)
        self.prefix = prefix
        self.retry_seconds = retry_seconds
        self._down_until = 0.0

    def get(self, key: str) -> ChatResponse | None:
        found = self.local.get(key)
        if found is not None or time.monotonic() < self._down_until:
            return found
        try:
            raw = self._redis.get(self.prefix + key)
        except self._errors as exc:
            self._down("get", exc)
            return None
        if raw is None:
            return None
        try:
            found = ChatResponse.model_validate_json(raw)
        except ValueError:
            return None
        self.local.put(key, found)
        return found

    def put(self, key: str, response: ChatResponse) -> None:
        self.local.put(key, response)
        if time.monotonic() < self._down_until:
            return
        try:
            self._redis.set(self.prefix + key, response.model_dump_json(), ex=self.ttl_seconds)
        except self._errors as exc:
            self._down("put", exc)

    def _down(self, what: str, exc: BaseException) -> None:
        if time.monotonic() >= self._down_until:
            log.warning("answer cache: redis %s failed (%s); local cache only for %.0f s", what,
                        exc.__class__.__name__, self.retry_seconds)  # fmt: skip
        self._down_until = time.monotonic() + self.retry_seconds

    def close(self) -> None:
        self._redis.close()
