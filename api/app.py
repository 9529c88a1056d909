"""The FastAPI app: `create_app(settings)` wires settings, middleware, routes and the lifespan.

What the lifespan puts on `app.state` (the widget pages and the bot webhooks read these):

- `settings`      api.settings.Settings, read once (also set before start-up, by create_app)
- `metrics`       api.metrics.Metrics, this app's Prometheus registry (also set by create_app)
- `stores`        bot.stores.Stores: conversations, feedback, dedupe, rate limits on one backend (SQLite
                  under the data dir, or Redis when KETLUAN_REDIS_URL)
- `http`          the one shared httpx.AsyncClient for outbound calls (LLM, Telegram, Zalo)
- `llm`           the LLM answerer when KETLUAN_LLM_BASE_URL is set, else None
- `index_holder`  api.holder.IndexHolder: `.current()` → Snapshot(index, service, build) or IndexNotReady;
                  loads in a background thread (before serving, in a `--workers` process) and swaps to a new build when `ketluan index` finishes
- `service`       the ChatService of the index being served now (a thin proxy to
                  `index_holder.current().service`, so it follows reloads; IndexNotReady while none)

Optional modules `api.web` and `api.webhooks` are included when present: each exposes `router`, and may
expose `lifespan(app)`, an async context manager entered after the above is set up.
"""

from __future__ import annotations

import contextlib
import faulthandler
import functools
import importlib
import logging
from collections.abc import AsyncIterator, Callable
from types import ModuleType
from typing import Any

import httpx
from fastapi import FastAPI
from fastapi_offline import FastAPIOffline
from starlette.concurrency import run_in_threadpool
from starlette.middleware.cors import CORSMiddleware

from api import errors, routes, routes_admin, routes_tasks
from api.holder import IndexHolder
from api.metrics import Metrics
from api.middleware import GuardMiddleware, MetricsMiddleware
from api.settings import Settings
from bot.stores import Stores, open_stores
from index.search import SearchIndex

log = logging.getLogger(__name__)

_OPTIONAL_ROUTERS = ("api.web", "api.webhooks")

DESCRIPTION = """
Hỏi đáp về các Kết luận của Bộ Chính trị, Ban Bí thư. Every answer is short, in Vietnamese, and cites the
exact paragraph of the exact Kết luận it comes from — or says that these documents do not say.

Errors are JSON `{"error": {"code", "message", "detail"?}}`: `message` is for end users (Vietnamese),
`detail` for developers. When `KETLUAN_API_KEYS` is set, `/v1/*` needs `Authorization: Bearer KEY`.
"""

TAGS = [
    {"name": "chat", "description": "cited answers, streamed or not, and feedback on them"},
    {"name": "search", "description": "ranked passages without an answer"},
    {"name": "documents", "description": "the indexed documents and their passages"},
    {"name": "tasks", "description": "who must do what, by when: the tasks the Kết luận assign, as data"},
    {"name": "operations", "description": "health, readiness, metrics, index reload"},
    {
        "name": "administration",
        "description": "documents in (upload, URL, replace, remove) as background "
        "jobs; needs a key from KETLUAN_ADMIN_KEYS",
    },
]

ServiceFactory = Callable[[SearchIndex, Stores, Any], Any]  # (index, stores, llm) → ChatService


def create_app(
    settings: Settings | None = None,
    *,
    index: SearchIndex | None = None,
    stores: Stores | None = None,
    llm: Any = None,
    service_factory: ServiceFactory | None = None,
    load_before_serving: bool = False,
) -> FastAPI:
    """The app. `index` serves an already loaded index; else it loads in the background at start-up, or,
    with `load_before_serving`, before the server takes its first connection (a worker that shares its
    socket with others must not take requests it can only refuse). `stores`, `llm` and `service_factory`
    replace what the lifespan would build (for tests)."""
    settings = settings or Settings.load()
    metrics = Metrics()

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with contextlib.AsyncExitStack() as stack:
            state = stores
            if state is None:
                state = await run_in_threadpool(open_stores, settings.bot, settings.index.data_dir)
                stack.callback(state.close)
            questions = await run_in_threadpool(_open_questions, settings, state)
            if questions is not None:
                stack.callback(questions.close)
            app.state.questions = questions
            http = httpx.AsyncClient(timeout=httpx.Timeout(30.0, connect=5.0), follow_redirects=False)
            stack.push_async_callback(http.aclose)
            answerer = llm if llm is not None else _build_llm(settings, http)
            make = service_factory or _chat_service(settings, questions)

            holder = IndexHolder(
                settings.index,
                lambda idx: make(idx, state, answerer),
                on_swap=lambda snap: metrics.index_changed(
                    len(snap.index.documents), len(snap.index.passages)
                ),
                **_published(settings, stack),
            )
            app.state.stores, app.state.http, app.state.llm, app.state.index_holder = (
                state, http, answerer, holder,
            )  # fmt: skip
            app.state.service = CurrentService(holder)
            app.state.library = _library(settings, holder, state)
            stack.callback(app.state.library.close)
            stack.callback(metrics.close)
            if index is not None:
                holder.install(index)
            elif load_before_serving:
                # a failed load is logged and reported by /readyz, as in the background case
                await run_in_threadpool(holder.load)
            else:
                holder.start()
            for module in _optional_modules():
                hook = getattr(module, "lifespan", None)
                if hook is not None:
                    await stack.enter_async_context(hook(app))
            yield

    # /docs and /redoc with Swagger UI and ReDoc served by the app itself: no CDN, so they work offline
    app = FastAPIOffline(
        title="Hỏi đáp Kết luận",
        version="0.1.0",
        summary="Cited Vietnamese answers from the Kết luận of the Bộ Chính trị and Ban Bí thư",
        description=DESCRIPTION,
        openapi_tags=TAGS,
        lifespan=lifespan,
        swagger_ui_parameters={"validatorUrl": None},
    )
    app.state.settings = settings
    app.state.metrics = metrics
    errors.install(app)
    app.include_router(routes.v1)
    app.include_router(routes_tasks.router)
    app.include_router(routes_tasks.pages)
    app.include_router(routes.ops)
    app.include_router(routes_admin.router)
    app.include_router(routes_admin.pages)
    for module in _optional_modules():
        router = getattr(module, "router", None)
        if router is not None:
            app.include_router(router)

    # added innermost first: Metrics wraps CORS wraps Guard, so refusals are counted and carry CORS headers
    app.add_middleware(
        GuardMiddleware,
        max_body_bytes=settings.api.max_body_bytes,
        api_keys=settings.api.keys(),
        limits=settings.api.limits(),
        stores=lambda: getattr(app.state, "stores", None),
        trusted_proxies=settings.api.proxies(),
        body_timeout=settings.api.body_timeout,
        metrics=metrics,
        admin_keys=settings.api.admin(),
        admin_max_body_bytes=settings.index.max_document_bytes
        + 64 * 1024,  # the file and its multipart frame
    )
    origins = settings.api.origins()
    app.add_middleware(
        CORSMiddleware,
        allow_origins=origins,
        allow_methods=["GET", "POST", "PUT", "DELETE", "OPTIONS"],
        allow_headers=["Authorization", "Content-Type"],
        expose_headers=["Retry-After"],
        max_age=600,
    )
    app.add_middleware(MetricsMiddleware, metrics=metrics)
    return app


