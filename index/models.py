"""The one domain model of the service: documents and their passages, as API.md shapes them."""

from __future__ import annotations

import datetime as dt
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

PassageKind = Literal["metadata", "preamble", "paragraph", "item", "signature", "heading"]


class Source(BaseModel):
    """Where a passage stands: character offsets into the source file's text (Python str indices)."""

    model_config = ConfigDict(frozen=True)

    file: str = Field(description="source file name, relative to its corpus folder")
    start: int = Field(ge=0)
    end: int = Field(ge=0)


class Passage(BaseModel):
    """One paragraph or one list item of one document, verbatim, with a human citation label."""

    model_config = ConfigDict(frozen=True)

    passage_id: str
    document_id: str
    document_title: str
    ket_luan: str | None = Field(default=None, description='e.g. "183-KL/TW"; null for other documents')
    issued: dt.date | None = None
    label: str = Field(description='human citation, e.g. "Kết luận 183-KL/TW, mục 3, đoạn 2"')
    text: str = Field(description="the paragraph exactly as it stands in the source")
    source: Source
    url: str
    score: float = 0.0
    kind: PassageKind = "paragraph"
    context: str = Field(
        default="",
        description="headings and lead-in text of the enclosing list, used for retrieval but never quoted",
    )

    def with_score(self, score: float) -> Passage:
        return self.model_copy(update={"score": float(score)})


class Document(BaseModel):
    """One source file read as one document, with what its header or lead says about it."""

    model_config = ConfigDict(frozen=True)

    document_id: str
    title: str
    ket_luan: str | None = None
    issued: dt.date | None = None
    signer: str | None = None
    source_file: str
    passage_count: int = 0
    report: str | None = Field(default=None, description='the report it answers, e.g. "428-BC/BTCTW"')
    kind: Literal["ket_luan", "law", "text"] = "text"
    official: bool = Field(
        default=False, description="true for the official full text, false for a press report"
    )
    corpus: str = Field(default="", description="name of the corpus folder the file came from")
