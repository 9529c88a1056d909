"""A made-up Kết luận written for the tests (never a question or passage of data/eval), cut into passages."""

from __future__ import annotations

import datetime as dt

from bot.models import Citation
from index.models import Passage, Source

FILE = "901_handmade.txt"
LINES = [
    "Kết luận số 901-KL/TW, ngày 5/3/2026 của Bộ Chính trị về quản lý quỹ đất công.",
    "1. Giao Bộ Tài chính chủ trì, phối hợp với Bộ Nội vụ hoàn thiện quy chế quản lý quỹ đất công, "
    "hoàn thành trước ngày 30/6/2026.",
    "2. Các tỉnh ủy, thành ủy phối hợp Bộ Y tế rà soát mạng lưới bệnh viện tuyến huyện, xong trước ngày "
    "15/9/2026.",
    "3. Không cần lập ban chỉ đạo mới; Đảng ủy Chính phủ gửi báo cáo kết quả chậm nhất ngày 20 hằng tháng.",
    "4. Kết luận này thay thế Kết luận số 850-KL/TW; tổng số 120 đơn vị phải hoàn thành trong tháng 11/2026.",
    "5. Hỗ trợ 902 hộ dân tái định cư tại khu vực ven biển.",
    "6. Bộ Y tế chủ trì, phối hợp với Bộ Tài chính rà soát danh mục thuốc; Bộ Tài chính chủ trì bố trí kinh "
    "phí mua thuốc.",
]
SOURCE = "\n\n".join(LINES) + "\n"


def passage(
    i: int, *, ket_luan: str | None = "901-KL/TW", issued: dt.date | None = dt.date(2026, 3, 5)
) -> Passage:
    """Line `i` of SOURCE as a passage, its offsets true."""
    text = LINES[i]
    start = SOURCE.index(text)
    return Passage(
        passage_id=f"kl901.p{i}", document_id="kl901", document_title="Kết luận 901-KL/TW",
        ket_luan=ket_luan, issued=issued, label=f"Kết luận 901-KL/TW, mục {i}", text=text,
        source=Source(file=FILE, start=start, end=start + len(text)), url=f"/documents/kl901#kl901.p{i}",
    )  # fmt: skip


def citation(i: int, n: int) -> Citation:
    return Citation(**passage(i).model_dump(), n=n)


def read_source(file: str) -> str:
    if file != FILE:
        raise FileNotFoundError(file)
    return SOURCE
