"""Administration behind a balancer: with Redis, the host that did not take an upload reports its job, and
the audit log is one for every host (a job's record lived in the data dir of the host that ran it)."""

from __future__ import annotations

import json
from pathlib import Path

from bot.stores import redis_stores
from tests.api.test_admin import ADMIN, OFFICIAL_221, Factory, _app_over, _finish, _poll
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
