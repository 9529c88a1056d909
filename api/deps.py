"""What routes receive: the things the lifespan built, as Annotated dependencies tests can override."""

from __future__ import annotations

from typing import Annotated

import httpx
from fastapi import Depends, Request
from starlette.concurrency import run_in_threadpool

from api.holder import IndexHolder, Snapshot
from api.metrics import Metrics
from api.settings import Settings
from bot.service import ChatService
from bot.stores import Stores
from index.search import SearchIndex
from index.tasks import TaskBook

# All `async def`: they only read app.state, and a sync dependency would cost a threadpool hop per request.


async def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


async def get_holder(request: Request) -> IndexHolder:
    holder: IndexHolder = request.app.state.index_holder
    return holder


async def get_metrics(request: Request) -> Metrics:
    metrics: Metrics = request.app.state.metrics
    return metrics


async def get_snapshot(request: Request) -> Snapshot:
    """The loaded build for this request; IndexNotReady (503) while loading or after a failed load. A build
    damaged under the server is swapped for the last whole one off the event loop. (The holder is read from
    app.state here rather than through `get_holder`: one dependency less on every /v1 request.)"""
    holder: IndexHolder = request.app.state.index_holder
    snapshot = holder.current_if_whole()
    return snapshot if snapshot is not None else await run_in_threadpool(holder.current)


async def get_index(snapshot: Annotated[Snapshot, Depends(get_snapshot)]) -> SearchIndex:
    return snapshot.index


async def get_service(snapshot: Annotated[Snapshot, Depends(get_snapshot)]) -> ChatService:
    """The ChatService answering from this request's index build."""
    service: ChatService = snapshot.service
    return service


async def get_tasks(index: Annotated[SearchIndex, Depends(get_index)]) -> TaskBook:
    """The tasks and references extracted by this request's index build (empty for an older build)."""
    return index.tasks


async def get_stores(request: Request) -> Stores:
    """The state stores (conversations, feedback, dedupe, rate limits) on their SQLite or Redis backend."""
    stores: Stores = request.app.state.stores
    return stores


async def get_http(request: Request) -> httpx.AsyncClient:
    client: httpx.AsyncClient = request.app.state.http
    return client


async def get_llm_enabled(request: Request) -> bool:
    return getattr(request.app.state, "llm", None) is not None


SettingsDep = Annotated[Settings, Depends(get_settings)]
HolderDep = Annotated[IndexHolder, Depends(get_holder)]
MetricsDep = Annotated[Metrics, Depends(get_metrics)]
IndexDep = Annotated[SearchIndex, Depends(get_index)]
ServiceDep = Annotated[ChatService, Depends(get_service)]
TasksDep = Annotated[TaskBook, Depends(get_tasks)]
StoresDep = Annotated[Stores, Depends(get_stores)]
HttpDep = Annotated[httpx.AsyncClient, Depends(get_http)]
LLMEnabledDep = Annotated[bool, Depends(get_llm_enabled)]
