"""HTTP request/response bodies of API.md: thin wrappers around the domain models, with OpenAPI examples."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from bot.models import ChatResponse
from index.models import Directive, Document, Passage, Reference
from index.search import MAX_QUERY_CHARS, SearchFilters

_PASSAGE_EXAMPLE: dict[str, Any] = {
    "passage_id": "kl221-9045a8.m4.d2",
    "document_id": "kl221-9045a8",
    "document_title": "Kết luận 221-KL/TW về tình hình, kết quả hoạt động của bộ máy hệ thống chính trị và "
    "chính quyền địa phương 2 cấp",
    "ket_luan": "221-KL/TW",
    "issued": "2025-11-28",
    "label": "Kết luận 221-KL/TW, mục 4, đoạn 2",
    "text": "Yêu cầu các cấp uỷ, cơ quan, đơn vị, địa phương đẩy mạnh việc rà soát, sắp xếp tổ chức bộ máy "
    "bên trong, khẩn trương hoàn thành việc sắp xếp các đơn vị sự nghiệp công lập theo yêu cầu, tiến độ. …",
    "source": {"file": "001_32125652a63c81a5.txt", "start": 3093, "end": 3546},
    "url": "/documents/kl221-9045a8#kl221-9045a8.m4.d2",
    "score": 0.016393,
}

CHAT_RESPONSE_EXAMPLE: dict[str, Any] = {
    "conversation_id": "c_Vd3kq0oS2m9Yw1xZ",
    "message_id": "m_8f2a0c7e51b4",
    "answer": "Các tỉnh uỷ, thành uỷ phải hoàn thành dứt điểm việc sắp xếp các cơ sở giáo dục công lập "
    "cấp xã và các trạm y tế cấp xã trước ngày 31/12/2025 [1].",
    "answered": True,
    "citations": [{**_PASSAGE_EXAMPLE, "n": 1}],
    "mode": "extractive",
    "latency_ms": 42.7,
}

_DOCUMENT_EXAMPLE: dict[str, Any] = {
    "document_id": "kl183-621b55",
    "title": "Kết luận 183-KL/TW về tích cực triển khai vận hành mô hình chính quyền địa phương 2 cấp, …",
    "ket_luan": "183-KL/TW",
    "issued": "2025-08-01",
    "signer": "Trần Cẩm Tú",
    "source_file": "000_5d30afc99b18f1f4.txt",
    "passage_count": 25,
}


class ChatRequest(BaseModel):
    """One user message; send the `conversation_id` of a previous answer to ask a follow-up."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {"message": "Kết luận 221 yêu cầu hoàn thành sắp xếp trường học cấp xã khi nào?"},
                {"message": "Còn trạm y tế thì sao?", "conversation_id": "c_Vd3kq0oS2m9Yw1xZ"},
                {"message": "Nhiệm vụ của cấp xã là gì?", "filters": {"ket_luan": ["183-KL/TW"]}},
            ]
        },
    )

    message: str = Field(min_length=1, max_length=MAX_QUERY_CHARS, description="the question, in Vietnamese")
    conversation_id: str | None = Field(
        default=None, max_length=200, description="continue this conversation; null starts a new one"
    )
    filters: SearchFilters | None = Field(
        default=None, description="restrict the evidence, e.g. to a Kết luận"
    )


class SearchRequest(BaseModel):
    """A retrieval query: ranked passages, no answer."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {"query": "sắp xếp trạm y tế cấp xã", "k": 3},
                {"query": "chính quyền địa phương 2 cấp", "k": 5, "filters": {"ket_luan": ["183"]}},
            ]
        },
    )

    query: str = Field(min_length=1, max_length=MAX_QUERY_CHARS, description="what to look for")
    k: int = Field(default=5, ge=1, le=100, description="number of passages")
    filters: SearchFilters | None = None


class SearchResponse(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{"results": [_PASSAGE_EXAMPLE]}]})

    results: list[Passage] = Field(description="best first")


class DocumentList(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{"documents": [_DOCUMENT_EXAMPLE]}]})

    documents: list[Document]


class DocumentDetail(Document):
    """A document with its passages in reading order."""

    model_config = ConfigDict(
        json_schema_extra={"examples": [{**_DOCUMENT_EXAMPLE, "passages": [_PASSAGE_EXAMPLE]}]}
    )

    passages: list[Passage]


class FeedbackRequest(BaseModel):
    """A thumbs up or down on one answer."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "conversation_id": "c_Vd3kq0oS2m9Yw1xZ",
                    "message_id": "m_8f2a0c7e51b4",
                    "rating": "down",
                    "comment": "Thiếu mốc thời gian.",
                }
            ]
        },
    )

    conversation_id: str = Field(min_length=1, max_length=200)
    message_id: str = Field(min_length=1, max_length=200)
    rating: Literal["up", "down"]
    comment: str | None = Field(default=None, max_length=2000)


