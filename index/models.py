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
    source_url: str | None = Field(default=None, description="the web address it was fetched from, if any")
    sha256: str | None = Field(default=None, description="sha256 of the original file as uploaded or fetched")
    scanned: bool = Field(default=False, description="true when some of its text was recognised from a scan")


DeadlinePrecision = Literal["day", "week", "month", "year"]


class TaskLink(BaseModel):
    """The same task (the same lead agency, nearly the same words) as another Kết luận gives it."""

    model_config = ConfigDict(frozen=True)

    directive_id: str
    ket_luan: str
    issued: dt.date | None = None
    deadline: dt.date | None = None
    deadline_text: str | None = None
    recurring: str | None = None
    moved: bool = Field(description="true when both Kết luận set a deadline and they differ")
    label: str
    url: str


class Directive(BaseModel):
    """One task a Kết luận assigns: who (chủ trì / phối hợp), what (a verbatim span), by when."""

    model_config = ConfigDict(frozen=True)

    directive_id: str = Field(description="stable across rebuilds: derived from the passage id and position")
    ket_luan: str
    document_id: str
    issued: dt.date | None = None
    agencies: list[str] = Field(default_factory=list, description="responsible (chủ trì), canonical names")
    partners: list[str] = Field(default_factory=list, description="co-ordinating (phối hợp), canonical names")
    action: str = Field(description="verbatim span of the source")
    source: Source = Field(description="offsets of `action` in the source file")
    deadline: dt.date | None = None
    deadline_precision: DeadlinePrecision | None = None
    deadline_text: str | None = Field(default=None, description="the deadline as written, verbatim")
    recurring: str | None = Field(default=None, description='e.g. "monthly" for "trước ngày 25 hằng tháng"')
    passage_id: str
    label: str
    url: str
    also_in: list[str] = Field(
        default_factory=list, description="passage ids of the same task in another text of the same Kết luận"
    )
    verb: str | None = Field(
        default=None, description="the directive verb: giao, yêu cầu, chỉ đạo, đề nghị …"
    )
    implicit_agency: bool = Field(
        default=False, description="the agency is taken from the enclosing mục or item head, not the sentence"
    )
    also_sources: list[Source] = Field(
        default_factory=list, description="offsets of the same task's action in the texts of `also_in`"
    )
    earlier: list[TaskLink] = Field(
        default_factory=list,
        description="the same task as earlier Kết luận gave it, oldest first: this one repeats it or moves its "
        "deadline",
    )
    later: list[TaskLink] = Field(
        default_factory=list,
        description="the same task repeated by later Kết luận, oldest first, with the deadline each gives",
    )


class Reference(BaseModel):
    """A document a Kết luận mentions: Kế hoạch số 56-KH/BCĐ, Kết luận số 192-KL/TW (ngày 19-9-2025) …"""

    model_config = ConfigDict(frozen=True)

    kind: str = Field(description="Kết luận, Nghị quyết, Quy định, Quyết định, Kế hoạch, Chỉ thị, Báo cáo …")
    number: str = Field(description='normalised, e.g. "192-KL/TW", "56-KH/BCĐ"; "" for Hội nghị Trung ương')
    issued: dt.date | None = None
    issuer: str | None = None
    mentioned_in: list[str] = Field(default_factory=list, description="passage ids")
    mention: str = Field(default="", description="the first mention as written, verbatim")
    title: str | None = Field(default=None, description="what the mention says the document is about")
