"""What the Telegram and Zalo bots share: chat → conversation, prompts, numbered sources, splitting."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import inspect
import logging
import re
from collections.abc import Callable, Sequence
from typing import Any, Protocol

import prompts
from bot.models import ChatResponse, Citation

log = logging.getLogger(__name__)

# How long a delivered update / event id is remembered: both platforms give up redelivering well before.
SEEN_TTL_SECONDS = 24 * 3600


class AnswerService(Protocol):
    """The part of bot.service.ChatService the bots use."""

    async def answer_async(
        self, message: str, conversation_id: str | None = None, filters: Any = None
    ) -> ChatResponse: ...

    def answer(
        self, message: str, conversation_id: str | None = None, filters: Any = None
    ) -> ChatResponse: ...

    def reset(self, conversation_id: str) -> Any: ...


class ChannelStore(Protocol):
    """The part of bot.store.ConversationStore the bots use (SQLite or Redis, shared with the HTTP API)."""

    def mark_seen(self, namespace: str, key: str, ttl_seconds: int) -> bool: ...

    def create(self, conversation_id: str) -> None: ...


async def store_call(fn: Callable[..., Any], *args: Any) -> Any:
    """Await an async method, or run a sync one off the event loop (Redis and SQLite calls block)."""
    if inspect.iscoroutinefunction(fn):
        return await fn(*args)
    result = await asyncio.to_thread(fn, *args)
    if inspect.isawaitable(result):
        return await result
    return result


class Conversations:
    """One conversation per chat (Telegram) or user (Zalo), in the store the HTTP API uses.

    The conversation id is derived from the chat with a keyed hash, so every worker finds the same one
    without a lookup table, and nobody can guess it to read or join someone's conversation over the HTTP
    API. `/new` clears its history (service.reset), which is what "forget the conversation" means.
    """

    def __init__(
        self,
        service: Callable[[], AnswerService],
        store: ChannelStore,
        channel: str,
        key: str,
        *,
        prefer_async: bool = True,
    ) -> None:
        self._service = service  # a getter: the service changes when the index is reloaded
        self.store = store
        self.channel = channel
        self._key = key.encode()
        # Extractive answers are CPU work: run them in a thread; LLM answers await the network instead.
        self.prefer_async = prefer_async

    def conversation_id(self, chat_key: str) -> str:
        digest = hmac.new(self._key, f"{self.channel}:{chat_key}".encode(), hashlib.sha256).hexdigest()
        return f"c_{self.channel}_{digest[:32]}"

    async def first_delivery(self, delivery_id: str) -> bool:
        """True the first time this update / event id is seen, across workers when the store is Redis."""
        return bool(await store_call(self.store.mark_seen, self.channel, delivery_id, SEEN_TTL_SECONDS))

    async def ask(self, chat_key: str, text: str) -> ChatResponse:
        conversation_id = self.conversation_id(chat_key)
        service = self._service()
        await store_call(self.store.create, conversation_id)  # no-op when it exists
        if self.prefer_async:
            return await service.answer_async(text, conversation_id=conversation_id)
        return await asyncio.to_thread(service.answer, text, conversation_id)

    async def reset(self, chat_key: str) -> None:
        conversation_id = self.conversation_id(chat_key)
        await store_call(self._service().reset, conversation_id)


def prompt(name: str) -> str:
    """A user-facing Vietnamese text of the bots: prompts/bot_{name}.txt."""
    return prompts.load(f"bot_{name}").strip()


def citation_url(citation: Citation, public_url: str) -> str:
    if citation.url.startswith(("http://", "https://")):
        return citation.url
    return public_url.rstrip("/") + "/" + citation.url.lstrip("/")


def source_links(citations: Sequence[Citation], public_url: str) -> list[tuple[int, str, str]]:
    """(n, label, absolute url) for each citation, in the order of their [n] markers."""
    return [(c.n, c.label, citation_url(c, public_url)) for c in sorted(citations, key=lambda c: c.n)]


# From the coarsest boundary to the finest: paragraphs, lines, sentences, words.
_BOUNDARIES: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"\n[ \t]*\n\s*"), "\n\n"),
    (re.compile(r"\n"), "\n"),
    (re.compile(r"(?<=[.!?;:…])\s+"), " "),
    (re.compile(r"\s+"), " "),
)


def split_text(text: str, limit: int, measure: Callable[[str], int] = len) -> list[str]:
    """Cut `text` into pieces with measure(piece) <= limit, at the coarsest boundary that makes them fit.

    Whole paragraphs are kept together when they fit; only a paragraph longer than the limit is cut, at
    lines, then sentences, then words, and a single word longer than the limit is cut where it must be.
    """
    text = text.strip()
    if not text:
        return []
    return _split(text, limit, measure, 0)


def _split(text: str, limit: int, measure: Callable[[str], int], level: int) -> list[str]:
    if measure(text) <= limit:
        return [text]
    if level >= len(_BOUNDARIES):
        return _hard_cut(text, limit, measure)
    pattern, joiner = _BOUNDARIES[level]
    parts = [p.strip() for p in pattern.split(text) if p.strip()]
    pieces: list[str] = []
    current = ""
    for part in parts:
        candidate = f"{current}{joiner}{part}" if current else part
        if measure(candidate) <= limit:
            current = candidate
            continue
        if current:
            pieces.append(current)
            current = ""
        if measure(part) <= limit:
            current = part
        else:
            pieces.extend(_split(part, limit, measure, level + 1))
    if current:
        pieces.append(current)
    return pieces


def _hard_cut(text: str, limit: int, measure: Callable[[str], int]) -> list[str]:
    pieces = []
    while text:
        lo, hi = 1, len(text)
        while lo < hi:  # the longest prefix that fits
            mid = (lo + hi + 1) // 2
            if measure(text[:mid]) <= limit:
                lo = mid
            else:
                hi = mid - 1
        pieces.append(text[:lo])
        text = text[lo:]
    return pieces


def pack(
    blocks: Sequence[str], limit: int, measure: Callable[[str], int] = len, sep: str = "\n\n"
) -> list[str]:
    """Join consecutive blocks (each already fitting) into as few messages as fit the limit."""
    messages: list[str] = []
    current = ""
    for block in blocks:
        candidate = f"{current}{sep}{block}" if current else block
        if measure(candidate) <= limit:
            current = candidate
        else:
            if current:
                messages.append(current)
            current = block
    if current:
        messages.append(current)
    return messages


def backoff_delay(attempt: int, base: float, cap: float) -> float:
    """Exponential backoff: base, 2·base, 4·base … capped."""
    return float(min(cap, base * (2**attempt)))


class TaskSet:
    """Background work the bots keep a reference to, so it is neither garbage-collected nor lost at exit."""

    def __init__(self) -> None:
        self._tasks: set[asyncio.Task[Any]] = set()

    def __len__(self) -> int:
        return len(self._tasks)

    def spawn(self, coro: Any, name: str | None = None) -> asyncio.Task[Any]:
        task = asyncio.get_running_loop().create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._done)
        return task

    def _done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("background task %s failed", task.get_name(), exc_info=task.exception())

    async def close(self, timeout: float = 10.0) -> None:
        """Let running work finish for up to `timeout` seconds, then cancel what is left."""
        if not self._tasks:
            return
        _, pending = await asyncio.wait(set(self._tasks), timeout=timeout)
        for task in pending:
            task.cancel()
        if pending:
            log.warning("cancelled %d unfinished bot tasks at shutdown", len(pending))
            await asyncio.gather(*pending, return_exceptions=True)
