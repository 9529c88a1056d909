"""The app in-process (TestClient): routes, error shapes, guards, metrics, readiness and reload."""

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
from api.deps import get_service
from api.settings import Settings
from bot.models import ChatResponse
from bot.stores import sqlite_stores
from index.build import build_index
from index.embedding import HashingEmbedder
from index.layout import current_build
from index.search import SearchIndex
from index.settings import IndexSettings
from tests.api.conftest import FakeChatService, make_settings
from tests.contract import assert_contract

QUESTION = "Kết luận 221 yêu cầu hoàn thành sắp xếp trường học cấp xã khi nào?"
Factory = Callable[[SearchIndex, Any, Any], FakeChatService]


@pytest.fixture()
def client(
    api_settings: Settings, kl_index: SearchIndex, fake_service_factory: Factory
) -> Iterator[TestClient]:
    app = create_app(api_settings, index=kl_index, stores=sqlite_stores(":memory:"),
                     service_factory=fake_service_factory)  # fmt: skip
    with TestClient(app) as c:
        yield c


@pytest.fixture()
def real_client(api_settings: Settings, kl_index: SearchIndex) -> Iterator[TestClient]:
    """The app with the real ChatService over the shipped corpus: answers the routes return are the product's."""
    with TestClient(create_app(api_settings, index=kl_index, stores=sqlite_stores(":memory:"))) as c:
        yield c


def _client(settings: Settings, index: SearchIndex | None, factory: Factory, **kw: Any) -> TestClient:
    app = create_app(settings, index=index, stores=sqlite_stores(":memory:"), service_factory=factory)
    return TestClient(app, **kw)


def _one_document_index(data_dir: Path) -> Settings:
    """Settings for `data_dir`, whose corpus/ holds the first shipped document, indexed (hashing-64)."""
    settings = make_settings(IndexSettings(data_dir=data_dir, embedding_model="hashing-64"))
    corpus = data_dir / "corpus"
    corpus.mkdir()
    shutil.copy(Path(__file__).resolve().parents[2] / "data" / "corpus" / "000_5d30afc99b18f1f4.txt", corpus)
    build_index([corpus], settings.index.index_dir, HashingEmbedder(64), progress=False, log=lambda _: None)
    return settings


def _error(response: Any, status: int, code: str) -> dict[str, str]:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"}
    assert body["error"]["code"] == code
    assert body["error"]["message"]
    return dict(body["error"])


# --- happy paths ---------------------------------------------------------------------------------
def test_chat_returns_a_chat_response(real_client: TestClient, kl_index: SearchIndex) -> None:
    r = real_client.post("/v1/chat", json={"message": QUESTION})
    assert r.status_code == 200, r.text
    body = r.json()
    assert {"conversation_id", "message_id", "answer", "answered", "citations", "mode", "latency_ms"} <= set(
        body
    )
    response = ChatResponse.model_validate(body)
    assert response.answered is True and response.mode == "extractive"
    assert "31/12/2025" in response.answer  # the deadline asked for, which the question does not name
    assert_contract(response, kl_index.source_text)
    for c in response.citations:
        assert c.url == f"/documents/{c.document_id}#{c.passage_id}"
        assert c.ket_luan == "221-KL/TW"
    refused = ChatResponse.model_validate(
        real_client.post("/v1/chat", json={"message": "Giá xăng tuần sau?"}).json()
    )
    assert not refused.answered and refused.citations == []


def test_search_documents_and_document(real_client: TestClient, kl_index: SearchIndex) -> None:
    client = real_client
    r = client.post("/v1/search", json={"query": "trạm y tế cấp xã", "k": 3})
    assert r.status_code == 200
    results = r.json()["results"]
    assert 1 <= len(results) <= 3
    assert {"passage_id", "document_id", "label", "text", "source", "url", "score"} <= set(results[0])

    docs = client.get("/v1/documents").json()["documents"]
    assert len(docs) == len(kl_index.documents)
    first = docs[0]["document_id"]
    detail = client.get(f"/v1/documents/{first}").json()
    assert detail["document_id"] == first
    assert [p["passage_id"] for p in detail["passages"]] == [
        p.passage_id for p in kl_index.passages_of(first)
    ]


