"""TaskBook (index/tasks.py) over hand-written directives, and tasks as LangChain Documents."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from index.langchain import KetLuanTaskLoader, KetLuanTaskRetriever, directive_document
from index.language.dates import recurring_day
from index.tasks import (
    DIRECTIVES_FILE,
    REFERENCES_FILE,
    TaskBook,
    TaskQuery,
    UnknownAgency,
    first_due,
    status_of,
)
from tests.task_fixtures import (
    AS_OF,
    CAPACITY,
    DIRECTIVES,
    INSPECTION,
    LAW_REVIEW,
    MONTHLY,
    REFERENCES,
    REPORT,
    SCHOOLS,
    TRAINING,
    sample_book,
)


def ids(directives: list[Any]) -> list[str]:
    return [d.directive_id for d in directives]


@pytest.fixture()
def book() -> TaskBook:
    return sample_book()


@pytest.mark.parametrize(
    ("filters", "expected"),
    [
        ({}, [REPORT, TRAINING, LAW_REVIEW, SCHOOLS, INSPECTION, CAPACITY]),
        ({"agency": "Bộ Nội vụ"}, [TRAINING, SCHOOLS]),
        ({"agency": "bo noi vu"}, [TRAINING, SCHOOLS]),
        ({"agency": "BNV"}, [TRAINING, SCHOOLS]),
        ({"agency": "BỘ NỘI VỤ"}, [TRAINING, SCHOOLS]),
        ({"agency": "Bộ Nội vụ", "role": "lead"}, [TRAINING]),
        ({"agency": "Bộ Nội vụ", "role": "partner"}, [SCHOOLS]),
        ({"agency": "các tỉnh uỷ, thành uỷ"}, [SCHOOLS, CAPACITY]),
        ({"agency": "UBKTTW"}, [INSPECTION]),
        ({"agency": "Bộ Tài chính"}, []),  # known, but assigned nothing
        ({"ket_luan": "221"}, [SCHOOLS]),
        ({"ket_luan": "183-KL/TW"}, [REPORT, TRAINING, LAW_REVIEW, CAPACITY]),
        ({"due_after": dt.date(2025, 9, 1)}, [LAW_REVIEW, SCHOOLS, INSPECTION]),
        ({"due_before": dt.date(2025, 8, 31)}, [REPORT, TRAINING]),
        ({"due_after": dt.date(2025, 9, 1), "due_before": dt.date(2025, 12, 31)}, [LAW_REVIEW, SCHOOLS]),
        ({"status": "overdue", "as_of": AS_OF}, [TRAINING]),
        ({"status": "upcoming", "as_of": AS_OF}, [REPORT, LAW_REVIEW, SCHOOLS, INSPECTION]),
        ({"status": "no_deadline", "as_of": AS_OF}, [CAPACITY]),
        ({"status": "overdue", "as_of": dt.date(2026, 6, 1)}, [TRAINING, LAW_REVIEW, SCHOOLS, INSPECTION]),
        ({"q": "tram y te"}, [SCHOOLS]),
        ({"q": "khẩn trương cấp xã"}, [TRAINING, SCHOOLS, CAPACITY]),
        ({"agency": "Bộ Nội vụ", "q": "y tế", "ket_luan": "221"}, [SCHOOLS]),
    ],
)
def test_query_filters_combine_and_sort_by_deadline(
    book: TaskBook, filters: dict[str, Any], expected: list[Any]
) -> None:
    assert ids(book.query(TaskQuery(**filters))) == ids(expected)


@pytest.mark.parametrize(
    ("directive", "as_of", "status"),
    [
        (TRAINING, dt.date(2025, 8, 31), "upcoming"),  # the deadline day itself is still in time
        (TRAINING, dt.date(2025, 9, 1), "overdue"),
        (REPORT, dt.date(2030, 1, 1), "upcoming"),  # a monthly deadline always has a next time
        (CAPACITY, dt.date(2025, 1, 1), "no_deadline"),
    ],
)
def test_status_of(directive: Any, as_of: dt.date, status: str) -> None:
    assert status_of(directive, as_of) == status


def test_unknown_agency_names_the_closest_known_ones(book: TaskBook) -> None:
    with pytest.raises(UnknownAgency) as caught:
        book.query(TaskQuery(agency="Bộ Nội"))
    assert caught.value.suggestions[0] == "Bộ Nội vụ"
    assert len(caught.value.suggestions) <= 3
    assert caught.value.code == "unknown_agency"


def test_agencies_found_only_by_extraction_are_matched_and_suggested() -> None:
    extra = TRAINING.model_copy(update={"directive_id": "x", "agencies": ["Ban Quản lý dự án"]})
    book = TaskBook([*DIRECTIVES, extra], [])
    assert ids(book.query(TaskQuery(agency="ban quan ly du an"))) == ["x"]
    with pytest.raises(UnknownAgency) as caught:
        book.query(TaskQuery(agency="Ban Quản lý"))
    assert "Ban Quản lý dự án" in caught.value.suggestions


@pytest.mark.parametrize(
    ("field", "value"),
    [("due_after", "2025-13-01"), ("due_before", "31/12/2025"), ("as_of", "hôm nay"), ("status", "late"),
     ("ket_luan", "abc"), ("ket_luan", "¹"), ("ket_luan", "18³"), ("ket_luan", "99999"), ("agency", "x" * 201)],
)  # fmt: skip
def test_malformed_filters_are_refused(field: str, value: str) -> None:
    with pytest.raises(ValidationError) as caught:
        TaskQuery.model_validate({field: value})
    assert caught.value.errors()[0]["loc"] == (field,)


def test_blank_filters_are_absent() -> None:
    query = TaskQuery.model_validate({k: " " for k in ("agency", "ket_luan", "due_after", "status", "q")})
    assert query == TaskQuery()
    assert not query.is_filtered()
    assert TaskQuery(q="y tế").is_filtered()


def test_empty_book_gives_empty_lists(tmp_path: Path) -> None:
    book = TaskBook.load(tmp_path)  # a build without extraction files
    assert book.query(TaskQuery(status="overdue")) == []
    assert book.agencies() == [] and book.ket_luans() == [] and book.references == []


def test_load_reads_the_build_files(tmp_path: Path) -> None:
    (tmp_path / DIRECTIVES_FILE).write_text("".join(d.model_dump_json() + "\n" for d in DIRECTIVES), "utf-8")
    (tmp_path / REFERENCES_FILE).write_text("".join(r.model_dump_json() + "\n" for r in REFERENCES), "utf-8")
    book = TaskBook.load(tmp_path)
    assert book.directives == DIRECTIVES and book.references == REFERENCES


def test_agencies_count_leads_and_partners_in_vietnamese_order(book: TaskBook) -> None:
    agencies = {a.name: a for a in book.agencies()}
    assert agencies["Bộ Nội vụ"].directives == 2  # lead once, partner once
    assert "BNV" in agencies["Bộ Nội vụ"].aliases
    names = [a.name for a in book.agencies()]
    assert names.index("Đảng ủy Chính phủ") < names.index("Ủy ban Kiểm tra Trung ương")
    assert names.index("Bộ Y tế") < names.index("Đảng ủy Chính phủ")


def test_ket_luans_newest_number_first(book: TaskBook) -> None:
    assert book.ket_luans() == ["221-KL/TW", "195-KL/TW", "183-KL/TW"]


# --- LangChain ----------------------------------------------------------------------------------------
def test_directive_document_keeps_the_action_verbatim_and_the_directive_as_metadata() -> None:
    doc = directive_document(SCHOOLS)
    assert doc.page_content == SCHOOLS.action
    assert doc.id == SCHOOLS.directive_id
    assert doc.metadata["partners"] == SCHOOLS.partners
    assert doc.metadata["deadline"] == "2025-12-31"
    assert doc.metadata["url"] == SCHOOLS.url


def test_loader_applies_the_query(book: TaskBook) -> None:
    docs = KetLuanTaskLoader(book, TaskQuery(agency="BNV")).load()
    assert [d.id for d in docs] == ids([TRAINING, SCHOOLS])
    assert len(KetLuanTaskLoader(book).load()) == len(DIRECTIVES)


@pytest.mark.parametrize(
    ("question", "filters", "expected"),
    [
        ("sắp xếp trạm y tế cấp xã", None, SCHOOLS.directive_id),
        ("Ban Tổ chức Trung ương báo cáo gì hằng tháng", None, REPORT.directive_id),
        ("tập huấn công chức", TaskQuery(agency="Bộ Nội vụ"), TRAINING.directive_id),
    ],
)
def test_task_retriever_ranks_by_shared_words(
    book: TaskBook, question: str, filters: TaskQuery | None, expected: str
) -> None:
    docs = KetLuanTaskRetriever(book=book, filters=filters, k=3).invoke(question)
    assert docs[0].id == expected
    assert len(docs) <= 3


def test_task_retriever_with_filters_never_leaves_them(book: TaskBook) -> None:
    docs = KetLuanTaskRetriever(book=book, filters=TaskQuery(ket_luan="221")).invoke("cấp xã")
    assert {d.metadata["ket_luan"] for d in docs} == {"221-KL/TW"}
    assert KetLuanTaskRetriever(book=book, k=2).invoke("")[0].id == REPORT.directive_id


# --- recurring deadlines ------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "day"),
    [
        ("chậm nhất trước ngày 25 hằng tháng", 25),
        ("trước ngày 5 hàng tháng", 5),
        ("vào ngày 20 của tháng cuối hằng quý", 20),
        ("trước ngày 31/8/2025", None),
        ("ngày 40 hằng tháng", None),
        ("", None),
    ],
)
def test_recurring_day(text: str, day: int | None) -> None:
    assert recurring_day(text) == day


@pytest.mark.parametrize(
    ("recurring", "text", "issued", "first"),
    [
        ("monthly", "chậm nhất trước ngày 25 hằng tháng", dt.date(2025, 8, 1), dt.date(2025, 8, 25)),
        ("monthly", "chậm nhất trước ngày 25 hằng tháng", dt.date(2025, 8, 25), dt.date(2025, 8, 25)),
        ("monthly", "chậm nhất trước ngày 25 hằng tháng", dt.date(2025, 12, 26), dt.date(2026, 1, 25)),
        ("monthly", "trước ngày 31 hằng tháng", dt.date(2025, 2, 1), dt.date(2025, 2, 28)),
        ("quarterly", "ngày 20 của tháng cuối hằng quý", dt.date(2025, 8, 1), dt.date(2025, 9, 20)),
        ("quarterly", "ngày 20 của tháng cuối hằng quý", dt.date(2025, 9, 21), dt.date(2025, 12, 20)),
        ("quarterly", "ngày 20 của tháng cuối hằng quý", dt.date(2025, 12, 21), dt.date(2026, 3, 20)),
        ("monthly", "hằng tháng", dt.date(2025, 8, 1), None),  # no day written: no date to put it on
    ],
)
def test_first_due_of_a_recurring_deadline(
    recurring: str, text: str, issued: dt.date, first: dt.date | None
) -> None:
    task = MONTHLY.model_copy(update={"recurring": recurring, "deadline_text": text, "issued": issued})
    assert first_due(task) == first


def test_first_due_is_the_deadline_when_there_is_one() -> None:
    assert first_due(REPORT) == REPORT.deadline
    assert first_due(TRAINING) == TRAINING.deadline
    assert first_due(CAPACITY) is None
    assert first_due(MONTHLY.model_copy(update={"issued": None})) is None
