"""What the Telegram and Zalo bots share: chat → conversation, commands, prompts, sources, task lists, splitting."""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import hmac
import inspect
import ipaddress
import logging
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import urlsplit

import prompts
from bot.analytics import set_asker
from bot.models import ChatResponse, Citation
from bot.stores.dedupe import DedupeStore
from index.errors import BadQuery, IndexNotReady
from index.language import agencies
from index.models import Directive
from index.tasks import TaskBook, TaskQuery
from index.textnorm import fold, normalize

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


class _Creates(Protocol):
    def create(self, conversation_id: str) -> None: ...


class ChannelStores(Protocol):
    """The stores the bots use (bot/stores: SQLite or Redis, shared with the HTTP API)."""

    @property
    def seen(self) -> DedupeStore: ...

    @property
    def conversations(self) -> _Creates: ...


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
        stores: ChannelStores,
        channel: str,
        key: str,
        *,
        prefer_async: bool = True,
    ) -> None:
        self._service = service  # a getter: the service changes when the index is reloaded
        self.stores = stores
        self.channel = channel
        self._key = key.encode()
        # Extractive answers are CPU work: run them in a thread; LLM answers await the network instead.
        self.prefer_async = prefer_async

    def conversation_id(self, chat_key: str) -> str:
        digest = hmac.new(self._key, f"{self.channel}:{chat_key}".encode(), hashlib.sha256).hexdigest()
        return f"c_{self.channel}_{digest[:32]}"

    async def first_delivery(self, delivery_id: str) -> bool:
        """True the first time this update / event id is seen, across workers when the store is Redis."""
        return bool(await store_call(self.stores.seen.mark_seen, self.channel, delivery_id, SEEN_TTL_SECONDS))

    async def ask(self, chat_key: str, text: str) -> ChatResponse:
        check_encodable(text)
        conversation_id = self.conversation_id(chat_key)
        service = self._service()
        await store_call(self.stores.conversations.create, conversation_id)  # no-op when it exists
        questions = getattr(service, "questions", None)
        set_asker(self.channel, chat_key, questions.salt if questions is not None else "")
        if self.prefer_async:
            return await service.answer_async(text, conversation_id=conversation_id)
        return await asyncio.to_thread(service.answer, text, conversation_id)

    async def reset(self, chat_key: str) -> None:
        conversation_id = self.conversation_id(chat_key)
        await store_call(self._service().reset, conversation_id)

    def tasks(self) -> TaskBook:
        """The task book of the index being served (IndexNotReady while none is)."""
        book = getattr(getattr(self._service(), "index", None), "tasks", None)
        if book is None:
            raise IndexNotReady("the index being served has no task book")
        return book  # type: ignore[no-any-return]