def test_feedback_is_stored_and_unknown_message_is_404(real_client: TestClient) -> None:
    answer = real_client.post("/v1/chat", json={"message": QUESTION}).json()
    ok = {"conversation_id": answer["conversation_id"], "message_id": answer["message_id"], "rating": "up"}
    r = real_client.post("/v1/feedback", json=ok)
    assert r.status_code == 204 and r.content == b""
    service = real_client.app.state.service  # type: ignore[attr-defined]
    assert service.stores.feedback.recent(5)[0]["message_id"] == answer["message_id"]
    _error(real_client.post("/v1/feedback", json={**ok, "message_id": "nope"}), 404, "not_found")
    _error(real_client.post("/v1/feedback", json={**ok, "conversation_id": "nope"}), 404, "not_found")
    _error(real_client.post("/v1/feedback", json={**ok, "rating": "meh"}), 422, "validation_error")


def test_stream_sends_tokens_then_citations_then_done(real_client: TestClient, kl_index: SearchIndex) -> None:
    with real_client.stream("POST", "/v1/chat/stream", json={"message": QUESTION}) as r:
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("text/event-stream")
        events = _sse(r.iter_lines())
    names = [e for e, _ in events]
    assert names[-2:] == ["citations", "done"] and set(names[:-2]) == {"token"} and len(names) > 3
    text = "".join(d["text"] for e, d in events if e == "token")
    done = ChatResponse.model_validate(events[-1][1])
    assert text == done.answer and done.answered and "31/12/2025" in done.answer
    assert events[-2][1] == [c.model_dump(mode="json") for c in done.citations]
    assert_contract(done, kl_index.source_text)


def test_stream_failure_after_start_is_an_error_event(api_settings: Settings, kl_index: SearchIndex) -> None:
    factory: Factory = lambda index, store, llm: FakeChatService(index, fail_stream_after=2)  # noqa: E731
    with (
        _client(api_settings, kl_index, factory) as c,
        c.stream("POST", "/v1/chat/stream", json={"message": QUESTION}) as r,
    ):
        events = _sse(r.iter_lines())
    assert [e for e, _ in events] == ["token", "token", "error"]
    assert events[-1][1]["code"] == "bad_request"


def test_stream_bad_input_is_a_json_error_not_a_stream(client: TestClient) -> None:
    _error(client.post("/v1/chat/stream", json={"message": "   "}), 400, "bad_request")


def _sse(lines: Iterator[str]) -> list[tuple[str, Any]]:
    events: list[tuple[str, Any]] = []
    event, data = "message", ""
    for line in lines:
        if line.startswith("event:"):
            event = line[6:].strip()
        elif line.startswith("data:"):
            data += line[5:].strip()
        elif not line.strip() and data:
            events.append((event, json.loads(data)))
            event, data = "message", ""
    return events


# --- errors --------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("body", "status", "code", "message"),
    [
        ({"message": ""}, 422, "validation_error", "Câu hỏi không được để trống."),
        ({}, 422, "validation_error", "Câu hỏi không được để trống."),
        ({"message": "x" * 2001}, 422, "validation_error", "Câu hỏi quá dài (tối đa 2000 ký tự)."),
        ({"message": "ok", "filters": {"ket_luan": "183"}}, 422, "validation_error", None),
        ({"message": "   "}, 400, "bad_request", None),
    ],
)
def test_bad_chat_bodies(
    client: TestClient, body: dict[str, Any], status: int, code: str, message: str | None
) -> None:
    error = _error(client.post("/v1/chat", json=body), status, code)
    if message:
        assert error["message"] == message


def test_bad_json_and_unknown_routes(client: TestClient) -> None:
    bad = client.post("/v1/chat", content=b'{"message": ', headers={"content-type": "application/json"})
    _error(bad, 400, "invalid_json")
    _error(client.get("/v1/documents/no-such-document"), 404, "not_found")
    _error(client.get("/v1/nothing-here"), 404, "not_found")
    _error(client.get("/v1/chat"), 405, "method_not_allowed")


