"""The task tracker's HTTP side (api/routes_tasks.py): filters, errors, CSV and iCalendar read back, the page."""

from __future__ import annotations

import csv
import datetime as dt
import html
import io
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from fastapi.testclient import TestClient
from icalendar import Calendar

from api import deps, routes_tasks
from api.app import create_app
from api.settings import Settings
from bot.settings import BotSettings
from bot.stores import sqlite_stores
from index import tasks as tasks_module
from index.build import build_index
from index.embedding import HashingEmbedder
from index.models import Directive
from index.search import SearchIndex
from index.settings import IndexSettings
from index.tasks import TaskBook, first_due
from tests.api.conftest import FakeChatService, make_settings
from tests.api.test_web import Elements
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
    write_tasks,
)

PUBLIC = "https://ketluan.example.vn"
ROUTES = ("/v1/directives", "/v1/directives.csv", "/v1/directives.ics")


def _settings(tmp_path: Path, **api: Any) -> Settings:
    settings = make_settings(IndexSettings(data_dir=tmp_path, embedding_model="hashing-64"), **api)
    bot = BotSettings(llm_base_url=None, redis_url=None, public_url=PUBLIC + "/")
    return Settings(settings.index, bot, settings.api, settings.telegram, settings.zalo)


def _client(tmp_path: Path, book: TaskBook | None, **api: Any) -> TestClient:
    app = create_app(_settings(tmp_path, **api), stores=sqlite_stores(":memory:"))
    if book is not None:
        app.dependency_overrides[deps.get_tasks] = lambda: book
        app.dependency_overrides[routes_tasks.page_tasks] = lambda: book
    return TestClient(app)


@pytest.fixture()
def client(tmp_path: Path) -> Iterator[TestClient]:
    with _client(tmp_path, sample_book()) as c:
        yield c


def ids(items: list[Any]) -> list[str]:
    return [d["directive_id"] if isinstance(d, dict) else d.directive_id for d in items]


def _error(response: Any, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"} and body["error"]["code"] == code
    return dict(body["error"])


# --- JSON --------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({}, [REPORT, TRAINING, LAW_REVIEW, SCHOOLS, INSPECTION, CAPACITY]),
        ({"agency": "bộ nội vụ"}, [TRAINING, SCHOOLS]),
        ({"agency": "BO NOI VU"}, [TRAINING, SCHOOLS]),
        ({"agency": "BNV", "role": "partner"}, [SCHOOLS]),
        ({"agency": "Đảng uỷ CP"}, [REPORT]),
        ({"ket_luan": "221-KL/TW"}, [SCHOOLS]),
        ({"ket_luan": "183"}, [REPORT, TRAINING, LAW_REVIEW, CAPACITY]),
        ({"due_after": "2025-09-01"}, [LAW_REVIEW, SCHOOLS, INSPECTION]),
        ({"due_before": "2025-08-31"}, [REPORT, TRAINING]),
        ({"due_after": "2025-09-01", "due_before": "2025-12-31"}, [LAW_REVIEW, SCHOOLS]),
        ({"status": "overdue", "as_of": "2025-09-01"}, [TRAINING]),
        ({"status": "upcoming", "as_of": "2025-09-01"}, [REPORT, LAW_REVIEW, SCHOOLS, INSPECTION]),
        ({"status": "no_deadline"}, [CAPACITY]),
        ({"q": "trạm y tế"}, [SCHOOLS]),
        ({"q": "TAP HUAN"}, [TRAINING]),
        ({"agency": "", "due_after": "", "status": ""}, [REPORT, TRAINING, LAW_REVIEW, SCHOOLS, INSPECTION,
                                                         CAPACITY]),  # an empty form field is no filter
    ],
)  # fmt: skip
def test_directives_filters(client: TestClient, params: dict[str, str], expected: list[Directive]) -> None:
    r = client.get("/v1/directives", params=params)
    assert r.status_code == 200, r.text
    body = r.json()
    assert set(body) == {"directives"}
    assert ids(body["directives"]) == ids(expected)
    assert [Directive.model_validate(d) for d in body["directives"]] == expected


def test_status_defaults_to_today_in_vietnam(client: TestClient, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tasks_module, "today", lambda: AS_OF)
    r = client.get("/v1/directives", params={"status": "overdue"})
    assert ids(r.json()["directives"]) == [TRAINING.directive_id]
    monkeypatch.setattr(tasks_module, "today", lambda: dt.date(2025, 8, 1))
    assert client.get("/v1/directives", params={"status": "overdue"}).json() == {"directives": []}


