"""The administration routes (API.md "Administration"): admin keys apart from API keys, uploads and URLs as
jobs, the document list with status, bad input refused with the right status, the audit log."""

from __future__ import annotations

import json
import re
import shutil
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from bot.stores import Stores, sqlite_stores
from index.build import build_index
from index.embedding import HashingEmbedder
from index.search import SearchIndex
from index.settings import IndexSettings
from tests.api.conftest import FakeChatService, make_settings

ROOT = Path(__file__).resolve().parents[2]
OFFICIAL_221 = ROOT / "data" / "corpus" / "001_32125652a63c81a5.txt"
ADMIN = "admin-secret-1"
API_KEY = "api-key-1"
Factory = Callable[[SearchIndex, Any, Any], FakeChatService]


def _app_over(data_dir: Path, factory: Factory, stores: Stores | None = None, **api: Any) -> TestClient:
    corpus = data_dir / "corpus"
    corpus.mkdir(parents=True)
    shutil.copy(ROOT / "data" / "corpus" / "000_5d30afc99b18f1f4.txt", corpus)
    index = IndexSettings(data_dir=data_dir, embedding_model="hashing-64", max_document_bytes=100_000)
    build_index([corpus], index.index_dir, HashingEmbedder(64), progress=False, log=lambda _: None)
    settings = make_settings(index, **api)
    return TestClient(
        create_app(settings, stores=stores or sqlite_stores(":memory:"), service_factory=factory)
    )


@pytest.fixture()
def admin(tmp_path: Path, fake_service_factory: Factory) -> Iterator[TestClient]:
    with _app_over(tmp_path, fake_service_factory, admin_keys=ADMIN, api_keys=API_KEY,
                   auth_failures_per_minute=3) as client:  # fmt: skip
        _poll(lambda: client.get("/readyz").status_code == 200)
        client.headers["Authorization"] = f"Bearer {ADMIN}"
        yield client