def test_body_size_limit_declared_and_streamed(client: TestClient) -> None:
    big = json.dumps({"message": "a" * 70_000}).encode()
    _error(
        client.post("/v1/chat", content=big, headers={"content-type": "application/json"}), 413, "too_large"
    )

    def chunks() -> Iterator[bytes]:  # no Content-Length: only the streamed size can tell
        yield b'{"message": "'
        for _ in range(100):
            yield b"a" * 1000
        yield b'"}'

    r = client.post("/v1/chat", content=chunks(), headers={"content-type": "application/json"})
    _error(r, 413, "too_large")


def test_unhandled_error_is_a_json_500(
    api_settings: Settings, kl_index: SearchIndex, fake_service_factory: Factory
) -> None:
    class Broken(FakeChatService):
        def answer(self, *args: Any, **kwargs: Any) -> Any:
            raise RuntimeError("boom")

    with _client(api_settings, kl_index, fake_service_factory, raise_server_exceptions=False) as c:
        c.app.dependency_overrides[get_service] = lambda: Broken(kl_index)  # type: ignore[attr-defined]
        error = _error(c.post("/v1/chat", json={"message": QUESTION}), 500, "internal_error")
    assert "boom" not in json.dumps(error)


# --- guards --------------------------------------------------------------------------------------
def test_api_keys(kl_settings: IndexSettings, kl_index: SearchIndex, fake_service_factory: Factory) -> None:
    settings = make_settings(kl_settings, api_keys="k1, secret-2")
    with _client(settings, kl_index, fake_service_factory) as c:
        missing = _error(c.get("/v1/documents"), 401, "unauthorized")
        assert "API key" in missing["message"]
        _error(c.get("/v1/documents", headers={"Authorization": "Bearer nope"}), 401, "unauthorized")
        _error(c.get("/v1/documents", headers={"Authorization": "Basic secret-2"}), 401, "unauthorized")
        assert c.get("/v1/documents", headers={"Authorization": "Bearer secret-2"}).status_code == 200
        assert c.get("/healthz").status_code == 200  # only /v1/* is guarded
        assert c.get("/readyz").status_code == 200
        asks = {"Origin": "https://example.org", "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": "authorization"}  # fmt: skip
        preflight = c.options("/v1/chat", headers=asks)
        assert preflight.status_code == 200


def test_rate_limit_with_retry_after(
    kl_settings: IndexSettings, kl_index: SearchIndex, fake_service_factory: Factory
) -> None:
    settings = make_settings(kl_settings, rate_limit_per_minute=3)
    with _client(settings, kl_index, fake_service_factory) as c:
        statuses = [c.get("/v1/documents").status_code for _ in range(3)]
        assert statuses == [200, 200, 200]
        r = c.get("/v1/documents")
        error = _error(r, 429, "rate_limited")
        assert 1 <= int(r.headers["Retry-After"]) <= 60
        assert r.headers["Retry-After"] in error["message"]
        assert c.get("/healthz").status_code == 200
        # another API key (here: none vs. a key) is another client
        assert "ketluan_rate_limited_total 1.0" in c.get("/metrics").text


def test_cors_allows_configured_origin_only(kl_settings: IndexSettings, kl_index: SearchIndex,
                                            fake_service_factory: Factory) -> None:  # fmt: skip
    settings = make_settings(kl_settings, cors_origins="https://a.example, https://b.example")
    with _client(settings, kl_index, fake_service_factory) as c:
        ok = c.get("/v1/documents", headers={"Origin": "https://b.example"})
        assert ok.headers["access-control-allow-origin"] == "https://b.example"
        other = c.get("/v1/documents", headers={"Origin": "https://evil.example"})
        assert "access-control-allow-origin" not in other.headers


# --- readiness, metrics, reload ------------------------------------------------------------------
def test_not_ready_without_an_index(tmp_path: Path, fake_service_factory: Factory) -> None:
    settings = make_settings(IndexSettings(data_dir=tmp_path, embedding_model="hashing-64"))
    with _client(settings, None, fake_service_factory) as c:
        assert c.get("/healthz").status_code == 200
        error = _poll_error(c, "/readyz")
        assert error["code"] == "index_not_ready" and "no index" in error["detail"]
        _error(c.post("/v1/chat", json={"message": QUESTION}), 503, "index_not_ready")
        _error(c.post("/v1/search", json={"query": "x"}), 503, "index_not_ready")
        _error(c.get("/v1/documents"), 503, "index_not_ready")
        assert "ketluan_ready 0.0" in c.get("/metrics").text


