"""POST /webhooks/telegram and /webhooks/zalo: check the secret, answer at once, work in the background;
and the periodic deadline reminders of both bots."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import secrets
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Annotated, Any

import httpx
from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.responses import JSONResponse

from api.deps import SettingsDep
from api.errors import error_response
from api.settings import Settings
from bot.channels import AnswerService, Conversations, TaskSet
from bot.reminders import Follows, Reminders, ReminderSender
from bot.state import BotState, open_state
from bot.stores import Stores
from bot.telegram import TelegramBot, TelegramClient
from bot.zalo import ZaloBot, ZaloClient, is_fresh, verify_raw
from index.tasks import TaskBook

# Zalo's console checks a webhook URL with an unsigned POST of `{}`; such a probe is this small.
PROBE_MAX_BYTES = 1024

log = logging.getLogger(__name__)

router = APIRouter(include_in_schema=False)


@dataclass
class BotOptions:
    """Retry and timing knobs of the bot clients (tests make them tiny: set app.state.bot_options first)."""

    max_attempts: int = 5
    backoff_base: float = 1.0
    backoff_cap: float = 30.0
    max_retry_after: float = 120.0
    typing_interval: float = 4.0
    shutdown_grace: float = 10.0
    reminder_interval: float | None = None  # seconds; None = KETLUAN_REMINDER_CHECK_MINUTES


@dataclass
class Bots:
    """What the webhooks hand work to; `tasks` keeps a reference to every piece of background work."""

    telegram: TelegramBot | None
    zalo: ZaloBot | None
    tasks: TaskSet = field(default_factory=TaskSet)
    state: BotState | None = None
    reminders: Reminders | None = None
    loops: TaskSet = field(default_factory=TaskSet)  # long-running work (reminders), apart from `tasks`


def build_bots(
    settings: Settings,
    http: httpx.AsyncClient,
    stores: Stores,
    service: Callable[[], AnswerService],
    *,
    options: BotOptions | None = None,
    state: BotState | None = None,
) -> Bots:
    """The configured bots: Telegram when a bot token is set, Zalo when an access or refresh token is.
    Their state (refresh lock, subscriptions, reminder claims) sits on the backend of `stores` unless `state`
    is given."""
    options = options or BotOptions()
    public_url = settings.bot.public_url
    telegram = zalo = None
    tg, zl = settings.telegram, settings.zalo
    if state is None and (tg.telegram_bot_token is not None or zl.zalo_access_token or zl.zalo_refresh_token):
        state = open_state(stores.backend)
    follows = Follows(state, settings.bot.reminder_days_before) if state is not None else None
    if tg.telegram_bot_token is not None:
        token = tg.telegram_bot_token.get_secret_value()
        client = TelegramClient(
            http,
            token,
            tg.telegram_api_base,
            max_attempts=options.max_attempts,
            backoff_base=options.backoff_base,
            backoff_cap=options.backoff_cap,
            max_retry_after=options.max_retry_after,
        )
        conversations = Conversations(service, stores, "telegram", key=token)
        telegram = TelegramBot(
            client,
            conversations,
            public_url,
            typing_interval=options.typing_interval,
            state=state,
            follows=follows,
        )
    if zl.zalo_access_token is not None or zl.zalo_refresh_token is not None:
        zalo_client = ZaloClient(
            http,
            access_token=_secret(zl.zalo_access_token),
            api_base=zl.zalo_api_base,
            oauth_base=zl.zalo_oauth_base,
            refresh_token=_secret(zl.zalo_refresh_token),
            app_id=zl.zalo_app_id,
            app_secret=_secret(zl.zalo_app_secret),
            state=state,
            max_attempts=options.max_attempts,
            backoff_base=options.backoff_base,
            backoff_cap=options.backoff_cap,
        )
        key = _secret(zl.zalo_oa_secret_key) or zl.zalo_app_id or "zalo"
        zalo_conversations = Conversations(service, stores, "zalo", key=key)
        zalo = ZaloBot(zalo_client, zalo_conversations, public_url, follows=follows)
    reminders = None
    if state is not None:
        senders: dict[str, ReminderSender] = {}
        if telegram is not None:
            senders["telegram"] = telegram
        if zalo is not None:
            senders["zalo"] = zalo
        reminders = Reminders(
            state,
            lambda: _task_book(service),
            senders,
            public_url=public_url,
            days_before=settings.bot.reminder_days_before,
        )
    return Bots(telegram, zalo, state=state, reminders=reminders)


def _task_book(service: Callable[[], AnswerService]) -> TaskBook | None:
    """The task book of the index being served; None while none is (no reminders until one is)."""
    try:
        book = getattr(getattr(service(), "index", None), "tasks", None)
    except Exception:
        return None
    return book if isinstance(book, TaskBook) else None


def _secret(value: Any) -> str | None:
    return value.get_secret_value() if value is not None else None


@contextlib.asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    """Entered by api.app's lifespan once the stores, http client and index holder are on app.state."""
    options: BotOptions = getattr(app.state, "bot_options", None) or BotOptions()
    bots = build_bots(
        app.state.settings,
        app.state.http,
        app.state.stores,
        lambda: app.state.index_holder.current().service,
        options=options,
    )
    app.state.bots = bots
    stop = asyncio.Event()
    if bots.reminders is not None:
        interval = options.reminder_interval or app.state.settings.bot.reminder_check_minutes * 60
        bots.loops.spawn(bots.reminders.run(stop, interval), name="bot-reminders")
    try:
        yield
    finally:
        stop.set()
        await bots.loops.close(timeout=options.shutdown_grace)
        await bots.tasks.close(timeout=options.shutdown_grace)
        if bots.state is not None:
            bots.state.close()