def test_today_is_the_date_in_ho_chi_minh_city() -> None:
    assert tasks_module.today() == dt.datetime.now(dt.timezone(dt.timedelta(hours=7))).date()


@pytest.mark.parametrize("route", ROUTES)
def test_unknown_agency_is_404_naming_the_closest(client: TestClient, route: str) -> None:
    error = _error(client.get(route, params={"agency": "Bo Noi"}), 404, "unknown_agency")
    assert error["suggestions"][0] == "Bộ Nội vụ"
    assert "Bo Noi" in error["message"] and "Bộ Nội vụ" in error["message"]
    assert error["message"].startswith("Không tìm thấy cơ quan")


@pytest.mark.parametrize("route", ROUTES)
@pytest.mark.parametrize(
    ("field", "value"), [("due_after", "31/12/2025"), ("due_before", "2025-02-30"), ("as_of", "mai")]
)
def test_malformed_date_is_422_in_vietnamese(client: TestClient, route: str, field: str, value: str) -> None:
    error = _error(client.get(route, params={field: value}), 422, "validation_error")
    assert f'Ngày "{value}" ở trường {field} không hợp lệ' in error["message"]
    assert "YYYY-MM-DD" in error["message"]


@pytest.mark.parametrize(
    ("params", "words"),
    [
        ({"status": "late"}, ["late", "overdue, upcoming, no_deadline"]),
        ({"ket_luan": "KL/TW"}, ["KL/TW", "183-KL/TW"]),
        ({"ket_luan": "¹"}, ["¹", "183-KL/TW"]),
        ({"ket_luan": "18³"}, ["18³", "183-KL/TW"]),  # found by the schema fuzz: was a 500
        ({"role": "boss"}, ["boss", "any, lead, partner"]),
    ],
)
def test_other_bad_filters_are_422_saying_why(
    client: TestClient, params: dict[str, str], words: list[str]
) -> None:
    error = _error(client.get("/v1/directives", params=params), 422, "validation_error")
    assert all(w in error["message"] for w in words), error["message"]


def test_empty_corpus_gives_empty_lists_not_errors(tmp_path: Path) -> None:
    with _client(tmp_path, TaskBook([], [])) as c:
        assert c.get("/v1/directives", params={"status": "overdue"}).json() == {"directives": []}
        assert c.get("/v1/agencies").json() == {"agencies": []}
        assert c.get("/v1/references").json() == {"references": []}
        rows = list(csv.reader(io.StringIO(c.get("/v1/directives.csv").content.decode("utf-8-sig"))))
        assert len(rows) == 1  # the headings
        assert Calendar.from_ical(c.get("/v1/directives.ics").content).events == []
        # a known agency with no task in this corpus is an empty list too, not a 404
        assert c.get("/v1/directives", params={"agency": "Bộ Nội vụ"}).json() == {"directives": []}


def test_agencies_and_references(client: TestClient) -> None:
    agencies = client.get("/v1/agencies").json()["agencies"]
    by_name = {a["name"]: a for a in agencies}
    assert set(agencies[0]) == {"name", "aliases", "directives"}
    assert by_name["Bộ Nội vụ"]["directives"] == 2 and "BNV" in by_name["Bộ Nội vụ"]["aliases"]
    assert by_name["Các tỉnh ủy, thành ủy"]["directives"] == 2
    references = client.get("/v1/references").json()["references"]
    assert [r["number"] for r in references] == [r.number for r in REFERENCES]
    assert {"kind", "number", "issued", "issuer", "mentioned_in"} <= set(references[0])


# --- CSV ---------------------------------------------------------------------------------------------
def _csv_rows(response: Any) -> list[dict[str, str]]:
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "text/csv; charset=utf-8"
    assert 'filename="nhiem-vu.csv"' in response.headers["content-disposition"]
    assert response.content.startswith(b"\xef\xbb\xbf")  # the BOM Excel needs to read UTF-8
    return list(csv.DictReader(io.StringIO(response.content.decode("utf-8-sig"), newline="")))


