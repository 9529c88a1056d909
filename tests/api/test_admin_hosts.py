"""Administration behind a balancer: with Redis, the host that did not take an upload reports its job, and
the audit log is one for every host (a job's record lived in the data dir of the host that ran it). With
published bundles, a change made on the build host reaches every replica through the publish, and a replica
that pulls its index refuses changes (409) while its lists and job reports still work."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from bot.stores import redis_stores, sqlite_stores
from index.build import build_index
from index.embedding import HashingEmbedder
from index.publish import publish, pull
from index.settings import IndexSettings
from tests.api.conftest import make_settings
from tests.api.test_admin import ADMIN, OFFICIAL_221, ROOT, Factory, _app_over, _finish, _poll
from tests.redis_server import RedisServer


def test_every_host_reports_a_job_and_keeps_one_audit_log(
    tmp_path: Path, fake_service_factory: Factory, redis_server: RedisServer
) -> None:
    shared = [redis_stores(redis_server.url) for _ in "ab"]
    hosts = [
        _app_over(tmp_path / name, fake_service_factory, s, admin_keys=ADMIN)
        for name, s in zip("ab", shared, strict=True)
    ]
    with hosts[0] as a, hosts[1] as b:
        for client in (a, b):
            _poll(lambda c=client: c.get("/readyz").status_code == 200)
            client.headers["Authorization"] = f"Bearer {ADMIN}"
        accepted = a.post(
            "/v1/admin/documents", files={"file": ("kl221.txt", OFFICIAL_221.read_bytes())}
        ).json()
        job = _finish(b, accepted["job_id"])  # asked of the other host, as a balancer may send it
        assert job["state"] == "done" and job["document_id"] == accepted["document_id"]
        assert b.get(f"/v1/admin/jobs/{accepted['job_id']}").status_code == 200
    audit = [json.loads(x) for x in shared[0].backend.client.lrange("ketluan:admin:audit", 0, -1)]  # type: ignore[union-attr]
    assert [(line["action"], line["job_id"]) for line in audit] == [
        ("add", accepted["job_id"]),
        ("add.done", accepted["job_id"]),
    ]
    assert not (tmp_path / "a" / "admin" / "audit.jsonl").exists()  # not split between the hosts' disks
    for s in shared:
        s.close()


# --- a build host that publishes, replicas that pull ------------------------------------------------------
SHIPPED = ROOT / "data" / "corpus" / "000_5d30afc99b18f1f4.txt"


def _host(data_dir: Path, factory: Factory, **index: Any) -> TestClient:
    """An app with administration on over a data dir holding one shipped text (hashing embedder)."""
    corpus = data_dir / "corpus"
    corpus.mkdir(parents=True)
    shutil.copy(SHIPPED, corpus)
    settings = IndexSettings(
        data_dir=data_dir, embedding_model="hashing-64", max_document_bytes=100_000, **index
    )
    build_index([corpus], settings.index_dir, HashingEmbedder(64), progress=False, log=lambda _: None)
    app = create_app(make_settings(settings, admin_keys=ADMIN), stores=sqlite_stores(":memory:"),
                     service_factory=factory)  # fmt: skip
    client = TestClient(app)
    client.headers["Authorization"] = f"Bearer {ADMIN}"
    return client


def _replica(data_dir: Path, factory: Factory, shared: Path) -> TestClient:
    settings = IndexSettings(data_dir=data_dir, embedding_model="hashing-64", index_source=str(shared),
                             index_poll_seconds=0.05)  # fmt: skip
    app = create_app(make_settings(settings, admin_keys=ADMIN), stores=sqlite_stores(":memory:"),
                     service_factory=factory)  # fmt: skip
    client = TestClient(app)
    client.headers["Authorization"] = f"Bearer {ADMIN}"
    return client


@pytest.fixture()
def shared(tmp_path: Path) -> Path:
    """The shared location, holding a first build published by a build host that is not running."""
    first = IndexSettings(data_dir=tmp_path / "first", embedding_model="hashing-64")
    (first.data_dir / "corpus").mkdir(parents=True)
    shutil.copy(SHIPPED, first.data_dir / "corpus")
    build_index([first.data_dir / "corpus"], first.index_dir, HashingEmbedder(64), progress=False,
                log=lambda _: None)  # fmt: skip
    publish(first.index_dir, tmp_path / "shared")
    return tmp_path / "shared"


def test_a_replica_that_pulls_its_index_refuses_changes_and_still_reports(
    tmp_path: Path, fake_service_factory: Factory, shared: Path
) -> None:
    with _replica(tmp_path / "replica", fake_service_factory, shared) as replica:
        _poll(lambda: replica.get("/readyz").status_code == 200)
        listed = replica.get("/v1/admin/documents")
        assert listed.status_code == 200
        (shipped,) = (d["document_id"] for d in listed.json()["documents"])
        refused = [
            replica.post("/v1/admin/documents", files={"file": ("kl221.txt", OFFICIAL_221.read_bytes())}),
            replica.post("/v1/admin/documents", json={"url": "https://example.org/kl.pdf"}),
            replica.put(
                f"/v1/admin/documents/{shipped}", files={"file": ("kl221.txt", OFFICIAL_221.read_bytes())}
            ),
            replica.delete(f"/v1/admin/documents/{shipped}"),
        ]
        for r in refused:
            assert r.status_code == 409, r.text
            error = r.json()["error"]
            assert error["code"] == "pulled_index"
            assert f"KETLUAN_INDEX_SOURCE={shared}" in error["detail"]
            assert "build host" in error["detail"] and "KETLUAN_PUBLISH_TO" in error["detail"]
            assert "máy chủ lập chỉ mục" in error["message"]
        assert replica.get("/v1/admin/jobs/20260101T000000-00000000").status_code == 404
        assert replica.get("/v1/admin/documents").json()["documents"][0]["status"] == "indexed"
    assert not (tmp_path / "replica" / "originals").exists()  # nothing kept that no host would index
    assert not (tmp_path / "replica" / "corpus").exists()


@pytest.mark.parametrize("argv", [["add", str(OFFICIAL_221)], ["remove", "some-document"]])
def test_the_cli_refuses_changes_to_a_data_dir_that_serves_a_pulled_index(
    tmp_path: Path, shared: Path, argv: list[str], monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    from api import cli

    for name in ("KETLUAN_INDEX_SOURCE", "KETLUAN_REDIS_URL", "KETLUAN_PUBLISH_TO"):
        monkeypatch.delenv(name, raising=False)
    data_dir = tmp_path / "replica"
    pull(str(shared), data_dir / "index")  # as `ketluan pull` does, KETLUAN_INDEX_SOURCE unset in this shell
    with pytest.raises(SystemExit) as exit_:
        cli.main([*argv, "--data-dir", str(data_dir)])
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert f"its build was pulled from {shared}" in err and "build host" in err
    assert not (data_dir / "originals").exists() and not (data_dir / "corpus").exists()


def test_an_upload_on_the_build_host_reaches_a_replica_that_pulls(
    tmp_path: Path, fake_service_factory: Factory, shared: Path
) -> None:
    build = _host(tmp_path / "build", fake_service_factory, publish_to=shared)
    with build, _replica(tmp_path / "replica", fake_service_factory, shared) as replica:
        for client in (build, replica):
            _poll(lambda c=client: c.get("/readyz").status_code == 200)
        accepted = build.post(
            "/v1/admin/documents", files={"file": ("kl221.txt", OFFICIAL_221.read_bytes())}
        ).json()
        job = _finish(build, accepted["job_id"])
        assert (job["state"], job["error"], job["step"]) == ("done", None, "published")

        def served() -> set[str]:
            return {d["document_id"] for d in replica.get("/v1/documents").json()["documents"]}

        _poll(lambda: accepted["document_id"] in served())  # the replica's poll pulled the new bundle
        hits = replica.post("/v1/search", json={"query": "sắp xếp trường học cấp xã", "k": 1}).json()
        assert hits["results"][0]["document_id"] == accepted["document_id"]


def test_a_failed_publish_fails_the_job_and_the_build_host_keeps_serving_the_change(
    tmp_path: Path, fake_service_factory: Factory
) -> None:
    blocked = tmp_path / "not-a-directory"
    blocked.write_text("a file where the shared directory should be")
    with _host(tmp_path / "build", fake_service_factory, publish_to=blocked) as build:
        _poll(lambda: build.get("/readyz").status_code == 200)
        accepted = build.post(
            "/v1/admin/documents", files={"file": ("kl221.txt", OFFICIAL_221.read_bytes())}
        ).json()
        job = _finish(build, accepted["job_id"])
        assert job["state"] == "failed" and job["step"] == "publishing"
        assert "not published to" in job["error"] and "ketluan publish" in job["error"]
        documents = {d["document_id"]: d for d in build.get("/v1/admin/documents").json()["documents"]}
        assert documents[accepted["document_id"]]["status"] == "indexed"


@pytest.mark.parametrize("configured", [True, False])
def test_ketluan_publish_goes_to_the_publish_to_setting(
    tmp_path: Path, shared: Path, configured: bool, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    from api import cli

    data_dir = tmp_path / "first"  # the data dir whose build `shared` holds
    target = tmp_path / "elsewhere"
    if configured:
        monkeypatch.setenv("KETLUAN_PUBLISH_TO", str(target))
    else:
        monkeypatch.delenv("KETLUAN_PUBLISH_TO", raising=False)
    with pytest.raises(SystemExit) as exit_:
        cli.main(["publish", "--data-dir", str(data_dir)])
    out, err = capsys.readouterr()
    if configured:
        assert exit_.value.code == 0 and json.loads(out)["to"] == str(target)
        assert json.loads((target / "LATEST.json").read_text()) == json.loads(
            (shared / "LATEST.json").read_text()
        )
    else:
        assert exit_.value.code == 2 and "pass --to or set KETLUAN_PUBLISH_TO" in err
        assert not target.exists()
