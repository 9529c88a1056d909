"""End to end over real sockets: uvicorn on loopback with the real store, ChatService and shipped-corpus index."""

from __future__ import annotations

import json
import re
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from api.app import create_app
from api.settings import Settings
from index.build import build_index
from index.embedding import HashingEmbedder
from index.settings import IndexSettings
from tests.api.conftest import ServeApp, make_settings, wait_ready

CORPUS = Path(__file__).resolve().parents[2] / "data" / "corpus"
QUESTION = "Kết luận 221 yêu cầu hoàn thành sắp xếp trường học cấp xã khi nào?"


@pytest.fixture()
def http(live_server: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=live_server, timeout=60.0) as client:
        yield client


def _error(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    error: dict[str, Any] = response.json()["error"]
    assert error["code"] == code and error["message"]
    return error


def _check_citations(body: dict[str, Any]) -> None:
    markers = {int(n) for n in re.findall(r"\[(\d+)\]", body["answer"])}
    assert markers == {c["n"] for c in body["citations"]}


def test_ready_and_healthy(http: httpx.Client) -> None:
    assert http.get("/healthz").json() == {"status": "ok"}
    ready = http.get("/readyz").json()
    assert ready["status"] == "ready" and ready["passages"] > 0 and ready["mode"] == "extractive"


def test_chat_then_follow_up_in_the_same_conversation(http: httpx.Client) -> None:
    first = http.post("/v1/chat", json={"message": QUESTION})
    assert first.status_code == 200, first.text
    body = first.json()
    assert body["answered"] is True and body["mode"] == "extractive"
    assert "31/12/2025" in body["answer"]
    _check_citations(body)
    assert any(c["ket_luan"] == "221-KL/TW" for c in body["citations"])

    follow = http.post("/v1/chat", json={"message": "Còn trạm y tế thì sao?",
                                         "conversation_id": body["conversation_id"]})  # fmt: skip
    assert follow.status_code == 200, follow.text
    again = follow.json()
    assert again["conversation_id"] == body["conversation_id"]
    assert again["message_id"] != body["message_id"]
    _check_citations(again)

    rated = http.post("/v1/feedback", json={"conversation_id": body["conversation_id"],
                                            "message_id": body["message_id"], "rating": "up"})  # fmt: skip
    assert rated.status_code == 204


def test_stream_event_order(http: httpx.Client) -> None:
    events: list[tuple[str, Any]] = []
    with http.stream("POST", "/v1/chat/stream", json={"message": QUESTION}) as r:
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("text/event-stream")
        event = ""
        for line in r.iter_lines():
            if line.startswith("event:"):
                event = line.removeprefix("event:").strip()
            elif line.startswith("data:"):
                events.append((event, json.loads(line.removeprefix("data:").strip())))
    names = [name for name, _ in events]
    assert names[0] == "token" and names[-2:] == ["citations", "done"]
    assert names.count("citations") == 1 and names.count("done") == 1 and set(names[:-2]) == {"token"}
    done = events[-1][1]
    assert "".join(d["text"] for n, d in events if n == "token") == done["answer"]
    assert events[-2][1] == done["citations"]
    _check_citations(done)


def test_errors(http: httpx.Client) -> None:
    _error(http.post("/v1/chat", json={"message": ""}), 422, "validation_error")
    _error(http.post("/v1/chat", json={"message": " \n "}), 400, "bad_request")
    _error(http.post("/v1/chat", content=b'{"message": "a', headers={"content-type": "application/json"}),
           400, "invalid_json")  # fmt: skip
    _error(http.post("/v1/chat", json={"message": "a" * 100_000}), 413, "too_large")
    chunked = http.post("/v1/chat", content=iter([b'{"message": "', b"a" * 70_000, b'"}']),
                        headers={"content-type": "application/json"})  # fmt: skip
    _error(chunked, 413, "too_large")
    _error(http.get("/v1/documents/no-such-document"), 404, "not_found")
    _error(http.post("/v1/search", json={"query": "x", "k": 0}), 422, "validation_error")


def test_metrics(http: httpx.Client) -> None:
    http.post("/v1/chat", json={"message": QUESTION})
    text = http.get("/metrics").text
    assert 'route="/v1/chat",status="200"' in text
    assert "ketluan_http_request_duration_seconds_bucket" in text
    assert 'ketluan_answers_total{answered="true",channel="api",mode="extractive"}' in text
    assert "ketluan_ready 1.0" in text


def test_keys_and_rate_limit(kl_settings: IndexSettings, serve_app: ServeApp) -> None:
    app = create_app(make_settings(kl_settings, api_keys="s3cret", rate_limit_per_minute=2))
    with serve_app(app) as base, httpx.Client(base_url=base, timeout=30.0) as c:
        assert wait_ready(base).status_code == 200
        _error(c.get("/v1/documents"), 401, "unauthorized")
        _error(c.get("/v1/documents", headers={"Authorization": "Bearer wrong"}), 401, "unauthorized")
        auth = {"Authorization": "Bearer s3cret"}
        assert [c.get("/v1/documents", headers=auth).status_code for _ in range(2)] == [200, 200]
        limited = c.get("/v1/documents", headers=auth)
        error = _error(limited, 429, "rate_limited")
        assert int(limited.headers["Retry-After"]) >= 1 and limited.headers["Retry-After"] in error["message"]


def test_reindex_while_serving_fails_no_request(tmp_path: Path, serve_app: ServeApp) -> None:
    """`ketluan index` swaps the `current` link; the server moves to the new build with no failed request."""
    settings: Settings = make_settings(IndexSettings(data_dir=tmp_path, embedding_model="hashing-64"))
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    shutil.copy(CORPUS / "000_5d30afc99b18f1f4.txt", corpus)
    embedder = HashingEmbedder(64)
    build_index([corpus], settings.index.index_dir, embedder, progress=False, log=lambda _: None)
    with serve_app(create_app(settings)) as base:
        first = wait_ready(base).json()
        app_holder_interval = 0.05
        failures: list[str] = []
        stop = threading.Event()

        def hammer() -> None:
            with httpx.Client(base_url=base, timeout=30.0) as c:
                while not stop.is_set():
                    for r in (c.post("/v1/search", json={"query": "chính quyền địa phương"}),
                              c.post("/v1/chat", json={"message": "Nhiệm vụ của cấp xã là gì?"})):  # fmt: skip
                        if r.status_code != 200:
                            failures.append(f"{r.status_code} {r.text[:200]}")

        threads = [threading.Thread(target=hammer) for _ in range(3)]
        for t in threads:
            t.start()
        try:
            shutil.copy(CORPUS / "001_32125652a63c81a5.txt", corpus)
            build_index([corpus], settings.index.index_dir, embedder, progress=False, log=lambda _: None)
            with httpx.Client(base_url=base, timeout=30.0) as c:
                ready = _poll(c, lambda r: r.json().get("build") != first["build"], app_holder_interval)
        finally:
            stop.set()
            for t in threads:
                t.join(30)
        assert ready["documents"] == first["documents"] + 1
        assert failures == []


def _poll(c: httpx.Client, done: Any, interval: float, timeout: float = 30.0) -> dict[str, Any]:
    import time

    deadline = time.monotonic() + timeout
    while True:
        r = c.get("/readyz")
        if r.status_code == 200 and done(r):
            return dict(r.json())
        assert time.monotonic() < deadline, r.text
        time.sleep(interval)