def test_csv_reads_back_with_vietnamese_intact(client: TestClient) -> None:
    rows = _csv_rows(client.get("/v1/directives.csv", params={"as_of": "2025-09-01"}))
    assert [r["Mã nhiệm vụ"] for r in rows] == ids(
        [REPORT, TRAINING, LAW_REVIEW, SCHOOLS, INSPECTION, CAPACITY]
    )
    schools = rows[3]
    assert schools["Nhiệm vụ"] == SCHOOLS.action
    assert schools["Cơ quan chủ trì"] == "Các tỉnh ủy, thành ủy"
    assert schools["Cơ quan phối hợp"] == "Bộ Y tế; Bộ Giáo dục và Đào tạo; Bộ Nội vụ"
    assert (
        schools["Hạn hoàn thành"] == "2025-12-31" and schools["Hạn (nguyên văn)"] == "trước ngày 31/12/2025"
    )
    assert schools["Kết luận"] == "221-KL/TW" and schools["Trích dẫn"] == SCHOOLS.label
    assert schools["Liên kết đến điều khoản"] == PUBLIC + SCHOOLS.url
    assert [r["Tình trạng"] for r in rows] == ["Còn hạn", "Quá hạn", "Còn hạn", "Còn hạn", "Còn hạn",
                                                "Không có hạn"]  # fmt: skip
    assert rows[0]["Định kỳ"] == "hằng tháng"
    assert rows[-1]["Hạn hoàn thành"] == ""


def test_csv_applies_the_filters(client: TestClient) -> None:
    rows = _csv_rows(client.get("/v1/directives.csv", params={"agency": "BNV", "ket_luan": "183"}))
    assert [r["Mã nhiệm vụ"] for r in rows] == [TRAINING.directive_id]


def test_csv_cells_never_start_a_formula(tmp_path: Path) -> None:
    evil = TRAINING.model_copy(update={"action": '=HYPERLINK("http://x")', "label": "-1+2"})
    with _client(tmp_path, TaskBook([evil], [])) as c:
        row = _csv_rows(c.get("/v1/directives.csv"))[0]
    assert row["Nhiệm vụ"] == '\'=HYPERLINK("http://x")'
    assert row["Trích dẫn"] == "'-1+2"


# --- iCalendar ---------------------------------------------------------------------------------------
def _calendar(response: Any) -> Calendar:
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "text/calendar; charset=utf-8"
    return Calendar.from_ical(response.content)


def test_ics_one_all_day_event_per_deadline(client: TestClient) -> None:
    cal = _calendar(client.get("/v1/directives.ics"))
    assert str(cal["VERSION"]) == "2.0" and "Ket luan" in str(cal["PRODID"])
    assert str(cal["X-WR-TIMEZONE"]) == "Asia/Ho_Chi_Minh"
    assert str(cal["X-WR-CALNAME"]) == "Nhiệm vụ theo các Kết luận"
    events = {str(e["UID"]): e for e in cal.events}
    with_deadline = [d for d in DIRECTIVES if d.deadline]
    assert set(events) == {f"{d.directive_id}@ketluan" for d in with_deadline}  # CAPACITY has no date
    for d in with_deadline:
        event = events[f"{d.directive_id}@ketluan"]
        assert event.decoded("DTSTART") == d.deadline  # a date, not a datetime: an all-day event
        assert not isinstance(event.decoded("DTSTART"), dt.datetime)
        assert event.decoded("DTEND") == d.deadline + dt.timedelta(days=1)
        assert str(event["URL"]) == PUBLIC + d.url
        description = str(event["DESCRIPTION"])
        assert d.action in description and PUBLIC + d.url in description and d.label in description
        summary = str(event["SUMMARY"])
        assert summary.startswith(", ".join(d.agencies) + ": ")
        assert summary.split(": ", 1)[1].rstrip("…")[:40] == " ".join(d.action.split())[:40]
    schools = str(events[f"{SCHOOLS.directive_id}@ketluan"]["DESCRIPTION"])
    assert "Phối hợp: Bộ Y tế, Bộ Giáo dục và Đào tạo, Bộ Nội vụ" in schools
    report = events[f"{REPORT.directive_id}@ketluan"]
    assert report["RRULE"]["FREQ"] == ["MONTHLY"]
    assert "RRULE" not in events[f"{TRAINING.directive_id}@ketluan"]