def test_corrupt_index_is_reported_not_fatal(tmp_path: Path, fake_service_factory: Factory) -> None:
    build = tmp_path / "index" / "builds" / "20250101T000000"
    build.mkdir(parents=True)
    (build / "manifest.json").write_text("{not json", "utf-8")
    (tmp_path / "index" / "current").symlink_to(Path("builds") / build.name)
    settings = make_settings(IndexSettings(data_dir=tmp_path, embedding_model="hashing-64"))
    with _client(settings, None, fake_service_factory) as c:
        error = _poll_error(c, "/readyz")
        assert "corrupt" in error["detail"]
        assert c.get("/healthz").status_code == 200


def test_a_worker_loads_its_index_before_taking_requests(
    tmp_path: Path, fake_service_factory: Factory
) -> None:
    settings = _one_document_index(tmp_path)
    app = create_app(settings, stores=sqlite_stores(":memory:"), service_factory=fake_service_factory,
                     load_before_serving=True)  # fmt: skip
    with TestClient(app) as c:  # start-up has finished here: the very first request is answered
        assert c.get("/readyz").status_code == 200
        assert c.post("/v1/search", json={"query": "trạm y tế"}).status_code == 200
    # a corrupt build does not stop the worker from starting; /readyz says why it cannot answer
    manifest = settings.index.index_dir / "current" / "manifest.json"
    manifest.write_text("{", "utf-8")
    app = create_app(settings, stores=sqlite_stores(":memory:"), service_factory=fake_service_factory,
                     load_before_serving=True)  # fmt: skip
    with TestClient(app) as c:
        error = _error(c.get("/readyz"), 503, "index_not_ready")
        assert "corrupt" in error["detail"]


def _poll_error(c: TestClient, path: str) -> dict[str, str]:
    deadline = time.monotonic() + 30
    while True:
        r = c.get(path)
        error = r.json().get("error", {})
        if error.get("detail") != "index is loading" or time.monotonic() > deadline:
            assert r.status_code == 503, r.text
            return dict(error)
        time.sleep(0.02)


def test_metrics_count_routes_and_answers(client: TestClient, kl_index: SearchIndex) -> None:
    client.post("/v1/chat", json={"message": QUESTION})
    client.post("/v1/chat", json={"message": ""})
    text = client.get("/metrics").text
    assert 'ketluan_http_requests_total{method="POST",route="/v1/chat",status="200"} 1.0' in text
    assert 'ketluan_http_requests_total{method="POST",route="/v1/chat",status="422"} 1.0' in text
    assert 'ketluan_answers_total{answered="true",channel="api",mode="extractive"} 1.0' in text
    assert f"ketluan_index_passages {float(len(kl_index.passages))}" in text.splitlines()
    assert "ketluan_ready 1.0" in text


def test_new_build_is_picked_up_without_failed_requests(
    tmp_path: Path, fake_service_factory: Factory
) -> None:
    settings = _one_document_index(tmp_path)
    corpus, embedder = tmp_path / "corpus", HashingEmbedder(64)
    with _client(settings, None, fake_service_factory) as c:
        first = _poll_ready(c)
        holder = c.app.state.index_holder  # type: ignore[attr-defined]
        holder.watch_interval = 0.0
        shutil.copy(
            Path(__file__).resolve().parents[2] / "data" / "corpus" / "001_32125652a63c81a5.txt", corpus
        )
        build_index([corpus], settings.index.index_dir, embedder, progress=False, log=lambda _: None)
        deadline = time.monotonic() + 30
        while True:
            assert c.get("/v1/documents").status_code == 200  # the old build answers meanwhile
            ready = c.get("/readyz").json()
            if ready["build"] != first["build"] or time.monotonic() > deadline:
                break
            time.sleep(0.02)
        assert ready["build"] != first["build"] and ready["documents"] > first["documents"]
        r = c.post("/v1/admin/reload")
        assert r.status_code == 200 and r.json()["build"] == ready["build"]


