"""The administration routes of API.md (`/v1/admin/*`): documents in (upload, URL, replace, delete) as
background jobs, their status, and the document list with status. GuardMiddleware checks the admin key. A
host that pulls its index refuses changes with 409 (they belong on the build host)."""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import io
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.responses import HTMLResponse
from pydantic import BaseModel, Field, ValidationError
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile

import prompts
from api.charts import stacked_days
from api.deps import HolderDep, SettingsDep
from api.schemas import error_responses
from api.web import render_page
from bot.analytics import CHANNELS, QuestionLog, QuestionRecord
from bot.question_report import summary
from index.errors import BadQuery, IndexNotReady, NotFound, UnsupportedMedia
from index.library import Job, JobState, Library, Upload

router = APIRouter(prefix="/v1/admin", tags=["administration"], responses=error_responses(401, 404, 429))
pages = APIRouter(include_in_schema=False)


@pages.get("/admin", response_class=HTMLResponse)
def admin_page(settings: SettingsDep) -> HTMLResponse:
    """The operator console; the page asks for the admin key and keeps it for the tab only."""
    enabled = bool(settings.api.admin())
    return render_page(
        "admin.html", 200 if enabled else 404, enabled=enabled, words=prompts.table("admin_console")
    )


async def get_library(request: Request) -> Library:
    library: Library = request.app.state.library
    return library


LibraryDep = Annotated[Library, Depends(get_library)]


class UrlBody(BaseModel):
    url: str = Field(
        min_length=1, max_length=2000, description="an http(s) address of a PDF, DOCX or web page"
    )


class JobAccepted(BaseModel):
    job_id: str
    document_id: str


class JobStatus(BaseModel):
    job_id: str
    state: JobState
    progress: float = Field(ge=0, le=1)
    error: str | None
    action: str = Field(description='"add", "replace" or "remove"')
    step: str = Field(
        default="", description='"publishing" to KETLUAN_PUBLISH_TO, then "published"; "" when not published'
    )
    document_id: str


class AdminDocumentList(BaseModel):
    documents: list[dict[str, Any]] = Field(
        description='Document + {"status": "indexed" | "updating" | "removing" | "queued" | "indexing" | '
        '"failed", "sha256", "source_url", "origin": "shipped" | "upload" | "url", "error"}'
    )


def actor(request: Request) -> str:
    """Who did it, for the audit log: a short digest of the admin key, never the key."""
    key = request.headers.get("authorization", "").partition(" ")[2].strip()
    return "key:" + hashlib.sha256(key.encode()).hexdigest()[:12]


async def _upload(request: Request, library: Library) -> Upload:
    """The body's document: a multipart `file`, or JSON `{"url": …}` fetched now."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type == "multipart/form-data":
        form = await request.form(max_files=1, max_fields=5)
        file = form.get("file")
        if not isinstance(file, UploadFile):
            raise BadQuery('multipart body without a "file" part')
        data = await file.read()
        return await run_in_threadpool(library.accept, data, file.filename or "upload")
    if content_type == "application/json":
        try:
            body = UrlBody.model_validate_json(await request.body())
        except ValidationError as exc:
            raise BadQuery(f'expected {{"url": "https://…"}}: {exc.errors()[0]["msg"]}') from None
        return await run_in_threadpool(library.accept_url, body.url)
    raise UnsupportedMedia('send multipart/form-data with a "file", or application/json with a "url"')


_BODY_DOC = {
    "requestBody": {
        "content": {
            "multipart/form-data": {
                "schema": {"type": "object", "properties": {"file": {"type": "string", "format": "binary"}}}
            },
            "application/json": {"schema": UrlBody.model_json_schema()},
        }
    }
}


def _accepted(library: Library, job: Job) -> JobAccepted:
    if job.state == "queued":
        library.start(job)
    return JobAccepted(job_id=job.job_id, document_id=job.document_id)


@router.post("/documents", status_code=202, response_model=JobAccepted, openapi_extra=_BODY_DOC,
             responses=error_responses(400, 409, 413, 415), summary="Add a document (file or URL)")  # fmt: skip
async def add_document(request: Request, library: LibraryDep) -> JobAccepted:
    """Keeps the original, then indexes it in the background: poll `/v1/admin/jobs/{job_id}`. The same
    bytes as an indexed document give that document and a job that is already done."""
    await run_in_threadpool(library.check_writable)  # before the body is read
    upload = await _upload(request, library)
    job = await run_in_threadpool(library.submit_add, upload, actor(request))
    return _accepted(library, job)


@router.put("/documents/{document_id}", status_code=202, response_model=JobAccepted, openapi_extra=_BODY_DOC,
            responses=error_responses(400, 409, 413, 415), summary="Replace a document")  # fmt: skip
async def replace_document(document_id: str, request: Request, library: LibraryDep) -> JobAccepted:
    """The new text keeps the document's id; until the job is done the old text answers."""
    await run_in_threadpool(library.check_writable)  # before the body is read
    upload = await _upload(request, library)
    job = await run_in_threadpool(library.submit_add, upload, actor(request), replace=document_id)
    return _accepted(library, job)