def test_ics_recurring_deadline_without_a_date_repeats_from_its_first_day(tmp_path: Path) -> None:
    with _client(tmp_path, TaskBook([MONTHLY, CAPACITY], [])) as c:
        (event,) = _calendar(c.get("/v1/directives.ics")).events
    assert str(event["UID"]) == f"{MONTHLY.directive_id}@ketluan"
    assert event.decoded("DTSTART") == dt.date(2025, 8, 25)  # the first 25th after 183-KL/TW (1/8/2025)
    assert event["RRULE"]["FREQ"] == ["MONTHLY"]
    assert "chậm nhất trước ngày 25 hằng tháng" in str(event["DESCRIPTION"])


def test_ics_uids_are_stable_and_follow_the_filter(client: TestClient) -> None:
    first = [str(e["UID"]) for e in _calendar(client.get("/v1/directives.ics")).events]
    again = [str(e["UID"]) for e in _calendar(client.get("/v1/directives.ics")).events]
    assert first == again and len(set(first)) == len(first)
    cal = _calendar(client.get("/v1/directives.ics", params={"agency": "bo noi vu", "ket_luan": "183"}))
    assert [str(e["UID"]) for e in cal.events] == [f"{TRAINING.directive_id}@ketluan"]
    assert str(cal["X-WR-CALNAME"]) == "Nhiệm vụ theo các Kết luận · Bộ Nội vụ · 183"


# --- keys, readiness and the real wiring -------------------------------------------------------------
@pytest.mark.parametrize("route", [*ROUTES, "/v1/agencies", "/v1/references"])
def test_api_keys_guard_the_task_routes(tmp_path: Path, route: str) -> None:
    with _client(tmp_path, sample_book(), api_keys="k1,k2") as c:
        _error(c.get(route), 401, "unauthorized")
        _error(c.get(route, headers={"Authorization": "Bearer nope"}), 401, "unauthorized")
        assert c.get(route, headers={"Authorization": "Bearer k2"}).status_code == 200
        assert c.get("/nhiem-vu").status_code == 200  # the page is public, like /documents


def test_not_ready_is_503(tmp_path: Path) -> None:
    with _client(tmp_path, None) as c:  # an empty data dir: no index to load
        _error(c.get("/v1/directives"), 503, "index_not_ready")
        page = c.get("/nhiem-vu")
        assert page.status_code == 503 and "đang nạp dữ liệu" in page.text


