"""The HTTP routes of API.md: /v1/* (chat, stream, search, documents, feedback, admin) and operations."""

from __future__ import annotations

import ipaddress
import json
from collections.abc import AsyncIterator
from typing import Any

from fastapi import APIRouter, Request, Response, Security
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic_core import to_jsonable_python
from sse_starlette import EventSourceResponse
from starlette.concurrency import run_in_threadpool

from api.deps import HolderDep, IndexDep, LLMEnabledDep, MetricsDep, ServiceDep, SettingsDep, StoresDep
from api.errors import Forbidden, public_detail
from api.schemas import (
    CHAT_RESPONSE_EXAMPLE,
    ChatRequest,
    ChatResponse,
    DocumentDetail,
    DocumentList,
    FeedbackRequest,
    Health,
    Readiness,
    SearchRequest,
    SearchResponse,
    error_responses,
)
from bot.analytics import set_asker
from index.errors import KetLuanError

# The key itself is checked by GuardMiddleware (before the body is read); this only documents it in OpenAPI.
_bearer = HTTPBearer(auto_error=False, description="one of KETLUAN_API_KEYS, when that is set")


async def _documented_key(_: HTTPAuthorizationCredentials | None = Security(_bearer)) -> None:
    return None


v1 = APIRouter(
    prefix="/v1", dependencies=[Security(_documented_key)], responses=error_responses(401, 429, 503)
)
ops = APIRouter(tags=["operations"])


# --- chat ----------------------------------------------------------------------------------------
@v1.post(
    "/chat",
    tags=["chat"],
    summary="Ask a question, get a cited answer",
    response_model=ChatResponse,
    responses={
        200: {"content": {"application/json": {"example": CHAT_RESPONSE_EXAMPLE}}},
        **error_responses(400, 404, 413, 422),
    },
)
async def chat(body: ChatRequest, request: Request, service: ServiceDep, reply: Response) -> Any:
    """Answers in Vietnamese from the Kết luận, every claim marked `[n]` with the cited passage in
    `citations`. `answered` is false (and `citations` empty) when the documents do not support an answer.
    Send back the returned `conversation_id` to ask a follow-up question. The `X-Index-Version` header
    names the index build the answer came from."""
    _version_header(reply, service)
    _asker(request)
    # the metrics and the LLM switch straight from app.state: FastAPI resolves every dependency on every
    # request, and this is the route that takes the traffic
    state = request.app.state
    if getattr(state, "llm", None) is not None:
        response = await service.answer_async(body.message, body.conversation_id, body.filters)
    else:  # extractive answers are CPU work: in the threadpool, never on the event loop
        response = await run_in_threadpool(service.answer, body.message, body.conversation_id, body.filters)
    state.metrics.observe_answer(response.mode, response.answered)
    return response


_SSE_EXAMPLE = (
    'event: token\ndata: {"text": "Các tỉnh uỷ, thành uỷ phải hoàn thành "}\n\n'
    'event: token\ndata: {"text": "… trước ngày 31/12/2025 [1]."}\n\n'
    'event: citations\ndata: [{"n": 1, "passage_id": "kl221-9045a8.m4.d2", "…": "…"}]\n\n'
    'event: done\ndata: {"conversation_id": "c_Vd3kq0oS2m9Yw1xZ", "answer": "…", "…": "…"}\n\n'
)


@v1.post(
    "/chat/stream",
    tags=["chat"],
    summary="Ask a question, stream the answer (Server-Sent Events)",
    response_class=EventSourceResponse,
    responses={
        200: {"content": {"text/event-stream": {"example": _SSE_EXAMPLE}}, "description": "an event stream"},
        **error_responses(400, 404, 413, 422),
    },
)
async def chat_stream(
    body: ChatRequest, request: Request, service: ServiceDep, metrics: MetricsDep
) -> EventSourceResponse:
    """Same request as `/v1/chat`. Events, in order: `token` (`{"text": …}`, the answer text piece by
    piece), then one `citations` (`[Citation…]`), then one `done` (the full ChatResponse). A failure after
    the stream started arrives as one `error` event (`{"code", "message"}`)."""
    _asker(request)
    events = aiter(service.stream(body.message, body.conversation_id, body.filters))
    try:
        first = await anext(events)  # bad input fails here, before the 200 is sent, as a JSON error
    except StopAsyncIteration:
        first = None

    async def frames() -> AsyncIterator[dict[str, str]]:
        event = first
        try:
            while event is not None:
                yield {"event": event.event, "data": _json(event.data)}
                if event.event == "done":
                    data = event.data if isinstance(event.data, dict) else to_jsonable_python(event.data)
                    metrics.observe_answer(str(data.get("mode", "")), bool(data.get("answered")))
                event = await anext(events, None)
        except KetLuanError as exc:
            yield {"event": "error", "data": _json({"code": exc.code, "message": exc.message})}

    reply = EventSourceResponse(frames(), ping=15)
    _version_header(reply, service)
    return reply


def _version_header(reply: Response, service: Any) -> None:
    version = getattr(getattr(service, "index", None), "version", None)
    if isinstance(version, str):
        reply.headers["X-Index-Version"] = version


