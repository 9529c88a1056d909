"""`ketluan telegram set-webhook | delete-webhook | poll`: register the webhook and the Vietnamese command
menu, or run the bot by polling."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
import sys
from pathlib import Path
from typing import Any

import httpx

from api.settings import Settings
from api.webhooks import BotOptions, build_bots

WEBHOOK_PATH = "/webhooks/telegram"


def register(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser("telegram", help="the Telegram bot: register its webhook, or run it by long polling")
    tsub = p.add_subparsers(dest="telegram_command", required=True)

    s = tsub.add_parser("set-webhook", parents=[common], help="point Telegram at this service's webhook")
    s.add_argument("--url", help=f"public HTTPS webhook URL (default KETLUAN_PUBLIC_URL + {WEBHOOK_PATH})")
    s.add_argument("--drop-pending", action="store_true", help="drop the updates Telegram has queued")
    s.set_defaults(func=_cmd_set_webhook)

    s = tsub.add_parser("delete-webhook", parents=[common], help="remove the webhook (before polling)")
    s.set_defaults(func=_cmd_delete_webhook)

    s = tsub.add_parser("poll", parents=[common], help="run the bot by long polling (no public URL needed)")
    s.add_argument("--timeout", type=int, default=30, help="long-poll timeout in seconds (default 30)")
    s.set_defaults(func=_cmd_poll)


def _settings(args: argparse.Namespace) -> Settings:
    if getattr(args, "data_dir", None):
        return Settings.load(data_dir=Path(args.data_dir))
    return Settings.load()


def _require_token(settings: Settings) -> str:
    token = settings.telegram.telegram_bot_token
    if token is None:
        raise SystemExit("ketluan telegram: set KETLUAN_TELEGRAM_BOT_TOKEN (the token from @BotFather)")
    return token.get_secret_value()


def _client(settings: Settings, http: httpx.AsyncClient) -> Any:
    from bot.telegram import TelegramClient

    return TelegramClient(http, _require_token(settings), settings.telegram.telegram_api_base, max_attempts=3)


def _cmd_set_webhook(args: argparse.Namespace) -> int:
    settings = _settings(args)
    _require_token(settings)
    secret = settings.telegram.telegram_webhook_secret
    if secret is None or not secret.get_secret_value():
        raise SystemExit(
            "ketluan telegram: set KETLUAN_TELEGRAM_WEBHOOK_SECRET (1-256 characters A-Z a-z 0-9 _ -), "
            "e.g. python -c 'import secrets; print(secrets.token_urlsafe(32))'"
        )
    url = args.url or settings.bot.public_url.rstrip("/") + WEBHOOK_PATH
    if not url.startswith("https://"):
        print(f"warning: Telegram only delivers to HTTPS URLs; {url} may be refused", file=sys.stderr)

    async def run() -> Any:
        from bot.telegram import command_menu

        async with httpx.AsyncClient(timeout=30.0) as http:
            client = _client(settings, http)
            await client.set_webhook(url, secret.get_secret_value(), drop_pending_updates=args.drop_pending)
            await client.set_my_commands(command_menu())
            return await client.get_webhook_info()

    info = asyncio.run(run())
    print(f"webhook set: {info.get('url') or url}")
    print("command menu set (setMyCommands)")
    if info.get("last_error_message"):
        print(f"last delivery error reported by Telegram: {info['last_error_message']}", file=sys.stderr)
    return 0


def _cmd_delete_webhook(args: argparse.Namespace) -> int:
    settings = _settings(args)

    async def run() -> None:
        async with httpx.AsyncClient(timeout=30.0) as http:
            await _client(settings, http).delete_webhook()

    asyncio.run(run())
    print("webhook deleted; `ketluan telegram poll` can run now")
    return 0


def _cmd_poll(args: argparse.Namespace) -> int:
    settings = _settings(args)
    _require_token(settings)
    warn_if_unreachable(settings.bot.public_url)
    for name in ("api", "bot"):
        logging.getLogger(name).setLevel(logging.INFO)
    asyncio.run(_poll(settings, args.timeout))
    return 0


def warn_if_unreachable(public_url: str) -> bool:
    """Warn on stderr when source links would point at an address a phone cannot open; True if it did."""
    from bot.channels import reachable_from_a_phone

    if reachable_from_a_phone(public_url):
        return False
    print(
        f"warning: KETLUAN_PUBLIC_URL is {public_url}: the source links the bot sends will not open on a "
        "phone. Set KETLUAN_PUBLIC_URL to an address phones can reach (e.g. https://hoidap.example.vn).",
        file=sys.stderr,
    )
    return True


async def _poll(settings: Settings, timeout: int, stop: asyncio.Event | None = None) -> None:
    from api.cli_chat import _service
    from bot.stores import open_stores
    from bot.telegram import poll
    from index.search import open_index

    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            loop.add_signal_handler(sig, stop.set)
    index = await asyncio.to_thread(open_index, settings.index)
    stores = await asyncio.to_thread(open_stores, settings.bot, settings.index.data_dir)
    try:
        service = _service(index, stores, settings)
        async with httpx.AsyncClient(timeout=httpx.Timeout(30.0, connect=5.0)) as http:
            bots = build_bots(
                settings,
                http,
                stores,
                lambda: service,
                options=BotOptions(),
            )
            assert bots.telegram is not None
            info = await bots.telegram.client.get_webhook_info()
            if info.get("url"):
                raise SystemExit(
                    f"ketluan telegram poll: a webhook is set ({info['url']}); Telegram does not deliver "
                    "updates to polling while it is. Run `ketluan telegram delete-webhook` first."
                )
            me = await bots.telegram.identity()
            print(f"polling Telegram as @{me.username}; Ctrl-C to stop", file=sys.stderr)
            if bots.reminders is not None:
                interval = settings.bot.reminder_check_minutes * 60
                bots.loops.spawn(bots.reminders.run(stop, interval), name="bot-reminders")
            try:
                await poll(bots.telegram, timeout=timeout, stop=stop)
            finally:
                stop.set()
                await bots.loops.close()
                if bots.state is not None:
                    bots.state.close()
    finally:
        stores.close()