def _poll_ready(c: TestClient) -> dict[str, Any]:
    deadline = time.monotonic() + 30
    while (r := c.get("/readyz")).status_code != 200:
        assert time.monotonic() < deadline, r.text
        time.sleep(0.02)
    return dict(r.json())


def test_openapi_documents_the_contract(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    paths = spec["paths"]
    for path in ("/v1/chat", "/v1/chat/stream", "/v1/search", "/v1/documents", "/v1/documents/{document_id}",
                 "/v1/feedback", "/healthz", "/readyz", "/metrics"):  # fmt: skip
        assert path in paths, path
    chat = paths["/v1/chat"]["post"]
    assert chat["summary"] and chat["description"]
    assert chat["responses"]["200"]["content"]["application/json"]["example"]["citations"]
    assert spec["components"]["schemas"]["ChatRequest"]["examples"]
    assert "text/event-stream" in paths["/v1/chat/stream"]["post"]["responses"]["200"]["content"]


def test_a_broken_new_build_keeps_the_old_one_serving(tmp_path: Path, fake_service_factory: Factory) -> None:
    settings = _one_document_index(tmp_path)
    with _client(settings, None, fake_service_factory) as c:
        first = _poll_ready(c)
        broken = settings.index.index_dir / "builds" / "29990101T000000"
        broken.mkdir()
        (broken / "manifest.json").write_text("{", "utf-8")
        link = settings.index.index_dir / "current"
        link.unlink()
        link.symlink_to(Path("builds") / broken.name)
        # the damaged build is refused and the last whole one keeps serving (index/layout.py falls back)
        assert c.post("/v1/admin/reload").status_code == 200
        ready = c.get("/readyz").json()
        assert ready["build"] == first["build"] and ready["status"] == "ready"
        assert c.post("/v1/search", json={"query": "cấp xã"}).status_code == 200


_EXTERNAL = re.compile(r"""(?:src|href)\s*=\s*["']?\s*(?:https?:)?//""", re.IGNORECASE)


@pytest.mark.parametrize("path", ["/docs", "/redoc", "/", "/documents", "/nhiem-vu"])
def test_pages_load_nothing_from_elsewhere(client: TestClient, path: str) -> None:
    """Offline means offline: /docs and every page get their scripts and styles from the app itself."""
    page = client.get(path)
    assert page.status_code == 200
    own = str(client.app.state.settings.bot.public_url).rstrip("/")  # type: ignore[attr-defined]
    text = page.text.replace(own, "")  # the demo page's embed snippet names this service's own address
    assert not _EXTERNAL.search(text), _EXTERNAL.search(text)
    for asset in re.findall(r"""(?:src|href)=["'](/[^"']+\.(?:js|css))""", page.text):
        assert client.get(asset).status_code == 200, asset


@pytest.mark.parametrize("whole_earlier_build", [True, False])
def test_a_build_damaged_while_served_is_dropped_for_the_last_whole_one(
    tmp_path: Path, fake_service_factory: Factory, whole_earlier_build: bool
) -> None:
    settings = _one_document_index(tmp_path)
    index_dir = settings.index.index_dir
    first = current_build(index_dir)
    build_index([tmp_path / "corpus"], index_dir, HashingEmbedder(64), progress=False, log=lambda _: None)
    second = current_build(index_dir)
    with _client(settings, None, fake_service_factory) as c:
        assert _poll_ready(c)["build"] == second.name
        if not whole_earlier_build:
            (first / "passages.jsonl").write_bytes(b"")
        (second / "embeddings.npy").write_bytes(b"")  # `truncate -s 0` under the running server
        search = c.post("/v1/search", json={"query": "cấp xã"})
        ready = c.get("/readyz")
        if whole_earlier_build:
            assert search.status_code == 200 and search.json()["results"]
            assert ready.status_code == 200 and ready.json()["build"] == first.name
            assert "embeddings.npy has 0 bytes" in ready.json()["reload_error"]
        else:  # nothing whole is left: refused with the reason, never answered from the damaged files
            _error(search, 503, "index_not_ready")
            assert "embeddings.npy has 0 bytes" in _error(ready, 503, "index_not_ready")["detail"]
            assert str(tmp_path) not in ready.text
