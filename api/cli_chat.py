"""`ketluan ask` (answers on the command line) and `ketluan serve` (the HTTP service), per API.md."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from api.settings import Settings
from index.errors import KetLuanError

log = logging.getLogger("ketluan.serve")


def register(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser("ask", parents=[common], help="answer a question with citations")
    p.add_argument("question", nargs="?", help="the question, in Vietnamese")
    p.add_argument("--json", action="store_true", help="print the ChatResponse as JSON")
    p.add_argument("--batch", help="a file with one question a line; prints one ChatResponse JSON a line")
    p.add_argument("--ket-luan", action="append", help="only this Kết luận (repeatable), e.g. 183-KL/TW")
    p.set_defaults(func=_cmd_ask)

    p = sub.add_parser("serve", parents=[common], help="serve the HTTP API, the widget and the bot webhooks")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=8000, help="port (default 8000)")
    p.add_argument("--workers", type=int, default=1, help="uvicorn worker processes (default 1)")
    p.add_argument("--no-build", action="store_true", help="do not build a missing or stale index first")
    p.add_argument("--log-level", default="info", choices=["critical", "error", "warning", "info", "debug"])
    p.add_argument("--no-access-log", action="store_true", help="do not log every request")
    p.set_defaults(func=_cmd_serve)


def _settings(args: argparse.Namespace) -> Settings:
    if args.data_dir:
        return Settings.load(data_dir=Path(args.data_dir))
    return Settings.load()


# --- ask -----------------------------------------------------------------------------------------
def _cmd_ask(args: argparse.Namespace) -> int:
    from bot.stores import sqlite_stores
    from index.search import SearchFilters, open_index

    if not args.question and not args.batch:
        raise SystemExit("ketluan ask: give a QUESTION or --batch FILE")
    if args.batch and not Path(args.batch).is_file():
        raise SystemExit(f"ketluan ask: batch file not found: {args.batch}")
    settings = _settings(args)
    index = open_index(settings.index)
    filters = SearchFilters(ket_luan=args.ket_luan) if args.ket_luan else None
    stores = sqlite_stores(":memory:")  # one-shot answers: no history worth keeping on disk
    try:
        service = _service(index, stores, settings)
        if args.batch:
            for line in Path(args.batch).read_text("utf-8").splitlines():
                if line.strip():
                    _print_batch_line(service, line, filters, settings)
            return 0
        response = _answer(service, args.question, filters, settings)
    finally:
        stores.close()
    if args.json:
        print(response.model_dump_json())
        return 0
    print(response.answer)
    if response.citations:
        print()
        for c in response.citations:
            print(f"[{c.n}] {c.label} — {settings.bot.public_url.rstrip('/')}{c.url}")
    return 0


def _print_batch_line(service: Any, question: str, filters: Any, settings: Settings) -> None:
    try:  # each question on its own: no conversation id, so no shared history
        print(_answer(service, question, filters, settings).model_dump_json(), flush=True)
    except KetLuanError as exc:
        error = {"code": exc.code, "message": exc.message}
        print(json.dumps({"question": question, "error": error}, ensure_ascii=False), flush=True)


def _service(index: Any, stores: Any, settings: Settings) -> Any:
    from bot.service import ChatService

    llm = None
    if settings.bot.llm_base_url:
        from bot.llm import LLMAnswerer

        llm = LLMAnswerer(settings.bot)
    return ChatService(index, stores, settings.bot, llm=llm)


def _answer(service: Any, question: str, filters: Any, settings: Settings) -> Any:
    if settings.bot.llm_base_url:
        return asyncio.run(service.answer_async(question, None, filters))
    return service.answer(question, None, filters)


# --- serve ---------------------------------------------------------------------------------------
def _cmd_serve(args: argparse.Namespace) -> int:
    from api.server import HttpLimits, serve

    if args.workers < 1:
        raise SystemExit("ketluan serve: --workers must be at least 1")
    if args.data_dir:  # worker processes read their settings from the environment
        os.environ["KETLUAN_DATA_DIR"] = str(Path(args.data_dir).resolve())
    for name in ("api", "bot", "ketluan"):  # our own start-up and reload messages, not every library's
        logging.getLogger(name).setLevel(logging.INFO)
    settings = _settings(args)
    if not args.no_build and not settings.index.index_source:
        # build a missing or stale index once, here, before any worker loads it; a host with an index
        # source serves the published bundle it pulls (api/app.py), never a build of its own
        _ensure_index(settings)
    from bot.answer_cache import forget_host_cache

    forget_host_cache(settings.index.data_dir)  # the workers' shared answers start with this server
    api = settings.api
    limits = HttpLimits(max_header_bytes=api.max_header_bytes, max_headers=api.max_headers,
                        header_timeout=api.header_timeout)  # fmt: skip
    print(f"serving on http://{args.host}:{args.port} (docs at /docs)", file=sys.stderr)
    # every worker (one by default) is a process the supervisor replaces if it dies; each builds its app
    # and loads the index (memory-mapped) before it takes connections, and writes its metrics where every
    # worker's /metrics can add them up
    with _metrics_dir():
        serve("api.app:create_worker_app", host=args.host, port=args.port, workers=args.workers, limits=limits,
              keep_alive_timeout=api.keep_alive_timeout, log_level=args.log_level,
              access_log=not args.no_access_log)  # fmt: skip
    return 0


@contextlib.contextmanager
def _metrics_dir() -> Iterator[None]:
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        yield
        return
    with tempfile.TemporaryDirectory(prefix="ketluan-metrics-") as folder:
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = folder
        try:
            yield
        finally:
            del os.environ["PROMETHEUS_MULTIPROC_DIR"]


def _ensure_index(settings: Settings) -> None:
    """Build the index from the shipped corpus when it is missing or stale (progress on stderr); on failure
    log why and serve anyway, with /readyz saying why, rather than exit into a restart loop."""
    from index.search import ensure_index

    print(f"checking the index in {settings.index.index_dir} …", file=sys.stderr)
    try:
        with contextlib.redirect_stdout(sys.stderr):  # build logs go with the progress bars, not stdout
            index = ensure_index(settings.index, progress=True)
    except KetLuanError as exc:
        log.error("index not ready: %s", exc.message)
        return
    print(f"index ready: {len(index.documents)} documents, {len(index.passages)} passages", file=sys.stderr)