def _asker(request: Request) -> None:
    """Questions from here are recorded as the widget's (a browser sends Origin) or the API's, the asker as a
    salted hash of the client's address."""
    questions = getattr(request.app.state, "questions", None)
    if questions is None:
        return
    channel = "widget" if request.headers.get("origin") else "api"
    set_asker(channel, request.client.host if request.client else None, questions.salt)


def _json(data: Any) -> str:
    return json.dumps(to_jsonable_python(data), ensure_ascii=False)


# --- retrieval and documents ---------------------------------------------------------------------
@v1.post(
    "/search",
    tags=["search"],
    summary="Ranked passages for a query",
    response_model=SearchResponse,
    responses=error_responses(400, 413, 422),
)
def search(body: SearchRequest, service: ServiceDep) -> SearchResponse:
    """Hybrid (dense + BM25) retrieval over every passage, best first; no answer is written. The query is
    read like a question ("Kết luận 183 …" filters on 183-KL/TW), as the chat reads it."""
    return SearchResponse(
        results=service.index.search(service.search_query(body.query, body.filters), body.k)
    )


@v1.get("/documents", tags=["documents"], summary="Every indexed document", response_model=DocumentList)
async def list_documents(index: IndexDep) -> DocumentList:
    """The documents of the corpus with their Kết luận number, date, signer and passage count."""
    return DocumentList(documents=list(index.documents.values()))


@v1.get(
    "/documents/{document_id}",
    tags=["documents"],
    summary="One document with its passages in reading order",
    response_model=DocumentDetail,
    responses=error_responses(404),
)
async def get_document(document_id: str, index: IndexDep) -> DocumentDetail:
    """A passage's `url` (`/documents/{document_id}#{passage_id}`) points at the HTML view of this."""
    document = index.document(document_id)
    return DocumentDetail(**dict(document), passages=index.passages_of(document_id))


# --- feedback and administration -----------------------------------------------------------------
@v1.post(
    "/feedback",
    tags=["chat"],
    summary="Rate an answer",
    status_code=204,
    response_class=Response,
    responses=error_responses(404, 422),
)
def feedback(body: FeedbackRequest, service: ServiceDep, metrics: MetricsDep) -> Response:
    """Stores a thumbs up or down (and an optional comment) on one answer of one conversation."""
    service.feedback(body.conversation_id, body.message_id, body.rating, body.comment)
    metrics.feedback.labels(body.rating).inc()
    return Response(status_code=204)


@v1.post(
    "/admin/reload",
    tags=["operations"],
    summary="Load the index build `current` points at now",
    response_model=Readiness,
    responses=error_responses(403),
)
def reload_index(request: Request, holder: HolderDep, settings: SettingsDep, llm: LLMEnabledDep) -> Readiness:
    """Swaps to the newest build with no failed request (the old one answers until the new one is loaded).
    Needs an API key when KETLUAN_API_KEYS is set, else a loopback client. The server also notices a new
    build by itself within a second of `ketluan index` finishing."""
    client = request.client.host if request.client else ""
    if not settings.api.keys() and not settings.api.admin() and not _is_loopback(client):
        raise Forbidden("admin routes need KETLUAN_API_KEYS set, or a loopback client")
    holder.reload()
    return _readiness(holder, llm)


def _is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host in ("localhost", "testclient")


# --- operations ----------------------------------------------------------------------------------
@ops.get("/healthz", summary="Liveness", response_model=Health)
async def healthz() -> Health:
    """200 while the process serves HTTP, even before the index is loaded."""
    return Health()


@ops.get("/readyz", summary="Readiness", response_model=Readiness, responses=error_responses(503))
def readyz(holder: HolderDep, stores: StoresDep, llm: LLMEnabledDep) -> Readiness:
    """503 with the reason (`error.detail`) until the index is loaded; a corrupt or stale index keeps it 503
    until `ketluan index` rebuilds it. 200 with `status: degraded` and reason codes when the service answers
    but cannot keep state as it should (the state store is reset, not writable, or Redis is down): the
    backend writes a probe row on every call, so a full disk shows here."""
    readiness = _readiness(holder, llm)
    problems = stores.backend.health()
    if problems:
        return readiness.model_copy(update={"status": "degraded", "degraded": problems})
    return readiness


def _readiness(holder: Any, llm: bool) -> Readiness:
    snap = holder.current()  # IndexNotReady while there is none; a damaged build is replaced first
    return Readiness(
        build=snap.build.name, documents=len(snap.index.documents), passages=len(snap.index.passages),
        model=snap.index.manifest.model, mode="llm" if llm else "extractive",
        reload_error=public_detail(holder.reload_error),
    )  # fmt: skip


@ops.get(
    "/metrics",
    summary="Prometheus metrics",
    response_class=Response,
    responses={200: {"content": {"text/plain": {}}, "description": "Prometheus text exposition format"}},
)
async def metrics(m: MetricsDep) -> Response:
    """Requests by route and status, latencies, answers by mode, index size, readiness."""
    return Response(m.render(), media_type=m.content_type)