def check_encodable(text: str) -> None:
    """BadQuery for text that is no Unicode at all (a lone surrogate from a JSON "\\ud800" escape)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise BadQuery("the question holds characters that are not valid Unicode") from exc


# --- commands both bots understand -----------------------------------------------------------------
# Command names as typed after "/" (Telegram allows a-z, 0-9 and _), and their spoken forms without the
# slash, folded (no accents, lower case): "nhiệm vụ Bộ Nội vụ" works as well as "/nhiemvu Bộ Nội vụ".
COMMAND_ALIASES: dict[str, str] = {
    "start": "start",
    "help": "help",
    "huongdan": "help",
    "new": "new",
    "moi": "new",
    "hoi": "ask",
    "nhiemvu": "tasks",
    "theodoi": "follow",
    "botheodoi": "unfollow",
    "huytheodoi": "unfollow",
}
_SPOKEN: tuple[tuple[str, str], ...] = (
    ("bo theo doi", "unfollow"),
    ("huy theo doi", "unfollow"),
    ("theo doi", "follow"),
    ("nhiem vu", "tasks"),
)


@dataclass(frozen=True)
class Command:
    name: str  # start, help, new, ask, tasks, follow, unfollow
    argument: str = ""


def slash_command(text: str) -> tuple[str, str | None, str] | None:
    """("nhiemvu", "bot" or None, "Bộ Nội vụ") for "/nhiemvu@bot Bộ Nội vụ"; None when it is no command."""
    match = re.match(r"^/([A-Za-z0-9_]+)(?:@([A-Za-z0-9_]+))?(?:\s+(.*))?$", text.strip(), re.DOTALL)
    if not match:
        return None
    return match.group(1).lower(), match.group(2), (match.group(3) or "").strip()


def spoken_command(text: str) -> Command | None:
    """A task command written as words ("nhiem vu bo noi vu"): only when the rest names a known agency,
    so a question that merely starts with "nhiệm vụ …" is still answered as a question."""
    words = text.strip()
    folded = fold(normalize(words)).lower()
    for phrase, name in _SPOKEN:
        if folded.startswith(phrase + " "):
            rest = words[len(phrase) :].strip(" :,-")
            if agencies.resolve(rest) is not None:
                return Command(name, rest)
    return None


def start_question(payload: str) -> str | None:
    """The question a t.me/<bot>?start=<payload> link asks: "183" or "kl183" → about Kết luận 183-KL/TW;
    anything else is read as base64url of the question (Telegram allows only A-Z a-z 0-9 _ - there)."""
    payload = payload.strip()
    number = re.fullmatch(r"(?:kl[_-]?)?(\d{1,4})", payload, re.IGNORECASE)
    if number:
        return prompts.render("bot_start_ket_luan", number=int(number.group(1)))
    try:
        text = base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)).decode("utf-8").strip()
    except (binascii.Error, ValueError):
        return None
    return text if text and len(text) <= 2000 and any(ch.isalpha() for ch in text) else None


# --- tasks of an agency, and following them -----------------------------------------------------------
def deadline_words(directive: Directive) -> str:
    if directive.deadline is not None:
        return prompts.render("bot_task_deadline", date=directive.deadline.strftime("%d/%m/%Y"))
    if directive.recurring:
        return prompts.render(
            "bot_task_deadline_recurring", text=directive.deadline_text or directive.recurring
        )
    return prompt("task_no_deadline")


def task_blocks(agency: str, directives: Sequence[Directive], public_url: str) -> list[str]:
    """Plain-text blocks: a heading, then one block per task (action, deadline, clause link)."""
    if not directives:
        return [prompts.render("bot_tasks_none", agency=agency)]
    blocks = [prompts.render("bot_tasks_heading", agency=agency, count=len(directives))]
    for n, d in enumerate(directives, 1):
        url = absolute_url(d.url, public_url)
        blocks.append(
            prompts.render(
                "bot_task_item",
                n=n,
                action=d.action.strip(),
                deadline=deadline_words(d),
                label=d.label,
                url=url,
            )
        )
    return blocks


def unknown_agency_text(name: str, suggestions: Sequence[str]) -> str:
    if suggestions:
        return prompts.render("bot_unknown_agency", typed=name, suggestions=", ".join(suggestions))
    return prompts.render("bot_unknown_agency_no_suggestion", typed=name)


def agency_tasks(book: TaskBook, agency: str) -> tuple[str, list[Directive]]:
    """(canonical name, its tasks by deadline); UnknownAgency (with `.suggestions`) for an unknown name."""
    name = book.canonical_agency(agency)
    return name, book.query(TaskQuery(agency=name))


def prompt(name: str) -> str:
    """A user-facing Vietnamese text of the bots: prompts/bot_{name}.txt."""
    return prompts.load(f"bot_{name}").strip()


def absolute_url(url: str, public_url: str) -> str:
    if url.startswith(("http://", "https://")):
        return url
    return public_url.rstrip("/") + "/" + url.lstrip("/")


def citation_url(citation: Citation, public_url: str) -> str:
    return absolute_url(citation.url, public_url)


def reachable_from_a_phone(url: str) -> bool:
    """False for loopback / private addresses: the platforms refuse them as buttons, and phones cannot open them."""
    host = (urlsplit(url).hostname or "").lower()
    if not host or host == "localhost" or host.endswith(".localhost"):
        return False
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return True
    return not (address.is_loopback or address.is_private or address.is_link_local or address.is_unspecified)


def suggestions_of(response: ChatResponse) -> list[str]:
    """Suggested questions of an answer (ChatResponse.suggestions), when it has them."""
    return [s for s in getattr(response, "suggestions", None) or [] if isinstance(s, str) and s.strip()]


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