def test_served_build_tasks_come_from_its_directives_file(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    shutil.copy(Path(__file__).resolve().parents[2] / "data" / "corpus" / "000_5d30afc99b18f1f4.txt", corpus)
    build_index([corpus], settings.index.index_dir, HashingEmbedder(64), progress=False, log=lambda _: None)
    write_tasks((settings.index.index_dir / "current").resolve(), [TRAINING])
    app = create_app(settings, stores=sqlite_stores(":memory:"), load_before_serving=True)
    with TestClient(app) as c:
        assert ids(c.get("/v1/directives").json()["directives"]) == [TRAINING.directive_id]
        assert c.get("/v1/agencies").json()["agencies"][0]["name"] == "Bộ Nội vụ"
        assert TRAINING.action in c.get("/nhiem-vu").text


def test_openapi_documents_the_task_routes(client: TestClient) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    for route in (*ROUTES, "/v1/agencies", "/v1/references"):
        assert paths[route]["get"]["tags"] == ["tasks"]
    names = {p["name"] for p in paths["/v1/directives"]["get"]["parameters"]}
    assert {"agency", "ket_luan", "due_after", "due_before", "status", "as_of", "q"} <= names
    assert "/nhiem-vu" not in paths


# --- the page, server-rendered -----------------------------------------------------------------------
def _rows(html: str) -> list[str]:
    return [
        a["id"][len("task-") :] for a in Elements(html).find("tr") if (a.get("id") or "").startswith("task-")
    ]


def test_page_lists_every_task_by_deadline_with_links_to_clauses(client: TestClient) -> None:
    r = client.get("/nhiem-vu")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    assert r.headers["content-security-policy"].startswith("default-src 'self'")
    page = Elements(r.text)
    assert _rows(r.text) == ids([REPORT, TRAINING, LAW_REVIEW, SCHOOLS, INSPECTION, CAPACITY])
    hrefs = {a.get("href") for a in page.find("a")}
    # each link opens its paragraph with the task's own clause marked (?hl= its offsets)
    assert {
        f"{d.url.split('#')[0]}?hl={d.source.start}-{d.source.end}#{d.url.split('#')[1]}" for d in DIRECTIVES
    } <= hrefs
    assert page.find("a", href="/nhiem-vu", **{"aria-current": "page"})  # in the site navigation
    headers = [a for a in page.find("th") if a.get("scope") == "col"]
    assert len(headers) == 5
    for field in ("f-agency", "f-ket-luan", "f-status", "f-due-after", "f-due-before", "f-q"):
        assert page.find("label", **{"for": field}) and page.find("input", id=field) + page.find(
            "select", id=field
        )
    options = {a.get("value") for a in page.find("option")}
    assert {"Bộ Nội vụ", "Các tỉnh ủy, thành ủy", "221-KL/TW", "overdue"} <= options
    assert not any(src.startswith("http") for _, a in page.tags for src in [a.get("src") or ""])


def test_page_filters_and_export_links_carry_the_filter(client: TestClient) -> None:
    params = {"agency": "bo noi vu", "ket_luan": "", "due_before": "2025-12-31", "status": "", "q": ""}
    r = client.get("/nhiem-vu", params=params)
    assert _rows(r.text) == ids([TRAINING, SCHOOLS])
    page = Elements(r.text)
    assert page.find("input", id="f-agency")[0]["value"] == "bo noi vu"
    links = {a.get("href") or "" for a in page.find("a", **{"class": "export"})}
    by_path = {urlsplit(h).path: parse_qs(urlsplit(h).query) for h in links}
    expected = {"agency": ["bo noi vu"], "due_before": ["2025-12-31"]}
    assert by_path == {"/v1/directives.ics": expected, "/v1/directives.csv": expected}
    assert "2 / 6 nhiệm vụ khớp bộ lọc" in " ".join(" ".join(page.text).split())


def test_page_status_badges_follow_as_of(client: TestClient) -> None:
    r = client.get("/nhiem-vu", params={"status": "overdue", "as_of": "2025-09-01"})
    assert _rows(r.text) == [TRAINING.directive_id]
    assert "Quá hạn" in r.text and "01/09/2025" in r.text


def test_page_unknown_agency_suggests_the_closest(client: TestClient) -> None:
    r = client.get("/nhiem-vu", params={"agency": "Bo Noi", "status": "overdue"})
    assert r.status_code == 404
    assert _rows(r.text) == []
    assert "Không tìm thấy cơ quan" in r.text
    suggestion = [
        a["href"] for a in Elements(r.text).find("a") if (a.get("href") or "").startswith("/nhiem-vu?")
    ]
    assert parse_qs(urlsplit(suggestion[0]).query) == {"agency": ["Bộ Nội vụ"], "status": ["overdue"]}


def test_page_malformed_date_says_so(client: TestClient) -> None:
    r = client.get("/nhiem-vu", params={"due_after": "31/12/2025"})
    assert r.status_code == 422
    assert 'Ngày "31/12/2025" ở trường due_after không hợp lệ' in html.unescape(r.text)


def test_page_empty_corpus(tmp_path: Path) -> None:
    with _client(tmp_path, TaskBook([], [])) as c:
        r = c.get("/nhiem-vu")
    assert r.status_code == 200
    assert _rows(r.text) == [] and "Chưa có nhiệm vụ nào" in r.text


# --- the shipped corpus, extracted for real ----------------------------------------------------------
def test_shipped_corpus_tasks_keep_the_contract(api_settings: Settings, kl_index: SearchIndex) -> None:
    app = create_app(api_settings, index=kl_index, stores=sqlite_stores(":memory:"),
                     service_factory=lambda index, store, llm: FakeChatService(index))  # fmt: skip
    with TestClient(app) as c:
        directives = c.get("/v1/directives").json()["directives"]
        assert directives, "the shipped Kết luận assign tasks"
        corpus = api_settings.index.data_dir / "corpus"
        for d in directives:
            text = (corpus / d["source"]["file"]).read_text("utf-8")
            assert text[d["source"]["start"] : d["source"]["end"]] == d["action"]  # verbatim at its offsets
            assert d["url"] == f"/documents/{d['document_id']}#{d['passage_id']}"
            assert d["passage_id"] in {p.passage_id for p in kl_index.passages_of(d["document_id"])}
        dated = [d["deadline"] for d in directives if d["deadline"]]
        assert dated == sorted(dated) and all(d["deadline"] for d in directives[: len(dated)])

        for agency in c.get("/v1/agencies").json()["agencies"]:
            for name in (agency["name"], *agency["aliases"][:1]):
                found = c.get("/v1/directives", params={"agency": name}).json()["directives"]
                assert len(found) == agency["directives"], name
                assert all(agency["name"] in d["agencies"] + d["partners"] for d in found)

        rows = _csv_rows(c.get("/v1/directives.csv"))
        assert [r["Mã nhiệm vụ"] for r in rows] == ids(directives)
        cal = _calendar(c.get("/v1/directives.ics"))
        expected = [d for d in kl_index.tasks.directives if first_due(d) is not None]
        assert sorted(str(e["UID"]) for e in cal.events) == sorted(
            f"{d.directive_id}@ketluan" for d in expected
        )
        page = c.get("/nhiem-vu")
        assert _rows(page.text) == ids(directives)


# --- a task a later Kết luận re-dates ------------------------------------------------------------------
def _row_text(page: str, directive_id: str) -> str:
    row = page.split(f'id="task-{directive_id}"', 1)[1].split("</tr>", 1)[0]
    return " ".join(html.unescape(re.sub(r"<[^>]+>", "", row)).split())


def test_a_task_a_later_ket_luan_re_dates_is_linked_in_the_api_and_on_the_page(tmp_path: Path) -> None:
    later = LAW_REVIEW.model_copy(update={
        "directive_id": "kl221-9045a8.m2.d1.t1", "ket_luan": "221-KL/TW", "document_id": "kl221-9045a8",
        "issued": dt.date(2025, 11, 28), "deadline": dt.date(2026, 3, 31), "deadline_text": "trước ngày 31/3/2026",
        "passage_id": "kl221-9045a8.m2.d1", "label": "Kết luận 221-KL/TW, mục 2, đoạn 1",
        "url": "/documents/kl221-9045a8#kl221-9045a8.m2.d1"})  # fmt: skip
    repeated = TRAINING.model_copy(update={
        "directive_id": "kl221-9045a8.m2.d2.t1", "ket_luan": "221-KL/TW", "document_id": "kl221-9045a8",
        "issued": dt.date(2025, 11, 28), "passage_id": "kl221-9045a8.m2.d2",
        "label": "Kết luận 221-KL/TW, mục 2, đoạn 2", "url": "/documents/kl221-9045a8#kl221-9045a8.m2.d2"})  # fmt: skip
    with _client(tmp_path, TaskBook([*DIRECTIVES, later, repeated], REFERENCES)) as c:
        listed = {d["directive_id"]: d for d in c.get("/v1/directives").json()["directives"]}
        (earlier,) = listed[later.directive_id]["earlier"]
        assert earlier == {"directive_id": LAW_REVIEW.directive_id, "ket_luan": "183-KL/TW", "issued": "2025-08-01",
                           "deadline": "2025-09-15", "deadline_text": "trước ngày 15/9/2025", "recurring": None,
                           "moved": True, "label": LAW_REVIEW.label, "url": LAW_REVIEW.url}  # fmt: skip
        assert [x["deadline"] for x in listed[LAW_REVIEW.directive_id]["later"]] == ["2026-03-31"]
        assert all(d["earlier"] == d["later"] == [] for k, d in listed.items()
                   if k not in (later.directive_id, LAW_REVIEW.directive_id, repeated.directive_id, TRAINING.directive_id))  # fmt: skip
        assert [x["moved"] for x in listed[repeated.directive_id]["earlier"]] == [
            False
        ]  # the same deadline again
        page = c.get("/nhiem-vu").text
    assert "Hạn cũ theo Kết luận 183-KL/TW: 15/09/2025" in _row_text(page, later.directive_id)
    assert "Hạn mới theo Kết luận 221-KL/TW: 31/03/2026" in _row_text(page, LAW_REVIEW.directive_id)
    assert (
        f'href="{LAW_REVIEW.url}"' in page.split(f'id="task-{later.directive_id}"', 1)[1].split("</tr>", 1)[0]
    )
    assert "Nhắc lại nhiệm vụ của Kết luận 183-KL/TW" in _row_text(page, repeated.directive_id)
    assert "Được nhắc lại trong Kết luận 221-KL/TW" in _row_text(page, TRAINING.directive_id)
    assert "Hạn" not in _row_text(page, TRAINING.directive_id).split("Được nhắc lại", 1)[1]
    assert "Hạn cũ theo" not in _row_text(page, SCHOOLS.directive_id)
