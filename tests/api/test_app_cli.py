"""`ketluan ask` in-process, and `ketluan serve` as a real process that builds a missing index first."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from api.cli import main
from bot.answer_cache import SQLiteAnswerCache, host_cache_path
from bot.models import ChatResponse
from index.settings import IndexSettings
from tests.api.conftest import free_port, wait_ready
from tests.redis_server import RedisServer

ROOT = Path(__file__).resolve().parents[2]


def _run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    out, err = capsys.readouterr()
    return int(exit_info.value.code or 0), out, err


def test_ask_json(kl_settings: IndexSettings, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _run(
        ["ask", "Ai ký Kết luận 183?", "--json", "--data-dir", str(kl_settings.data_dir)], capsys
    )
    assert code == 0
    body = json.loads(out)
    assert body["answered"] is True and "Trần Cẩm Tú" in body["answer"] and body["citations"]


def test_ask_text(kl_settings: IndexSettings, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _run(["ask", "Ai ký Kết luận 183?", "--data-dir", str(kl_settings.data_dir)], capsys)
    assert code == 0 and "Trần Cẩm Tú" in out and "[1] Kết luận 183-KL/TW" in out


def test_ask_batch_answers_each_question_on_its_own(
    kl_settings: IndexSettings, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    batch = tmp_path / "questions.txt"
    batch.write_text("Ai ký Kết luận 183?\n\nCòn Kết luận 221 thì sao?\n   \n", "utf-8")
    code, out, _ = _run(
        ["ask", "--batch", str(batch), "--json", "--data-dir", str(kl_settings.data_dir)], capsys
    )
    assert code == 0
    lines = [json.loads(line) for line in out.splitlines()]
    assert len(lines) == 2
    assert lines[0]["conversation_id"] != lines[1]["conversation_id"]  # no shared history


def test_ask_without_question_or_index_fails_clearly(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as no_question:
        main(["ask", "--data-dir", str(tmp_path)])
    assert "QUESTION" in str(no_question.value.code)
    code, _, err = _run(["ask", "xin chào", "--data-dir", str(tmp_path)], capsys)
    assert code == 2 and "ketluan index" in err


def test_serve_builds_a_missing_index_then_serves_with_workers(tmp_path: Path) -> None:
    shutil.copytree(ROOT / "data" / "corpus", tmp_path / "corpus")
    stale = SQLiteAnswerCache(host_cache_path(tmp_path), size=10, ttl_seconds=3600)  # an earlier server's
    stale.put("an-earlier-answer", ChatResponse(conversation_id="c", message_id="m", answer="Cũ [1].",
                                                answered=True, citations=[], mode="extractive", latency_ms=1.0))  # fmt: skip
    stale.close()
    port = free_port()
    env = {**os.environ, "KETLUAN_EMBEDDING_MODEL": "hashing-64", "KETLUAN_API_KEYS": "",
           "KETLUAN_RATE_LIMIT_PER_MINUTE": "1000", "HF_HUB_OFFLINE": "1"}  # fmt: skip
    cmd = [sys.executable, "-m", "api.cli", "serve", "--data-dir", str(tmp_path), "--port", str(port),
           "--workers", "2", "--no-access-log"]  # fmt: skip
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        ready = wait_ready(f"http://127.0.0.1:{port}", timeout=120)
        assert ready.status_code == 200, ready.text
        assert ready.json()["documents"] == 5
        # the workers share answers of their own, not those of the server before
        assert (
            SQLiteAnswerCache(host_cache_path(tmp_path), size=10, ttl_seconds=3600).get("an-earlier-answer")
            is None
        )
        for _ in range(4):
            r = httpx.post(
                f"http://127.0.0.1:{port}/v1/search", json={"query": "trạm y tế cấp xã"}, timeout=30
            )
            assert r.status_code == 200 and r.json()["results"]
        # whichever worker answers /metrics, it adds up every worker's counts
        metrics = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=30).text
        assert 'ketluan_http_requests_total{method="POST",route="/v1/search",status="200"} 4.0' in metrics
        assert "ketluan_index_passages" in metrics
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            _, err = proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            _, err = proc.communicate()
    assert "index built" in err or "index ready" in err
    assert (tmp_path / "index" / "current").exists()


def test_index_without_a_corpus_folder_builds_the_shipped_corpus(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """API.md: `ketluan index --data-dir D` with no D/corpus indexes the project's shipped Kết luận."""
    monkeypatch.setenv("KETLUAN_EMBEDDING_MODEL", "hashing-64")
    code, _, err = _run(["index", "--quiet", "--data-dir", str(tmp_path)], capsys)
    assert code == 0, err
    manifest = json.loads((tmp_path / "index" / "current" / "manifest.json").read_text("utf-8"))
    assert manifest["corpora"] == [str((ROOT / "data" / "corpus").resolve())]
    assert manifest["documents"] == len(list((ROOT / "data" / "corpus").glob("*.txt")))
    assert not (tmp_path / "corpus").exists()  # the shipped corpus is read, never copied or changed


def test_add_and_remove_from_the_command_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """`ketluan add FILE` then `ketluan remove ID`: the same jobs as the admin routes, in the foreground."""
    monkeypatch.setenv("KETLUAN_EMBEDDING_MODEL", "hashing-64")
    note = tmp_path / "ghi-chu.txt"
    note.write_text("Ghi chú\nMột văn bản ngắn để thử lệnh thêm văn bản.\n", "utf-8")
    data = tmp_path / "data"
    code, out, err = _run(["add", str(note), "--data-dir", str(data)], capsys)
    assert code == 0, err
    document_id = out.split("\t")[0]
    documents = json.loads(next((data / "index" / "builds").glob("*/documents.json")).read_text("utf-8"))
    assert document_id in {d["document_id"] for d in documents}
    code, out, err = _run(["remove", document_id, "--data-dir", str(data)], capsys)
    assert code == 0, err
    current = json.loads((data / "index" / "current" / "documents.json").read_text("utf-8"))
    assert document_id not in {d["document_id"] for d in current}
    code, _, err = _run(["add", str(tmp_path / "missing.pdf"), "--data-dir", str(data)], capsys)
    assert code == 2 and "file not found" in err
    code, _, err = _run(["add", "http://127.0.0.1:9/x.pdf", "--data-dir", str(data)], capsys)
    assert code == 2 and "private or local" in err


def test_with_redis_a_command_line_job_is_recorded_where_the_servers_look(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    redis_server: RedisServer,
) -> None:
    from bot.stores import redis_stores
    from bot.stores.jobs import job_records

    monkeypatch.setenv("KETLUAN_EMBEDDING_MODEL", "hashing-64")
    monkeypatch.setenv("KETLUAN_REDIS_URL", redis_server.url)
    note = tmp_path / "ghi-chu.txt"
    note.write_text("Ghi chú\nMột văn bản ngắn để thử lệnh thêm văn bản.\n", "utf-8")
    code, out, err = _run(["add", str(note), "--data-dir", str(tmp_path / "data")], capsys)
    assert code == 0, err
    stores = redis_stores(redis_server.url)
    server_side = job_records(stores.backend, tmp_path / "another-host" / "admin")
    assert [(j.document_id, j.state) for j in server_side.recent()] == [(out.split("\t")[0], "done")]
    assert not (tmp_path / "data" / "admin" / "jobs").exists()
    stores.close()
