"""Hand-written directives in the shape extraction writes (directives.jsonl), for tests of the task tracker."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

from index.layout import MANIFEST, Manifest, file_entries
from index.models import Directive, Reference, Source
from index.tasks import DIRECTIVES_FILE, REFERENCES_FILE, TaskBook

KL183 = "kl183-621b55"
KL221 = "kl221-9045a8"
KL195 = "kl195-1a2b3c"


def directive(
    directive_id: str,
    passage: str,
    action: str,
    agencies: list[str],
    deadline: dt.date | None = None,
    **fields: Any,
) -> Directive:
    document_id = passage.split(".")[0]
    number = {KL183: "183-KL/TW", KL221: "221-KL/TW", KL195: "195-KL/TW"}[document_id]
    issued = {KL183: dt.date(2025, 8, 1), KL221: dt.date(2025, 11, 28), KL195: dt.date(2025, 9, 26)}
    values: dict[str, Any] = {
        "directive_id": directive_id,
        "ket_luan": number,
        "document_id": document_id,
        "issued": issued[document_id],
        "agencies": agencies,
        "action": action,
        "source": Source(file=f"{document_id}.txt", start=100, end=100 + len(action)),
        "deadline": deadline,
        "deadline_precision": "day" if deadline else None,
        "deadline_text": f"trước ngày {deadline.day}/{deadline.month}/{deadline.year}" if deadline else None,
        "passage_id": passage,
        "label": f"Kết luận {number}, {passage.split('.', 1)[1]}",
        "url": f"/documents/{document_id}#{passage}",
    }
    values.update(fields)
    return Directive(**values)


TRAINING = directive(
    "kl183-621b55.m3.d3.1.i.t1", "kl183-621b55.m3.d3.1.i",
    "Khẩn trương tiếp tục triển khai tổ chức tập huấn, bồi dưỡng chuyên môn, nghiệp vụ cho đội ngũ công chức, "
    "viên chức cấp xã", ["Bộ Nội vụ"], dt.date(2025, 8, 31), implicit_agency=True,
)  # fmt: skip
LAW_REVIEW = directive(
    "kl183-621b55.m3.d4.2.t1", "kl183-621b55.m3.d4.2",
    "khẩn trương hoàn thiện việc rà soát, tổng hợp, lấy ý kiến các bộ, ngành để đề xuất phương án hoàn thiện "
    "pháp luật", ["Bộ Tư pháp"], dt.date(2025, 9, 15),
)  # fmt: skip
REPORT = directive(
    "kl183-621b55.m9.d1.t1", "kl183-621b55.m9.d1",
    "chuẩn bị báo cáo về sắp xếp tổ chức bộ máy và vận hành chính quyền địa phương 2 cấp",
    ["Ban Tổ chức Trung ương"], dt.date(2025, 8, 25), partners=["Đảng ủy Chính phủ"], recurring="monthly",
    deadline_text="trước ngày 25 hằng tháng",
)  # fmt: skip
SCHOOLS = directive(
    "kl221-9045a8.m4.d2.t1", "kl221-9045a8.m4.d2",
    "khẩn trương sắp xếp các cơ sở giáo dục công lập cấp xã và các trạm y tế cấp xã",
    ["Các tỉnh ủy, thành ủy"], dt.date(2025, 12, 31),
    partners=["Bộ Y tế", "Bộ Giáo dục và Đào tạo", "Bộ Nội vụ"],
)  # fmt: skip
CAPACITY = directive(
    "kl183-621b55.m5.d1.t1", "kl183-621b55.m5.d1",
    "tiếp tục khẩn trương tăng cường năng lực cho cấp xã (bảo đảm cả số lượng và chất lượng)",
    ["Các tỉnh ủy, thành ủy"],
)  # fmt: skip
INSPECTION = directive(
    "kl195-1a2b3c.m2.d1.t1", "kl195-1a2b3c.m2.d1",
    "kiểm tra, giám sát việc thực hiện sắp xếp bộ máy", ["Ủy ban Kiểm tra Trung ương"], dt.date(2026, 3, 31),
    deadline_precision="month", deadline_text="trong tháng 3/2026",
)  # fmt: skip

DIRECTIVES = [TRAINING, LAW_REVIEW, REPORT, SCHOOLS, CAPACITY, INSPECTION]
REFERENCES = [
    Reference(kind="Kế hoạch", number="56-KH/BCĐ", issued=dt.date(2025, 7, 4), issuer="Ban Chỉ đạo",
              mentioned_in=["kl183-621b55.m1.d1"], mention="Kế hoạch số 56-KH/BCĐ, ngày 4/7/2025"),
    Reference(kind="Kết luận", number="192-KL/TW", issued=dt.date(2025, 9, 19), issuer="Bộ Chính trị",
              mentioned_in=["kl195-1a2b3c.m1.d1"], mention="Kết luận số 192-KL/TW (ngày 19-9-2025)"),
]  # fmt: skip
AS_OF = dt.date(2025, 9, 1)  # TRAINING and REPORT's first deadline behind, LAW_REVIEW ahead


def sample_book() -> TaskBook:
    return TaskBook(list(DIRECTIVES), list(REFERENCES))


def write_tasks(build: Path, directives: list[Directive], references: list[Reference] | None = None) -> None:
    """Put these tasks into `build` as extraction would, and record the files in its manifest (made when
    missing), so the build still reads as whole."""
    (build / DIRECTIVES_FILE).write_text("".join(d.model_dump_json() + "\n" for d in directives), "utf-8")
    (build / REFERENCES_FILE).write_text(
        "".join(r.model_dump_json() + "\n" for r in references or []), "utf-8"
    )
    path = build / MANIFEST
    if path.exists():
        manifest = Manifest.model_validate_json(path.read_text("utf-8"))
    else:
        manifest = Manifest(model="hashing-64", dim=64, fingerprint="", corpora=[], documents=0, passages=0,
                            vector_index="flat", built_at="2025-12-01T00:00:00Z")  # fmt: skip
    manifest.files = file_entries(build)
    manifest.directives, manifest.references = len(directives), len(references or [])
    path.write_text(manifest.model_dump_json(indent=1), "utf-8")


# As extraction writes "chậm nhất trước ngày 25 hằng tháng": recurring, no date of its own.
MONTHLY = directive(
    "kl183-621b55.m9.d1.t2", "kl183-621b55.m9.d1",
    "gửi báo cáo kết quả thực hiện về Ban Tổ chức Trung ương", ["Đảng ủy Chính phủ"], None,
    recurring="monthly", deadline_text="chậm nhất trước ngày 25 hằng tháng", deadline_precision="day",
)  # fmt: skip