def _poll(ready: Callable[[], bool], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not ready():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def _finish(client: TestClient, job_id: str) -> dict[str, Any]:
    state: dict[str, Any] = {}

    def finished() -> bool:
        state.update(client.get(f"/v1/admin/jobs/{job_id}").json())
        return state["state"] in ("done", "failed")

    _poll(finished)
    return state


def _documents(client: TestClient) -> dict[str, dict[str, Any]]:
    return {d["document_id"]: d for d in client.get("/v1/admin/documents").json()["documents"]}


def test_administration_is_off_without_admin_keys(tmp_path: Path, fake_service_factory: Factory) -> None:
    with _app_over(tmp_path, fake_service_factory) as client:
        r = client.get("/v1/admin/documents", headers={"Authorization": "Bearer anything"})
        assert r.status_code == 404 and r.json()["error"]["code"] == "not_found"


@pytest.mark.parametrize("header", [None, f"Bearer {API_KEY}", "Bearer wrong", f"Basic {ADMIN}"])
def test_only_an_admin_key_opens_administration(admin: TestClient, header: str | None) -> None:
    headers = {"Authorization": header} if header else {}
    del admin.headers["Authorization"]
    r = admin.get("/v1/admin/documents", headers=headers)
    assert r.status_code == 401 and r.json()["error"]["code"] == "unauthorized"


def test_an_admin_key_is_not_an_api_key(admin: TestClient) -> None:
    assert admin.post("/v1/search", json={"query": "Kết luận 183"}).status_code == 401
    headers = {"Authorization": f"Bearer {API_KEY}"}
    assert admin.post("/v1/search", json={"query": "Kết luận 183"}, headers=headers).status_code == 200


def test_failed_admin_keys_are_rate_limited(admin: TestClient) -> None:
    bad = {"Authorization": "Bearer guess"}
    assert [admin.get("/v1/admin/documents", headers=bad).status_code for _ in range(3)] == [401] * 3
    refused = admin.get("/v1/admin/documents")  # even the right key waits now
    assert refused.status_code == 429 and int(refused.headers["Retry-After"]) >= 1


def test_upload_indexes_a_document_while_the_old_build_serves(admin: TestClient, tmp_path: Path) -> None:
    before = _documents(admin)
    assert all(d["status"] == "indexed" and len(d["sha256"]) == 64 for d in before.values())
    assert {d["origin"] for d in before.values()} == {"shipped"}
    r = admin.post(
        "/v1/admin/documents", files={"file": ("kl221.txt", OFFICIAL_221.read_bytes(), "text/plain")}
    )
    assert r.status_code == 202
    accepted = r.json()
    assert set(accepted) == {"job_id", "document_id"} and accepted["document_id"].startswith("kl221-")
    job = _finish(admin, accepted["job_id"])
    assert job["state"] == "done" and job["progress"] == 1.0 and job["error"] is None
    after = _documents(admin)
    assert after[accepted["document_id"]]["status"] == "indexed"
    assert after[accepted["document_id"]]["origin"] == "upload"
    assert set(before) < set(after)
    hits = admin.post("/v1/search", json={"query": "sắp xếp trường học cấp xã", "k": 3},
                      headers={"Authorization": f"Bearer {API_KEY}"}).json()["results"]  # fmt: skip
    assert hits[0]["document_id"] == accepted["document_id"]
    again = admin.post("/v1/admin/documents", files={"file": ("copy.txt", OFFICIAL_221.read_bytes())}).json()
    assert again["document_id"] == accepted["document_id"]
    assert admin.get(f"/v1/admin/jobs/{again['job_id']}").json()["state"] == "done"
    audit = (tmp_path / "admin" / "audit.jsonl").read_text("utf-8")
    assert ADMIN not in audit and '"actor": "key:' in audit


def test_replace_then_delete(admin: TestClient) -> None:
    target = next(iter(_documents(admin)))
    changed = OFFICIAL_221.read_bytes()
    r = admin.put(f"/v1/admin/documents/{target}", files={"file": ("new.txt", changed)})
    assert r.status_code == 202 and r.json()["document_id"] == target
    assert _finish(admin, r.json()["job_id"])["state"] == "done"
    assert _documents(admin)[target]["title"].startswith("Kết luận 221")
    r = admin.post(
        "/v1/admin/documents", files={"file": ("note.txt", "Ghi chú\nMột văn bản ngắn.\n".encode())}
    )
    _finish(admin, r.json()["job_id"])
    gone = admin.delete(f"/v1/admin/documents/{target}")
    assert gone.status_code == 202 and _finish(admin, gone.json()["job_id"])["state"] == "done"
    assert target not in _documents(admin)
    assert admin.delete(f"/v1/admin/documents/{target}").status_code == 404
    assert admin.put("/v1/admin/documents/nope", files={"file": ("a.txt", b"x y z")}).status_code == 404


@pytest.mark.parametrize(
    ("kwargs", "status", "code"),
    [
        ({"files": {"file": ("scan.pdf", b"\x89PNG\r\n\x1a\n\x00\x00binary")}}, 415, "unsupported_media"),
        ({"files": {"file": ("kl.txt", "chữ".encode("utf-16"))}}, 415, "unsupported_media"),
        ({"content": b"raw bytes", "headers": {"Content-Type": "application/octet-stream"}}, 415,
         "unsupported_media"),
        ({"files": {"file": ("big.txt", b"x" * 100_001)}}, 413, "too_large"),
        ({"content": b"y" * 300_000, "headers": {"Content-Type": "text/plain"}}, 413, "too_large"),
        ({"json": {"url": "file:///etc/passwd"}}, 400, "bad_document"),
        ({"json": {"url": "http://127.0.0.1:8000/admin"}}, 400, "bad_document"),
        ({"json": {"url": "http://169.254.169.254/latest/meta-data/"}}, 400, "bad_document"),
        ({"json": {"link": "x"}}, 400, "bad_request"),
        ({"data": {"other": "x"}, "files": {"nofile": ("a.txt", b"abc")}}, 400, "bad_request"),
    ],
)  # fmt: skip
def test_bad_input_is_refused_with_a_reason(
    admin: TestClient, kwargs: dict[str, Any], status: int, code: str
) -> None:
    r = admin.post("/v1/admin/documents", **kwargs)
    assert r.status_code == status, r.text
    error = r.json()["error"]
    assert error["code"] == code and error["message"]


def test_a_corrupt_pdf_fails_its_job_and_the_index_keeps_serving(admin: TestClient) -> None:
    build = admin.get("/readyz").json()["build"]
    corrupt = b"%PDF-1.4\n1 0 obj << /Type /Catalog >> garbage\n%%EOF"
    r = admin.post("/v1/admin/documents", files={"file": ("kl.pdf", corrupt)})
    assert r.status_code == 202
    job = _finish(admin, r.json()["job_id"])
    assert job["state"] == "failed" and "PDF" in job["error"]
    assert admin.get("/readyz").json()["build"] == build
    listed = _documents(admin)[r.json()["document_id"]]
    assert listed["status"] == "failed" and "PDF" in listed["error"]


def test_unknown_job_is_404(admin: TestClient) -> None:
    assert admin.get("/v1/admin/jobs/20250101T000000-deadbeef").status_code == 404
    assert admin.get("/v1/admin/jobs/..%2F..%2Fetc").status_code == 404


def test_audit_log_names_the_key_by_its_digest(admin: TestClient, tmp_path: Path) -> None:
    r = admin.post("/v1/admin/documents", files={"file": ("n.txt", "Ghi chú\nMột văn bản ngắn.\n".encode())})
    _finish(admin, r.json()["job_id"])
    lines = [json.loads(x) for x in (tmp_path / "admin" / "audit.jsonl").read_text("utf-8").splitlines()]
    assert [x["action"] for x in lines] == ["add", "add.done"]
    assert all(x["actor"].startswith("key:") and ADMIN not in x["actor"] for x in lines)


@pytest.fixture()
def console(tmp_path: Path) -> Iterator[TestClient]:
    """The app with the real ChatService (so questions are recorded) and administration on."""
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    for name in ("000_5d30afc99b18f1f4.txt", OFFICIAL_221.name):
        shutil.copy(ROOT / "data" / "corpus" / name, corpus)
    index = IndexSettings(data_dir=tmp_path, embedding_model="hashing-64")
    build_index([corpus], index.index_dir, HashingEmbedder(64), progress=False, log=lambda _: None)
    with TestClient(create_app(make_settings(index, admin_keys=ADMIN))) as client:
        _poll(lambda: client.get("/readyz").status_code == 200)
        yield client


def test_questions_are_recorded_by_channel_with_feedback(console: TestClient, tmp_path: Path) -> None:
    widget = console.post("/v1/chat", json={"message": "Ai ký Kết luận 183?"},
                          headers={"Origin": "https://tinh.example"}).json()  # fmt: skip
    console.post("/v1/chat", json={"message": "Thời tiết Hà Nội ngày mai thế nào?"})
    with console.stream("POST", "/v1/chat/stream", json={"message": "Kết luận 221 ban hành ngày nào?"}) as r:
        r.read()
    fb = {"conversation_id": widget["conversation_id"], "message_id": widget["message_id"], "rating": "down",
          "comment": "thiếu ngày ký"}  # fmt: skip
    assert console.post("/v1/feedback", json=fb).status_code == 204
    admin = {"Authorization": f"Bearer {ADMIN}"}
    assert console.get("/v1/admin/questions").status_code == 401
    listed = console.get("/v1/admin/questions", headers=admin).json()["questions"]
    assert [q["text"] for q in listed] == ["Kết luận 221 ban hành ngày nào?", "Thời tiết Hà Nội ngày mai thế nào?",
                                           "Ai ký Kết luận 183?"]  # fmt: skip
    assert [q["channel"] for q in listed] == ["api", "api", "widget"]
    assert {"text", "at", "channel", "answered", "intent", "latency_ms", "feedback"} <= set(listed[0])
    assert listed[2]["feedback"] == "down" and listed[2]["comment"] == "thiếu ngày ký"
    assert all(q["user"] and "testclient" not in q["user"] for q in listed)
    refused = console.get("/v1/admin/questions", params={"answered": "false"}, headers=admin).json()
    assert "Thời tiết Hà Nội ngày mai thế nào?" in [q["text"] for q in refused["questions"]]
    only = console.get(
        "/v1/admin/questions", params={"channel": "widget", "since": "2020-01-01"}, headers=admin
    )
    assert [q["text"] for q in only.json()["questions"]] == ["Ai ký Kết luận 183?"]
    bad = console.get("/v1/admin/questions", params={"channel": "fax"}, headers=admin)
    assert bad.status_code == 422
    csv_text = console.get("/v1/admin/questions.csv", headers=admin).content.decode("utf-8-sig")
    assert csv_text.splitlines()[0].startswith("at,channel,text") and "thiếu ngày ký" in csv_text
    stats = console.get("/v1/admin/stats", headers=admin).json()
    assert stats["questions"] == 3 and stats["per_day"][-1]["total"] == 3
    assert stats["chart_svg"].startswith("<svg") and stats["thumbs_down"][0]["comment"] == "thiếu ngày ký"
    assert set(stats["latency_ms"]) == {"p50", "p90", "p99"}


def test_recording_can_be_switched_off(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KETLUAN_ANALYTICS_ENABLED", "false")
    corpus = tmp_path / "corpus"
    shutil.copytree(ROOT / "data" / "corpus", corpus)
    index = IndexSettings(data_dir=tmp_path, embedding_model="hashing-64")
    build_index([corpus], index.index_dir, HashingEmbedder(64), progress=False, log=lambda _: None)
    settings = make_settings(index, admin_keys=ADMIN)
    settings = type(settings)(settings.index, type(settings.bot)(llm_base_url=None, redis_url=None),
                              settings.api, settings.telegram, settings.zalo)  # fmt: skip
    with TestClient(create_app(settings)) as client:
        _poll(lambda: client.get("/readyz").status_code == 200)
        client.post("/v1/chat", json={"message": "Ai ký Kết luận 183?"})
        r = client.get("/v1/admin/questions", headers={"Authorization": f"Bearer {ADMIN}"})
        assert r.status_code == 404
    assert not (tmp_path / "state" / "questions.sqlite3").exists()


def test_the_console_page_is_served_whole_from_the_app(console: TestClient) -> None:
    page = console.get("/admin")
    assert page.status_code == 200 and "Khóa quản trị" in page.text
    assert not re.search(r"""(?:src|href)\s*=\s*["']?\s*(?:https?:)?//""", page.text)
    words = json.loads(re.search(r'id="admin-words">(.*?)</script>', page.text, re.S).group(1))  # type: ignore[union-attr]
    assert words["status_indexed"] and words["confirm_remove"]
    for asset in re.findall(r"""(?:src|href)=["'](/static/[^"'?]+)""", page.text):
        assert console.get(asset).status_code == 200, asset
    assert "'unsafe-inline'" not in page.headers["Content-Security-Policy"]


def test_the_console_page_says_when_administration_is_off(
    tmp_path: Path, fake_service_factory: Factory
) -> None:
    with _app_over(tmp_path, fake_service_factory) as client:
        page = client.get("/admin")
        assert page.status_code == 404 and "KETLUAN_ADMIN_KEYS" in page.text and "admin.js" not in page.text
