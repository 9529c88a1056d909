"""The task tracker over HTTP: /v1/directives (JSON, CSV, iCalendar), /v1/agencies, /v1/references, /nhiem-vu."""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Query, Request, Security
from fastapi.responses import HTMLResponse, Response
from pydantic import ValidationError

from api import exports
from api.deps import HolderDep, SettingsDep, TasksDep
from api.errors import unknown_agency_message, user_message, value_message
from api.routes import _documented_key
from api.schemas import AgencyEntry, AgencyList, DirectiveList, ReferenceList, error_responses
from api.web import render_page
from index.errors import BadQuery, IndexNotReady
from index.tasks import TaskBook, TaskQuery, UnknownAgency, status_of, today

FILTERS = ("agency", "ket_luan", "due_after", "due_before", "status", "as_of", "q")
_CSV: dict[int | str, dict[str, Any]] = {
    200: {"content": {"text/csv": {}}, "description": "UTF-8 with BOM, Vietnamese column headings"}
}
_ICS: dict[int | str, dict[str, Any]] = {
    200: {"content": {"text/calendar": {}}, "description": "one all-day VEVENT per deadline"}
}

router = APIRouter(
    prefix="/v1",
    tags=["tasks"],
    dependencies=[Security(_documented_key)],
    responses=error_responses(401, 429, 503),
)
pages = APIRouter(include_in_schema=False)
QueryDep = Annotated[TaskQuery, Query()]


def _download(body: bytes, media_type: str, filename: str) -> Response:
    return Response(body, media_type=media_type,
                    headers={"Content-Disposition": f'attachment; filename="{filename}"'})  # fmt: skip


def _filter_text(tasks: TaskBook, query: TaskQuery) -> str:
    """What the filter keeps, for a calendar's name: "Bộ Nội vụ · 183-KL/TW"."""
    parts = [tasks.canonical_agency(query.agency) if query.agency else "", query.ket_luan or ""]
    if query.status:
        parts.append(exports.status_word(query.status).lower())
    return " · ".join(p for p in parts if p)


@router.get(
    "/directives",
    summary="Tasks the Kết luận assign, filtered, by deadline",
    response_model=DirectiveList,
    responses=error_responses(400, 404, 422),
)
def list_directives(query: QueryDep, tasks: TasksDep) -> DirectiveList:
    """Every filter is optional; together they narrow the list (AND). `agency` takes any name or
    abbreviation, with or without accents; an unknown one is a 404 whose `error.suggestions` lists the
    closest known agencies. `status` is judged on `as_of` (default: today in Asia/Ho_Chi_Minh)."""
    return DirectiveList(directives=tasks.query(query))


@router.get(
    "/directives.csv",
    summary="The same tasks as a CSV file for Excel",
    response_class=Response,
    responses={**_CSV, **error_responses(400, 404, 422)},
)
def directives_csv(query: QueryDep, tasks: TasksDep, settings: SettingsDep) -> Response:
    """Same filters as `/v1/directives`; UTF-8 with BOM, one row per task, the clause link absolute
    (from KETLUAN_PUBLIC_URL)."""
    body = exports.to_csv(
        tasks.query(query), public_url=settings.bot.public_url, as_of=query.as_of or today()
    )
    return _download(body, exports.CSV_MEDIA_TYPE, "nhiem-vu.csv")


@router.get(
    "/directives.ics",
    summary="The same tasks as an iCalendar feed to subscribe to",
    response_class=Response,
    responses={**_ICS, **error_responses(400, 404, 422)},
)
def directives_ics(query: QueryDep, tasks: TasksDep, settings: SettingsDep) -> Response:
    """Same filters as `/v1/directives`; one all-day event per deadline (recurring ones repeat), with the
    action, the agencies and the clause link. Event UIDs are stable, so subscribed calendars update."""
    directives = tasks.query(query)
    name = exports.calendar_name(_filter_text(tasks, query))
    body = exports.to_ics(directives, public_url=settings.bot.public_url, name=name)
    return _download(body, exports.ICS_MEDIA_TYPE, "nhiem-vu.ics")


@router.get("/agencies", summary="Agencies the tasks name", response_model=AgencyList)
def list_agencies(tasks: TasksDep) -> AgencyList:
    """Canonical names with the aliases the `agency` filter accepts and how many tasks name each."""
    return AgencyList(
        agencies=[
            AgencyEntry(name=a.name, aliases=list(a.aliases), directives=a.directives)
            for a in tasks.agencies()
        ]
    )


@router.get("/references", summary="Documents the Kết luận refer to", response_model=ReferenceList)
def list_references(tasks: TasksDep) -> ReferenceList:
    """Kết luận, Nghị quyết, Quy định, Kế hoạch … mentioned in the corpus, with the passages that do."""
    return ReferenceList(references=tasks.references)


# --- the page ------------------------------------------------------------------------------------
async def page_tasks(holder: HolderDep) -> TaskBook | None:
    """The tasks of the build being served, None while it loads (the page says so). Tests override this."""
    try:
        return holder.current().index.tasks
    except IndexNotReady:
        return None


PageTasksDep = Annotated[TaskBook | None, Depends(page_tasks)]


def _query_string(values: dict[str, str], **changes: str) -> str:
    merged = {**values, **changes}
    return urlencode({k: v for k in FILTERS if (v := merged.get(k, "").strip())})


@pages.get("/nhiem-vu", response_class=HTMLResponse)
def tasks_page(request: Request, tasks: PageTasksDep) -> HTMLResponse:
    if tasks is None:
        message = user_message("index_not_ready")
        return render_page("message.html", 503, request, title="Hệ thống đang khởi động", message=message)
    values = {k: request.query_params.get(k, "")[:200] for k in FILTERS}
    error, suggestions, status_code = "", [], 200
    directives: list[Any] = []
    as_of = today()
    try:
        query = TaskQuery.model_validate(values)
        as_of = query.as_of or as_of
        directives = tasks.query(query)
    except ValidationError as exc:
        error, status_code = value_message(exc.errors()[0]) or user_message("validation_error"), 422
    except UnknownAgency as exc:
        error, suggestions, status_code = unknown_agency_message(exc), exc.suggestions, 404
    except BadQuery:
        error, status_code = user_message("bad_request"), 400
    qs = _query_string(values)
    return render_page(
        "nhiem_vu.html",
        status_code,
        request,
        rows=[(d, status_of(d, as_of)) for d in directives],
        total=len(tasks.directives),
        agencies=tasks.agencies(),
        ket_luans=tasks.ket_luans(),
        values=values,
        as_of=as_of,
        today=today(),
        filtered=any(values[k] for k in FILTERS if k != "as_of"),
        error=error,
        suggestions=[(name, "/nhiem-vu?" + _query_string(values, agency=name)) for name in suggestions],
        csv_url="/v1/directives.csv" + ("?" + qs if qs else ""),
        ics_url="/v1/directives.ics" + ("?" + qs if qs else ""),
        words=exports.words(),
    )
