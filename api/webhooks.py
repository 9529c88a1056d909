"""POST /webhooks/telegram and /webhooks/zalo: check the secret, answer at once, work in the background."""

from __future__ import annotations

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
from bot.telegram import TelegramBot, TelegramClient
from bot.zalo import ZaloBot, ZaloClient, verify_signature

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


@dataclass
class Bots:
    """What the webhooks hand work to; `tasks` keeps a reference to every piece of background work."""

    telegram: TelegramBot | None
    zalo: ZaloBot | None
    tasks: TaskSet = field(default_factory=TaskSet)


def build_bots(
    settings: Settings,
    http: httpx.AsyncClient,
    store: Any,
    service: Callable[[], AnswerService],
    *,
    options: BotOptions | None = None,
) -> Bots:
    """The configured bots: Telegram when a bot token is set, Zalo when an access or refresh token is."""
    options = options or BotOptions()
    public_url = settings.bot.public_url
    telegram = zalo = None
    tg = settings.telegram
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
        conversations = Conversations(service, store, "telegram", key=token)
        telegram = TelegramBot(client, conversations, public_url, typing_interval=options.typing_interval)
    zl = settings.zalo
    if zl.zalo_access_token is not None or zl.zalo_refresh_token is not None:
        zalo_client = ZaloClient(
            http,
            access_token=_secret(zl.zalo_access_token),
            api_base=zl.zalo_api_base,
            oauth_base=zl.zalo_oauth_base,
            refresh_token=_secret(zl.zalo_refresh_token),
            app_id=zl.zalo_app_id,
            app_secret=_secret(zl.zalo_app_secret),
            store=store if hasattr(store, "get_value") and hasattr(store, "set_value") else None,
            max_attempts=options.max_attempts,
            backoff_base=options.backoff_base,
            backoff_cap=options.backoff_cap,
        )
        key = _secret(zl.zalo_oa_secret_key) or zl.zalo_app_id or "zalo"
        zalo_conversations = Conversations(service, store, "zalo", key=key)
        zalo = ZaloBot(zalo_client, zalo_conversations, public_url)
    return Bots(telegram, zalo)


def _secret(value: Any) -> str | None:
    return value.get_secret_value() if value is not None else None


@contextlib.asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    """Entered by api.app's lifespan once the store, http client and index holder are on app.state."""
    options: BotOptions = getattr(app.state, "bot_options", None) or BotOptions()
    bots = build_bots(
        app.state.settings,
        app.state.http,
        app.state.store,
        lambda: app.state.index_holder.current().service,
        options=options,
    )
    app.state.bots = bots
    try:
        yield
    finally:
        await bots.tasks.close(timeout=options.shutdown_grace)


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
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError):
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
    """Zalo OA webhook: 401 unless X-ZEvent-Signature is mac=sha256(app_id + body + timestamp + OA secret)."""
    header = request.headers.get("X-ZEvent-Signature")
    if not header:
        return _unauthorized("missing X-ZEvent-Signature")
    body = await request.body()
    event = _json_object(body)
    if event is None:
        return error_response("invalid_json", "the event is not a JSON object")
    secret = settings.zalo.zalo_oa_secret_key
    if not verify_signature(header, body, event, settings.zalo.zalo_app_id, _secret(secret)):
        return _unauthorized("wrong X-ZEvent-Signature")
    if bots.zalo is None:
        log.error("zalo: event received but no KETLUAN_ZALO_ACCESS_TOKEN / REFRESH_TOKEN is set; ignored")
        return {"ok": True}
    bots.tasks.spawn(bots.zalo.handle_event(event), name=f"zalo-event-{event.get('event_name')}")
    return {"ok": True}