@router.delete("/documents/{document_id}", status_code=202, response_model=JobAccepted,
               responses=error_responses(409), summary="Remove a document")  # fmt: skip
async def remove_document(document_id: str, request: Request, library: LibraryDep) -> JobAccepted:
    await run_in_threadpool(library.check_writable)
    job = await run_in_threadpool(library.submit_remove, document_id, actor(request))
    return _accepted(library, job)


@router.get("/documents", response_model=AdminDocumentList, summary="Documents with their status")
def admin_documents(library: LibraryDep, holder: HolderDep) -> AdminDocumentList:
    try:
        indexed = holder.current().index.documents
    except IndexNotReady:
        indexed = {}
    return AdminDocumentList(documents=library.documents(indexed))


@router.get("/jobs/{job_id}", response_model=JobStatus, summary="A job's state and progress")
def job_status(job_id: str, library: LibraryDep) -> JobStatus:
    job = library.job(job_id)
    return JobStatus(job_id=job.job_id, state=job.state, progress=job.progress, error=job.error,
                     action=job.action, document_id=job.document_id, step=job.step)  # fmt: skip


# --- questions asked ---------------------------------------------------------------------------------------
def get_questions(request: Request) -> QuestionLog:
    questions: QuestionLog | None = getattr(request.app.state, "questions", None)
    if questions is None:
        raise NotFound("questions are not recorded (KETLUAN_ANALYTICS_ENABLED=false)")
    return questions


QuestionsDep = Annotated[QuestionLog, Depends(get_questions)]


class QuestionFilter(BaseModel):
    answered: bool | None = None
    since: dt.date | dt.datetime | None = Field(
        default=None, description="YYYY-MM-DD or an ISO date-time (UTC)"
    )
    channel: Literal["widget", "api", "telegram", "zalo"] | None = None
    limit: int = Field(default=100, ge=1, le=10_000)

    def fetch(self, questions: QuestionLog) -> list[QuestionRecord]:
        since = self.since
        if isinstance(since, dt.datetime):
            start: float | None = (since if since.tzinfo else since.replace(tzinfo=dt.UTC)).timestamp()
        elif isinstance(since, dt.date):
            start = dt.datetime.combine(since, dt.time(), dt.UTC).timestamp()
        else:
            start = None
        return questions.questions(
            answered=self.answered, since=start, channel=self.channel, limit=self.limit
        )


class QuestionList(BaseModel):
    questions: list[dict[str, Any]] = Field(
        description='{"text", "at", "channel", "answered", "intent", "latency_ms", "feedback", "comment", '
        '"answer", "passage_ids", "user" (a salted hash), "message_id"}, newest first'
    )


@router.get("/questions", response_model=QuestionList, summary="Questions asked, newest first")
def admin_questions(questions: QuestionsDep, query: Annotated[QuestionFilter, Query()]) -> QuestionList:
    return QuestionList(questions=[r.public() for r in query.fetch(questions)])


_CSV_COLUMNS = ("at", "channel", "text", "intent", "answered", "latency_ms", "feedback", "comment", "answer",
                "passage_ids", "user")  # fmt: skip


@router.get("/questions.csv", summary="Questions asked, as CSV (UTF-8 with BOM, opens in Excel)",
            response_class=Response, responses={200: {"content": {"text/csv": {}}}})  # fmt: skip
def admin_questions_csv(questions: QuestionsDep, query: Annotated[QuestionFilter, Query()]) -> Response:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(_CSV_COLUMNS)
    for record in query.fetch(questions):
        row = record.public()
        row["passage_ids"] = " ".join(row["passage_ids"])
        writer.writerow([_cell(row[c]) for c in _CSV_COLUMNS])
    return Response("\ufeff" + out.getvalue(), media_type="text/csv; charset=utf-8",
                    headers={"Content-Disposition": 'attachment; filename="cau-hoi.csv"'})  # fmt: skip


def _cell(value: Any) -> Any:
    """A cell a spreadsheet will not run as a formula."""
    return "'" + value if isinstance(value, str) and value[:1] in ("=", "+", "-", "@") else value


@router.get("/stats", summary="The console's numbers: per day by channel, answer rate, latency, gaps")
def admin_stats(questions: QuestionsDep, days: Annotated[int, Query(ge=1, le=365)] = 30) -> dict[str, Any]:
    since = (dt.datetime.now(dt.UTC) - dt.timedelta(days=days)).timestamp()
    records = questions.questions(since=since, limit=100_000)
    report = summary(records, days)
    report["chart_svg"] = stacked_days(report["per_day"], list(CHANNELS))
    return report
