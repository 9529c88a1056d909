"""Exceptions → the JSON error shape of API.md: one table of statuses and Vietnamese messages, one handler."""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Mapping
from functools import cache
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

import prompts
from index.errors import (
    BadCorpus,
    BadDocument,
    BadQuery,
    DocumentTooLarge,
    EmbedderUnavailable,
    IndexNotReady,
    KetLuanError,
    NoEvidence,
    NotFound,
    PulledIndex,
    UnsupportedMedia,
    UpstreamError,
)
from index.tasks import UnknownAgency

log = logging.getLogger(__name__)


class Unauthorized(KetLuanError):
    """No `Authorization: Bearer KEY` header, or a key that is not configured."""

    code = "unauthorized"


class Forbidden(KetLuanError):
    """An admin route called from where it is not allowed."""

    code = "forbidden"


class TooLarge(KetLuanError):
    """A request body above the configured limit."""

    code = "too_large"


class RateLimited(KetLuanError):
    """A client above its request budget; `retry_after` seconds until the next request is allowed."""

    code = "rate_limited"

    def __init__(self, message: str, retry_after: float) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class NotReady(KetLuanError):
    """A dependency the service needs (the conversation store) does not answer."""

    code = "not_ready"


# code → HTTP status; the Vietnamese message for end users comes from prompts/http_errors.txt
_STATUS: dict[str, int] = {
    BadQuery.code: 400,
    "invalid_json": 400,
    Unauthorized.code: 401,
    Forbidden.code: 403,
    NotFound.code: 404,
    UnknownAgency.code: 404,
    "method_not_allowed": 405,
    PulledIndex.code: 409,
    TooLarge.code: 413,
    DocumentTooLarge.code: 413,
    UnsupportedMedia.code: 415,
    BadDocument.code: 400,
    "validation_error": 422,
    NoEvidence.code: 422,
    RateLimited.code: 429,
    "internal_error": 500,
    BadCorpus.code: 500,
    UpstreamError.code: 502,
    IndexNotReady.code: 503,
    EmbedderUnavailable.code: 503,
    NotReady.code: 503,
}
_HTTP_CODES = {404: NotFound.code, 405: "method_not_allowed", 413: TooLarge.code, 401: Unauthorized.code}


@cache
def _messages() -> dict[str, str]:
    table: dict[str, str] = {}
    for line in prompts.load("http_errors").splitlines():
        if line.strip() and not line.startswith("#"):
            code, _, message = line.partition(":")
            table[code.strip()] = message.strip()
    return table


def user_message(code: str, **values: object) -> str:
    """The Vietnamese message for `code` (the generic one for an unknown code)."""
    messages = _messages()
    text = messages.get(code, messages["internal_error"])
    try:
        return text.format(**values)
    except (KeyError, IndexError):  # a placeholder the caller did not fill: drop the sentence's detail
        return text.split("{")[0].rstrip() or messages["internal_error"]


_ABSOLUTE_PATH = re.compile(r"(?<![\w.:/])/(?:[^\s/'\"():,;]+/)+([^\s/'\"():,;]*)")


def public_detail(detail: str | None) -> str | None:
    """A detail fit for a response: absolute server paths cut to their last part (the log has them whole)."""
    return None if detail is None else _ABSOLUTE_PATH.sub(lambda m: "…/" + m.group(1), detail)


def status_of(code: str) -> int:
    return _STATUS.get(code, 500)


def error_response(
    code: str,
    detail: str | None = None,
    *,
    message: str | None = None,
    headers: Mapping[str, str] | None = None,
    extra: Mapping[str, Any] | None = None,
) -> JSONResponse:
    """`{"error": {"code", "message", "detail"?, …extra}}` with the status of `code`; message in Vietnamese."""
    body: dict[str, Any] = {"code": code, "message": message or user_message(code)}
    if detail and detail != body["message"]:
        body["detail"] = detail
    body.update(extra or {})
    return JSONResponse({"error": body}, status_code=status_of(code), headers=headers)