def create_worker_app() -> FastAPI:
    """The app of one `ketluan serve --workers N` process: settings from the environment, and the index
    loaded before the worker accepts connections, so requests go to the workers that can answer them. A
    worker killed by a fatal signal (SIGBUS, SIGSEGV) logs where it was before the supervisor replaces it."""
    faulthandler.enable()
    return create_app(load_before_serving=True)


class CurrentService:
    """Stands for the ChatService of whichever index build is being served when an attribute is read."""

    def __init__(self, holder: IndexHolder) -> None:
        self._holder = holder

    def __getattr__(self, name: str) -> Any:
        return getattr(self._holder.current().service, name)


def _library(settings: Settings, holder: IndexHolder, stores: Stores) -> Any:
    """The operator's document library; its jobs embed with the served index's embedder (loaded once), and
    its job records and audit log sit on the stores' backend (Redis: shared by every host)."""
    from bot.stores.jobs import job_records
    from index.embedding import load_embedder
    from index.library import Library

    def embedder() -> Any:
        snap = holder.snapshot
        return snap.index.embedder if snap is not None else load_embedder(settings.index.embedding_model)

    def reload() -> None:
        holder.reload()

    records = job_records(stores.backend, settings.index.data_dir / "admin")
    return Library(settings.index, embedder, on_built=reload, records=records)


def _open_questions(settings: Settings, stores: Stores) -> Any:
    from bot.analytics import open_question_log

    try:
        return open_question_log(settings.bot, settings.index.data_dir, stores.backend)
    except Exception:  # a question log that cannot open never stops the service
        log.exception("question log not opened; questions are not recorded")
        return None


def _published(settings: Settings, stack: contextlib.AsyncExitStack) -> dict[str, Any]:
    """With KETLUAN_INDEX_SOURCE this host serves the published bundle it pulls (checked file by file), not
    a build of its own corpus, so the build is not judged stale against a corpus it may not have."""
    source = settings.index.index_source
    if not source:
        return {}
    from index.publish import Puller
    from index.search import open_index

    puller = Puller(source, settings.index.index_dir, settings.index.index_poll_seconds)
    puller.poll()  # before the first load, so a new host starts with the latest bundle
    puller.start()
    stack.callback(puller.stop)
    return {"opener": functools.partial(open_index, check_stale=False)}


def _chat_service(settings: Settings, questions: Any = None) -> ServiceFactory:
    from bot.answer_cache import AnswerCache, RedisAnswerCache, SQLiteAnswerCache, host_cache_path
    from bot.service import ChatService

    bot = settings.bot
    # one answer cache for every build (its keys name the build): with Redis shared by every replica, else
    # by the workers of this host through a file beside the state store
    shared: AnswerCache | None = None
    if bot.answer_cache_size > 0 and bot.redis_url:
        shared = RedisAnswerCache(
            bot.redis_url, size=bot.answer_cache_size, ttl_seconds=int(bot.answer_cache_seconds)
        )
    elif bot.answer_cache_size > 0:
        shared = SQLiteAnswerCache(host_cache_path(settings.index.data_dir),
                                   size=bot.answer_cache_size, ttl_seconds=bot.answer_cache_seconds)  # fmt: skip

    def make(index: SearchIndex, stores: Stores, llm: Any) -> Any:
        return ChatService(index, stores, bot, llm=llm, cache=shared, questions=questions)

    return make


def _build_llm(settings: Settings, http: httpx.AsyncClient) -> Any:
    if not settings.bot.llm_base_url:
        return None
    from bot.llm import LLMAnswerer

    return LLMAnswerer(settings.bot)


def _optional_modules() -> list[ModuleType]:
    found = []
    for name in _OPTIONAL_ROUTERS:
        try:
            found.append(importlib.import_module(name))
        except ModuleNotFoundError as exc:
            if exc.name != name:
                raise
    return found