class ErrorBody(BaseModel):
    code: str = Field(description="stable machine-readable name, e.g. index_not_ready")
    message: str = Field(description="for end users, in Vietnamese")
    detail: str | None = Field(default=None, description="technical reason, for developers")


class ErrorResponse(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "error": {
                        "code": "index_not_ready",
                        "message": "Hệ thống đang nạp dữ liệu văn bản. Vui lòng thử lại sau ít phút.",
                        "detail": "index is loading",
                    }
                }
            ]
        }
    )

    error: ErrorBody


class Health(BaseModel):
    status: Literal["ok"] = "ok"


class Readiness(BaseModel):
    status: Literal["ready", "degraded"] = Field(
        default="ready", description="`degraded`: answering, but see `degraded` for what is wrong"
    )
    degraded: list[str] = Field(
        default_factory=list,
        description="reason codes: state_reset, state_not_writable, redis_unavailable (details in the log)",
    )
    build: str = Field(description="name of the loaded index build")
    documents: int
    passages: int
    model: str = Field(description="embedding model of the build")
    mode: Literal["extractive", "llm"] = Field(description="how /v1/chat answers")
    reload_error: str | None = Field(
        default=None,
        description="why the newest index build could not replace the served one, if it could not",
    )


# --- tasks (the Kết luận as data) -----------------------------------------------------------------
_DIRECTIVE_EXAMPLE: dict[str, Any] = {
    "directive_id": "kl183-621b55.m3.d3.1.i.t1",
    "ket_luan": "183-KL/TW",
    "document_id": "kl183-621b55",
    "issued": "2025-08-01",
    "agencies": ["Bộ Nội vụ"],
    "partners": [],
    "action": "Khẩn trương tiếp tục triển khai tổ chức tập huấn, bồi dưỡng chuyên môn, nghiệp vụ cho đội "
    "ngũ công chức, viên chức cấp xã; xây dựng bộ công cụ đánh giá hiệu quả công việc",
    "source": {"file": "000_5d30afc99b18f1f4.txt", "start": 3842, "end": 4026},
    "deadline": "2025-08-31",
    "deadline_precision": "day",
    "deadline_text": "trước ngày 31/8/2025",
    "recurring": None,
    "passage_id": "kl183-621b55.m3.d3.1.i",
    "label": "Kết luận 183-KL/TW, mục 3, đoạn 3, ý (1)(i)",
    "url": "/documents/kl183-621b55#kl183-621b55.m3.d3.1.i",
    "also_in": [],
}


class DirectiveList(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{"directives": [_DIRECTIVE_EXAMPLE]}]})

    directives: list[Directive] = Field(description="by deadline, those without one last")


class AgencyEntry(BaseModel):
    name: str = Field(description="canonical name, as the documents write it")
    aliases: list[str] = Field(description="other ways to write it that the agency filter accepts")
    directives: int = Field(description="tasks that name it as lead or partner")


class AgencyList(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"agencies": [{"name": "Bộ Nội vụ", "aliases": ["BNV"], "directives": 4}]}]
        }
    )

    agencies: list[AgencyEntry]


class ReferenceList(BaseModel):
    references: list[Reference]


def error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses=` entries for the error statuses a route can return."""
    return {status: {"model": ErrorResponse} for status in statuses}


__all__ = [
    "CHAT_RESPONSE_EXAMPLE",
    "AgencyEntry",
    "AgencyList",
    "ChatRequest",
    "ChatResponse",
    "DirectiveList",
    "DocumentDetail",
    "DocumentList",
    "ErrorResponse",
    "FeedbackRequest",
    "Health",
    "Readiness",
    "ReferenceList",
    "SearchRequest",
    "SearchResponse",
    "error_responses",
]