async def get_bots(request: Request) -> Bots:
    bots: Bots = request.app.state.bots
    return bots


BotsDep = Annotated[Bots, Depends(get_bots)]


def _same_secret(given: str | None, expected: str | None) -> bool:
    if not given or not expected:
        return False
    return secrets.compare_digest(given.encode(), expected.encode())


def _unauthorized(detail: str) -> JSONResponse:
    return error_response("unauthorized", detail, message="Sai hoặc thiếu chữ ký/mã bí mật của webhook.")


def _json_object(body: bytes) -> dict[str, Any] | None:
    """The body as a JSON object; None for anything else, including nesting deep enough to exhaust the
    parser's recursion (20,000 "[" must be a 400, never a 500)."""
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError, RecursionError):
        return None
    return data if isinstance(data, dict) else None


@router.post("/webhooks/telegram")
async def telegram_webhook(request: Request, settings: SettingsDep, bots: BotsDep) -> Any:
    """Telegram Bot API webhook: 401 without the right X-Telegram-Bot-Api-Secret-Token, else 200 at once."""
    expected = settings.telegram.telegram_webhook_secret
    given = request.headers.get("X-Telegram-Bot-Api-Secret-Token")
    if not _same_secret(given, expected.get_secret_value() if expected else None):
        return _unauthorized("wrong or missing X-Telegram-Bot-Api-Secret-Token")
    update = _json_object(await request.body())
    if update is None:
        return error_response("invalid_json", "the update is not a JSON object")
    if bots.telegram is None:
        log.error("telegram: update received but KETLUAN_TELEGRAM_BOT_TOKEN is not set; ignored")
        return {"ok": True}
    bots.tasks.spawn(bots.telegram.handle_update(update), name=f"telegram-update-{update.get('update_id')}")
    return {"ok": True}


@router.post("/webhooks/zalo")
async def zalo_webhook(request: Request, settings: SettingsDep, bots: BotsDep) -> Any:
    """Zalo OA webhook: the signature (mac=sha256(app_id + body + timestamp + OA secret)) is checked on the
    raw body before it is parsed; an unsigned `{}` (the console's probe when the URL is saved) gets 200;
    events older than KETLUAN_ZALO_EVENT_MAX_AGE_MINUTES are refused (a replayed event)."""
    body = await request.body()
    header = request.headers.get("X-ZEvent-Signature")
    if not header:
        probe = _json_object(body) if len(body) <= PROBE_MAX_BYTES else None
        if probe is not None and not probe.get("event_name"):
            log.info("zalo: unsigned probe without an event answered 200 (the OA console checking the URL)")
            return {"ok": True}
        return _unauthorized("missing X-ZEvent-Signature")
    zl = settings.zalo
    signed = verify_raw(header, body, zl.zalo_app_id, _secret(zl.zalo_oa_secret_key))
    if signed is None:
        return _unauthorized("wrong X-ZEvent-Signature")
    event = _json_object(body)
    if event is None:
        return error_response("invalid_json", "the event is not a JSON object")
    if str(event.get("timestamp") or "") != signed:
        return _unauthorized("the signed timestamp is not the event's")
    max_age = zl.zalo_event_max_age_minutes * 60
    if not is_fresh(signed, max_age):
        log.warning(
            "zalo: event %r with timestamp %s refused: older than %.0f s",
            event.get("event_name"),
            signed,
            max_age,
        )
        return _unauthorized("the event timestamp is outside the accepted window (a replay?)")
    if not event.get("event_name"):
        return {"ok": True}
    if bots.zalo is None:
        log.error("zalo: event received but no KETLUAN_ZALO_ACCESS_TOKEN / REFRESH_TOKEN is set; ignored")
        return {"ok": True}
    bots.tasks.spawn(bots.zalo.handle_event(event), name=f"zalo-event-{event.get('event_name')}")
    return {"ok": True}