def to_response(exc: Exception) -> JSONResponse:
    """The one mapping of every exception the service can meet to its HTTP response."""
    if isinstance(exc, RateLimited):
        wait = max(1, math.ceil(exc.retry_after))
        return error_response(
            exc.code,
            exc.message,
            message=user_message(exc.code, seconds=wait),
            headers={"Retry-After": str(wait)},
        )
    if isinstance(exc, Unauthorized):
        return error_response(exc.code, exc.message, headers={"WWW-Authenticate": "Bearer"})
    if isinstance(exc, UnknownAgency):
        return error_response(
            exc.code, exc.message, message=unknown_agency_message(exc), extra={"suggestions": exc.suggestions}
        )
    if isinstance(exc, KetLuanError):
        if status_of(exc.code) >= 500 and status_of(exc.code) != 503:  # 503 is routine while loading
            log.warning("%s: %s", exc.code, exc.message)
        server_side = status_of(exc.code) >= 500  # its detail may name server paths: those stay in the log
        return error_response(exc.code, public_detail(exc.message) if server_side else exc.message)
    if isinstance(exc, RequestValidationError):
        return _validation_response(exc)
    if isinstance(exc, HTTPException):
        code = _HTTP_CODES.get(exc.status_code)
        if code is None:
            body = {"code": "http_error", "message": str(exc.detail)}
            return JSONResponse({"error": body}, status_code=exc.status_code, headers=exc.headers)
        return error_response(code, str(exc.detail), headers=exc.headers)
    # ServerErrorMiddleware re-raises after this response, so the server logs the traceback once.
    return error_response("internal_error")


async def handle_error(request: Request, exc: Exception) -> JSONResponse:
    return to_response(exc)


def install(app: FastAPI) -> None:
    """Register the one handler for every kind of exception the app maps to an HTTP status."""
    for kind in (KetLuanError, RequestValidationError, HTTPException, Exception):
        app.add_exception_handler(kind, handle_error)


def unknown_agency_message(exc: UnknownAgency) -> str:
    """The Vietnamese message naming the closest known agencies (the page and the CLI say it too)."""
    if not exc.suggestions:
        return user_message("unknown_agency_none", name=exc.name)
    return user_message("unknown_agency", name=exc.name, suggestions=", ".join(exc.suggestions))


def _validation_response(exc: RequestValidationError) -> JSONResponse:
    errors = exc.errors()
    if any(e.get("type") == "json_invalid" for e in errors):
        return error_response("invalid_json", "request body is not valid JSON")
    first = errors[0] if errors else {}
    detail = "; ".join(f"{_field(e) or 'body'}: {e.get('msg', '')}" for e in errors)
    message = _validation_message(_field(first), first.get("type", ""), first.get("ctx") or {})
    if (input_message := value_message(first)) is not None:
        message = input_message
    return error_response("validation_error", detail, message=message)


def value_message(error: Any, shown: str | None = None) -> str | None:
    """A message that repeats the bad value, for a malformed date, a value outside a fixed list, or a value
    a field-specific message covers (`invalid_{field}`). `shown` names the field as the user wrote it."""
    kind, value = str(error.get("type", "")), error.get("input")
    field = ".".join(str(p) for p in error.get("loc", ()) if p not in ("body", "query", "path"))
    if not isinstance(value, str) or not field:
        return None
    shown = shown or field
    if kind.startswith(("date_", "datetime_")):
        return user_message("invalid_date", field=shown, value=value[:40])
    if kind == "value_error" and f"invalid_{field}" in _messages():
        return user_message(f"invalid_{field}", value=value[:40])
    if kind in ("literal_error", "enum"):
        choices = str((error.get("ctx") or {}).get("expected", "")).replace("'", "").replace(" or ", ", ")
        return user_message("invalid_choice", field=shown, value=value[:40], choices=choices)
    return None


def _field(error: Any) -> str:
    return ".".join(str(p) for p in error.get("loc", ()) if p != "body")


def _validation_message(field: str, kind: str, ctx: dict[str, Any]) -> str:
    if field == "message" and kind in ("string_too_short", "missing"):
        return user_message("empty_message")
    if field == "message" and kind == "string_too_long":
        return user_message("message_too_long", limit=ctx.get("max_length", ""))
    if kind == "missing" and field:
        return user_message("missing_field", field=field)
    if field:
        return user_message("invalid_field", field=field)
    return user_message("validation_error")
