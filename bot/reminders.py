"""Agencies a chat follows + the task book + today → deadline reminders, each sent once by one worker.

"/theodoi Bộ Nội vụ" makes a Subscription in the bot state (bot/state.py). A periodic tick, run by every
worker, finds the tasks of each followed agency whose deadline is at most `days_before` days away and
not yet past; a reminder is claimed (Redis SET NX / SQLite INSERT OR IGNORE) before it is sent, so one
worker sends it, once, and a restart does not send it again.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
from collections.abc import Callable, Mapping
from typing import Protocol

import prompts
from bot.channels import absolute_url, deadline_words, prompt, unknown_agency_text
from bot.state import BotState, Subscription
from index.models import Directive
from index.tasks import TaskBook, TaskQuery, UnknownAgency, today

log = logging.getLogger(__name__)

# A claim outlives any deadline it is about: a reminder is never sent twice.
CLAIM_TTL_SECONDS = 400 * 24 * 3600


class ReminderSender(Protocol):
    async def send_reminder(self, subscription: Subscription, texts: list[str]) -> None: ...


class Follows:
    """The /theodoi and /botheodoi commands of both bots: text in → subscription changed → reply text."""

    def __init__(self, state: BotState, days_before: int) -> None:
        self.state = state
        self.days_before = days_before

    async def handle(self, kind: str, where: Subscription, agency: str, tasks: Callable[[], TaskBook]) -> str:
        """`where` names the chat (its agency is ignored); `kind` is "follow" or "unfollow"."""
        agency = agency.strip()
        name = None
        if agency:
            try:
                name = tasks().canonical_agency(agency)
            except UnknownAgency as exc:
                return unknown_agency_text(agency, exc.suggestions)
        if kind == "follow":
            if name is None:
                current = await asyncio.to_thread(self.state.subscriptions, where.channel, where.chat)
                mine = [s.agency for s in current if s.thread == where.thread]
                if not mine:
                    return prompt("follow_usage")
                return prompts.render("bot_following_list", agencies=", ".join(mine))
            subscription = Subscription(where.channel, where.chat, name, where.thread)
            new = await asyncio.to_thread(self.state.subscribe, subscription)
            return prompts.render(
                "bot_followed" if new else "bot_already_following", agency=name, days=self.days_before
            )
        ended = await asyncio.to_thread(self.state.unsubscribe, where.channel, where.chat, name, where.thread)
        if not ended:
            return prompt("not_following")
        return prompt("unfollowed_all") if name is None else prompts.render("bot_unfollowed", agency=name)


def reminder_texts(agency: str, directives: list[Directive], day: dt.date, public_url: str) -> list[str]:
    blocks = [prompts.render("bot_reminder_heading", agency=agency)]
    for d in directives:
        assert d.deadline is not None
        left = (d.deadline - day).days
        when = prompt("reminder_today") if left <= 0 else prompts.render("bot_reminder_days_left", days=left)
        blocks.append(
            prompts.render(
                "bot_reminder_item",
                action=d.action.strip(),
                deadline=deadline_words(d),
                when=when,
                label=d.label,
                url=absolute_url(d.url, public_url),
            )
        )
    return blocks


class Reminders:
    """Finds due reminders and sends them through the bot of their channel; `today` is injectable."""

    def __init__(
        self,
        state: BotState,
        tasks: Callable[[], TaskBook | None],
        senders: Mapping[str, ReminderSender],
        *,
        public_url: str,
        days_before: int = 3,
        today: Callable[[], dt.date] = today,
    ) -> None:
        self.state = state
        self._tasks = tasks
        self.senders = dict(senders)
        self.public_url = public_url
        self.days_before = days_before
        self._today = today

    def due(self, day: dt.date) -> list[tuple[Subscription, list[Directive]]]:
        """Each subscription with the tasks of its agency due within `days_before` days of `day`."""
        book = self._tasks()
        if book is None:
            return []
        last = day + dt.timedelta(days=self.days_before)
        out = []
        for subscription in self.state.subscriptions():
            if subscription.channel not in self.senders:
                continue
            try:
                directives = book.query(TaskQuery(agency=subscription.agency, due_after=day, due_before=last))
            except UnknownAgency:
                continue  # an agency the current build no longer knows
            if directives:
                out.append((subscription, directives))
        return out

    @staticmethod
    def claim_key(subscription: Subscription, directive: Directive) -> str:
        s = subscription
        deadline = directive.deadline.isoformat() if directive.deadline else "-"
        return f"remind:{s.channel}:{s.chat}:{s.thread}:{directive.directive_id}:{deadline}"

    async def tick(self) -> int:
        """Send what is due now and not sent yet (by any worker); how many reminder messages went out."""
        day = self._today()
        due = await asyncio.to_thread(self.due, day)
        sent = 0
        for subscription, directives in due:
            mine = [
                d
                for d in directives
                if await asyncio.to_thread(
                    self.state.claim, self.claim_key(subscription, d), CLAIM_TTL_SECONDS
                )
            ]
            if not mine:
                continue
            texts = reminder_texts(subscription.agency, mine, day, self.public_url)
            try:
                await self.senders[subscription.channel].send_reminder(subscription, texts)
            except Exception as exc:
                log.error(
                    "reminders: %d reminder(s) about %s to %s chat %s could not be sent: %s",
                    len(mine), subscription.agency, subscription.channel, subscription.chat, exc,
                )  # fmt: skip
                continue
            sent += 1
        return sent

    async def run(self, stop: asyncio.Event, interval_seconds: float) -> None:
        """Tick until `stop` is set; a failed tick is logged and the next one comes as usual."""
        while not stop.is_set():
            try:
                await self.tick()
            except Exception:
                log.exception("reminders: checking for due reminders failed")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), interval_seconds)
