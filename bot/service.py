"""A chat message (+ conversation id, filters) → a ChatResponse with checked [n] citations; history kept.

Extractive answers always work offline; with an LLM configured, `answer_async` and `stream` ask it first
and fall back to the extractive answer on timeout, error, or an answer with no valid citation.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import secrets
import threading
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from bot.analytics import QuestionLog, QuestionRecord, current_asker
from bot.answer_cache import AnswerCache, Flights, MemoryAnswerCache, Recent, answer_key
from bot.citations import CitedAnswerBuilder, gate, renumber
from bot.extractive import Draft, ExtractiveAnswerer
from bot.followup import resolve
from bot.models import ChatResponse, Citation, Turn
from bot.question import Question
from bot.settings import BotSettings
from bot.stores import Stores
from index.errors import BadQuery, NotFound
from index.search import SearchFilters, SearchIndex, SearchQuery
from index.tasks import today as vn_today
from index.textnorm import normalize

if TYPE_CHECKING:
    from bot.llm import LLMAnswerer

log = logging.getLogger(__name__)

MAX_MESSAGE_CHARS = 2000
# a question the extractive gate refused goes to the LLM when the answerability model still gives it this
# much: the passages are about the question; below it the question is out of scope
LLM_MIN_CONFIDENCE = 0.2
# Metadata answers come straight from Document fields, and task lists from the extracted directives: an LLM
# adds nothing but risk there. Every other in-scope question may go to the LLM, even one the extractive
# path refused (spoken phrasing, summaries), as long as retrieval found passages for it.
_EXTRACTIVE_ONLY = frozenset(
    {"greeting", "signer", "date", "report", "newest", "oldest", "documents", "window"}
)


@dataclass(frozen=True)
class StreamEvent:
    event: Literal["token", "citations", "done"]
    data: Any


@dataclass
class _Read:
    """A message read in its conversation, before any answer is drafted; `hit` is the cached answer."""

    conversation_id: str
    message: str
    question: Question
    history: list[Turn]
    started: float
    cache_key: str | None
    hit: ChatResponse | None


@dataclass
class _Prepared:
    conversation_id: str
    message: str
    question: Question
    history: list[Turn]
    draft: Draft
    started: float
    cache_key: str | None = None


def validate_message(message: object) -> str:
    if not isinstance(message, str):
        raise BadQuery("message must be a string")
    if not message.strip():
        raise BadQuery("message is empty or blank")
    if len(message) > MAX_MESSAGE_CHARS:
        raise BadQuery(f"message is longer than {MAX_MESSAGE_CHARS} characters ({len(message)})")
    text = normalize(message)
    if not any(ch.isalnum() for ch in text):
        raise BadQuery("message has no letters or digits")
    return text


class ChatService:
    def __init__(
        self,
        index: SearchIndex,
        stores: Stores,
        settings: BotSettings,
        llm: LLMAnswerer | None = None,
        cache: AnswerCache | None = None,
        questions: QuestionLog | None = None,
    ) -> None:
        """`cache`: answers to questions asked again (default: this service's own memory cache of
        `settings.answer_cache_size` answers, none when that is 0). Readings of messages seen before are
        kept as many (none when that is 0): a question asked again is looked up without being read again."""
        self.index = index
        self.stores = stores  # conversations and feedback are kept there
        self.settings = settings
        self.llm = llm
        if cache is None and settings.answer_cache_size > 0:
            cache = MemoryAnswerCache(settings.answer_cache_size)
        self.cache = cache
        # a question asked by several people at once is drafted once in this process, the others wait for it
        self.flights = Flights() if cache is not None else None
        self._answerer = "extractive" if llm is None else f"llm {settings.llm_base_url} {settings.llm_model}"
        self._readings: Recent[tuple[str, dt.date], Question] | None = (
            Recent(settings.answer_cache_size) if settings.answer_cache_size > 0 else None
        )
        self.questions = questions  # the operator's question log (bot/analytics.py); None = not recorded
        self.extractive = ExtractiveAnswerer(index)
        self._sources: dict[str, str] = {}
        self._sources_lock = threading.Lock()

    def search_query(self, text: str, filters: SearchFilters | None = None) -> SearchQuery:
        """A search box query read as the chat reads questions ("Kết luận 183 …" filters on 183-KL/TW)."""
        return self.extractive.reader.search_query(text, filters)

    # --- conversations -------------------------------------------------------------------------------
    def new_conversation(self) -> str:
        conversation_id = secrets.token_urlsafe(18)
        self.stores.conversations.create(conversation_id)
        return conversation_id

    def reset(self, conversation_id: str) -> None:
        self.stores.conversations.clear(conversation_id)

    def feedback(
        self, conversation_id: str, message_id: str, rating: Literal["up", "down"], comment: str | None
    ) -> None:
        if rating not in ("up", "down"):
            raise BadQuery("rating must be 'up' or 'down'")
        if comment is not None and len(comment) > MAX_MESSAGE_CHARS:
            raise BadQuery(f"comment is longer than {MAX_MESSAGE_CHARS} characters")
        if not self.stores.conversations.exists(conversation_id):
            raise NotFound(f"no conversation with id {conversation_id!r}")
        if not self.stores.conversations.has_message(conversation_id, message_id):
            raise NotFound(f"no message {message_id!r} in conversation {conversation_id!r}")
        self.stores.feedback.add(conversation_id, message_id, rating, comment)
        if self.questions is not None:
            self._log("feedback", self.questions.feedback, message_id, rating, comment)

    def _conversation(self, conversation_id: str | None) -> tuple[str, bool]:
        """(the id, whether it is new). Clients never pick ids: an unknown id starts a fresh conversation,
        stored with its first turn (`append` creates it), as nobody knows its id before that."""
        if (
            conversation_id
            and len(conversation_id) <= 200
            and self.stores.conversations.exists(conversation_id)
        ):
            return conversation_id, False
        return secrets.token_urlsafe(18), True

    def _analyze(self, message: str, today: dt.date | None) -> Question:
        """The reading of a message (normalised text) on a day, read once and kept while it is recent: the
        reader is a pure function of the text, the day and this service's index."""
        if self._readings is None:
            return self.extractive.analyze(message, today)
        key = (message, today or self.extractive.reader.lexicon.today())
        question = self._readings.get(key)
        if question is None:
            question = self.extractive.analyze(message, today)
            self._readings.put(key, question)
        return question

    # --- answering -----------------------------------------------------------------------------------
    def prepare(
        self,
        message: str,
        conversation_id: str | None = None,
        filters: SearchFilters | None = None,
        today: dt.date | None = None,
    ) -> _Prepared:
        return self._draft(self._read(message, conversation_id, filters, today, cached=False), filters, today)

    def _read(
        self,
        message: str,
        conversation_id: str | None,
        filters: SearchFilters | None,
        today: dt.date | None,
        cached: bool = True,
    ) -> _Read:
        started = time.perf_counter()
        text = validate_message(message)
        cid, new = self._conversation(conversation_id)
        history = [] if new else self.stores.conversations.history(cid)
        recent = history[-self.settings.history_turns :] if self.settings.history_turns else []
        question = resolve(text, recent, lambda m: self._analyze(m, today))
        key = hit = None
        if self.cache is not None:
            # an LLM answer reads the whole conversation; an extractive one only the resolved question
            key = answer_key(self.index.version, question, filters, (today or vn_today()).isoformat(),
                             recent if self.llm is not None else (), self._answerer)  # fmt: skip
            hit = self.cache.get(key) if cached else None
        return _Read(cid, text, question, history, started, key, hit)

    def _draft(self, read: _Read, filters: SearchFilters | None, today: dt.date | None) -> _Prepared:
        draft = self.extractive.answer(read.question, filters, today)
        return _Prepared(read.conversation_id, read.message, read.question, read.history, draft, read.started,
                         read.cache_key)  # fmt: skip

    def _replay(self, read: _Read) -> ChatResponse:
        """The cached answer, given again as a new message of this conversation."""
        assert read.hit is not None
        message_id = secrets.token_urlsafe(12)
        self._remember(read.conversation_id, message_id, read.message, read.hit.answer, read.hit.answered,
                       read.hit.citations)  # fmt: skip
        latency_ms = round((time.perf_counter() - read.started) * 1000, 2)
        self._record(message_id, read.message, read.question.intent, read.hit.answered, latency_ms,
                     read.hit.answer, read.hit.citations)  # fmt: skip
        return read.hit.model_copy(update={
            "conversation_id": read.conversation_id, "message_id": message_id, "latency_ms": latency_ms})  # fmt: skip

    def answer(
        self,
        message: str,
        conversation_id: str | None = None,
        filters: SearchFilters | None = None,
        today: dt.date | None = None,
    ) -> ChatResponse:
        """`today`: the day "quá hạn" and "sắp đến hạn" are judged on (default: today in Asia/Ho_Chi_Minh)."""
        read = self._read(message, conversation_id, filters, today)
        leads = False
        if read.hit is None and self.flights is not None and read.cache_key is not None:
            flight = self.flights.lead(read.cache_key)
            if flight is None:
                leads = True
            else:
                self.flights.wait(flight)
                read.hit = self._lookup(read.cache_key)
        try:
            if read.hit is not None:
                return self._replay(read)
            return self._finish_draft(self._draft(read, filters, today))
        finally:
            if leads:
                self._land(read.cache_key)

    def _lookup(self, key: str) -> ChatResponse | None:
        assert self.cache is not None
        return self.cache.get(key)

    def _land(self, key: str | None) -> None:
        if self.flights is not None and key is not None:
            self.flights.land(key)

    async def answer_async(
        self, message: str, conversation_id: str | None = None, filters: SearchFilters | None = None
    ) -> ChatResponse:
        read = await asyncio.to_thread(self._read, message, conversation_id, filters, None)
        leads = False
        if read.hit is None and self.flights is not None and read.cache_key is not None:
            flight = self.flights.lead(read.cache_key)
            if flight is None:
                leads = True
            else:
                await self.flights.wait_async(flight)
                read.hit = await asyncio.to_thread(self._lookup, read.cache_key)
        key = read.cache_key
        try:
            return await self._answer_read(read, filters)
        finally:
            if leads:
                self._land(key)

    async def _answer_read(self, read: _Read, filters: SearchFilters | None) -> ChatResponse:
        if read.hit is not None:
            return await asyncio.to_thread(self._replay, read)
        prepared = await asyncio.to_thread(self._draft, read, filters, None)
        if not self._use_llm(prepared):
            return await asyncio.to_thread(self._finish_draft, prepared)
        assert self.llm is not None
        sources = self._llm_sources(prepared)
        builder = CitedAnswerBuilder(sources, prepared.question.text)
        try:
            async with asyncio.timeout(self.settings.llm_timeout):
                text = await self.llm.complete(prepared.question.text, sources, prepared.history)
            builder.feed(text)
            builder.close()
        except Exception as exc:  # timeout, HTTP error, garbage: the extractive answer stands in
            log.warning(
                "LLM answer failed (%s: %s); falling back to the extractive answer",
                exc.__class__.__name__,
                exc,
            )
            return await asyncio.to_thread(self._stand_in, prepared)
        answer, citations = builder.result()
        if not citations:
            log.warning("LLM answer had no valid citation; falling back to the extractive answer")
            return await asyncio.to_thread(self._stand_in, prepared)
        return await asyncio.to_thread(self._finish, prepared, answer, citations, True, "llm")

    async def stream(
        self, message: str, conversation_id: str | None = None, filters: SearchFilters | None = None
    ) -> AsyncIterator[StreamEvent]:
        read = await asyncio.to_thread(self._read, message, conversation_id, filters, None)
        response: ChatResponse | None = None
        if read.hit is not None:
            response = await asyncio.to_thread(self._replay, read)
            for piece in word_chunks(response.answer):
                yield StreamEvent("token", {"text": piece})
            yield StreamEvent("citations", [c.model_dump(mode="json") for c in response.citations])
            yield StreamEvent("done", response.model_dump(mode="json"))
            return
        prepared = await asyncio.to_thread(self._draft, read, filters, None)
        if self._use_llm(prepared):
            assert self.llm is not None
            sources = self._llm_sources(prepared)
            builder = CitedAnswerBuilder(sources, prepared.question.text)
            emitted = False
            try:
                async with asyncio.timeout(self.settings.llm_timeout):
                    async for chunk in self.llm.stream(prepared.question.text, sources, prepared.history):
                        for piece in builder.feed(chunk):
                            emitted = True
                            yield StreamEvent("token", {"text": piece})
                for piece in builder.close():
                    emitted = True
                    yield StreamEvent("token", {"text": piece})
            except Exception as exc:
                log.warning("LLM stream failed (%s: %s)", exc.__class__.__name__, exc)
            answer, citations = builder.result()
            if citations:
                response = await asyncio.to_thread(self._finish, prepared, answer, citations, True, "llm")
            elif emitted:
                log.warning("LLM stream had no valid citation after emitting text")
        if response is None:
            finish = self._stand_in if self._use_llm(prepared) else self._finish_draft
            response = await asyncio.to_thread(finish, prepared)
            for piece in word_chunks(response.answer):
                yield StreamEvent("token", {"text": piece})
        yield StreamEvent("citations", [c.model_dump(mode="json") for c in response.citations])
        yield StreamEvent("done", response.model_dump(mode="json"))

    def _use_llm(self, prepared: _Prepared) -> bool:
        if self.llm is None or prepared.question.kind in _EXTRACTIVE_ONLY:
            return False
        draft = prepared.draft
        if draft.answered:
            return True
        # refused by the extractive gate but in scope (the passages are close, if not close enough to quote):
        # the LLM may still answer from them; never a question out of scope, or about a Kết luận or an
        # agency the corpus does not hold
        return draft.gated and draft.confidence >= LLM_MIN_CONFIDENCE

    def _llm_sources(self, prepared: _Prepared, limit: int = 8) -> list[Any]:
        """The extractive answer's passages first, then the next best hits, newest Kết luận first."""
        sources = list(prepared.draft.sources)
        filters = self.extractive.effective_filters(prepared.question, None)
        for hit in self.extractive.search(prepared.question, filters):
            if len(sources) >= limit:
                break
            if (
                hit.passage.passage_id not in {p.passage_id for p in sources}
                and hit.passage.kind != "signature"
            ):
                sources.append(hit.passage)
        return sources

    def _stand_in(self, prepared: _Prepared) -> ChatResponse:
        """The extractive answer in place of a failed LLM one: given, but not cached for the next asker."""
        prepared.cache_key = None
        return self._finish_draft(prepared)

    def _finish_draft(self, prepared: _Prepared) -> ChatResponse:
        answer, citations = renumber(prepared.draft.answer, prepared.draft.sources)
        return self._finish(
            prepared, answer, citations, prepared.draft.answered and bool(citations), "extractive"
        )

    def _finish(
        self,
        prepared: _Prepared,
        answer: str,
        citations: Sequence[Citation],
        answered: bool,
        mode: Literal["extractive", "llm"],
    ) -> ChatResponse:
        citations = list(citations)
        suggestions = prepared.draft.suggestions
        problems = gate(answer, citations, self._source_text, answered)
        if problems:
            log.error("answer failed its citation checks (%s); refusing instead", "; ".join(problems))
            refusal = self.extractive.refusal(prepared.question)
            answer, citations, answered = refusal.answer, [], False
            suggestions = refusal.suggestions
        message_id = secrets.token_urlsafe(12)
        self._remember(prepared.conversation_id, message_id, prepared.message, answer, answered, citations)
        latency_ms = round((time.perf_counter() - prepared.started) * 1000, 2)
        self._record(
            message_id, prepared.message, prepared.question.intent, answered, latency_ms, answer, citations
        )
        response = ChatResponse(
            conversation_id=prepared.conversation_id,
            message_id=message_id,
            answer=answer,
            answered=answered,
            citations=citations,
            mode=mode,
            latency_ms=latency_ms,
            suggestions=suggestions,
            intent=prepared.question.intent,
        )
        if self.cache is not None and prepared.cache_key is not None:
            self.cache.put(prepared.cache_key, response)
        return response

    def _record(
        self,
        message_id: str,
        message: str,
        intent: str,
        answered: bool,
        latency_ms: float,
        answer: str,
        citations: Sequence[Citation],
    ) -> None:
        """The question in the operator's log (bot/analytics.py), when one is kept and the channel is known."""
        asker = current_asker()
        if self.questions is None or asker is None:
            return
        record = QuestionRecord(
            message_id=message_id, at=time.time(), channel=asker.channel, text=message, intent=intent,
            answered=answered, latency_ms=latency_ms, passage_ids=[c.passage_id for c in citations],
            answer=answer, user=asker.user,
        )  # fmt: skip
        self._log("record", self.questions.record, record)

    def _remember(
        self,
        conversation_id: str,
        message_id: str,
        message: str,
        answer: str,
        answered: bool,
        citations: Sequence[Citation],
    ) -> None:
        cited_kl: list[str] = []
        for c in citations:
            if c.ket_luan and c.ket_luan not in cited_kl:
                cited_kl.append(c.ket_luan)
        turn = Turn(
            message_id=message_id,
            question=message,
            answer=answer,
            answered=answered,
            ket_luan=cited_kl,
            passage_ids=[c.passage_id for c in citations],
            created_at=time.time(),
        )
        self.stores.conversations.append(conversation_id, turn, self.settings.history_turns)

    @staticmethod
    def _log(what: str, call: Any, *args: Any) -> None:
        try:
            call(*args)
        except Exception:  # the question log never costs an answer
            log.exception("question log: %s failed", what)

    def _source_text(self, file: str) -> str:
        with self._sources_lock:
            text = self._sources.get(file)
        if text is None:
            text = self.index.source_text(file)
            with self._sources_lock:
                self._sources[file] = text
        return text


def word_chunks(text: str, words_per_chunk: int = 3) -> list[str]:
    """The answer in small pieces that join back to exactly the answer (spaces and newlines kept)."""
    import re

    tokens = re.findall(r"\S+\s*", text)
    lead = text[: len(text) - len(text.lstrip())]
    chunks = ["".join(tokens[i : i + words_per_chunk]) for i in range(0, len(tokens), words_per_chunk)]
    if lead and chunks:
        chunks[0] = lead + chunks[0]
    return chunks or ([text] if text else [])
