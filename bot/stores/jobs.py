"""Operator jobs and audit lines (index/jobs.py's records) → Redis, so every host behind the balancer reports
the same job and the audit log is one; while Redis is down this host's `admin/` files stand in and the
writes are journaled, then replayed in order."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from bot.stores.redis_backend import RedisBackend
from bot.stores.sqlite_backend import SQLiteBackend
from index.jobs import KEEP_JOBS, FileJobRecords, Job, JobRecords


class RedisJobRecords:
    """Job records in one hash, their ids in a sorted set (all scores 0, so ordered by id: by time) for the
    newest KEEP_JOBS, and the audit log in a list."""

    def __init__(self, backend: RedisBackend, local: JobRecords) -> None:
        self._b = backend
        self._r = backend.client
        self._local = local
        self._jobs, self._ids, self._audit = (backend.key("admin", k) for k in ("jobs", "job_ids", "audit"))
        backend.on_replay("job", lambda a: self._save(Job.model_validate_json(a[0])))
        backend.on_replay("audit", lambda a: self._append(a[0]))

    def _save(self, job: Job) -> None:
        pipe = self._r.pipeline(transaction=True)
        pipe.hset(self._jobs, job.job_id, job.model_dump_json())
        pipe.zadd(self._ids, {job.job_id: 0})
        pipe.execute()
        old = self._r.zrange(self._ids, 0, -(KEEP_JOBS + 1))
        if old:
            pipe = self._r.pipeline(transaction=True)
            pipe.hdel(self._jobs, *old)  # type: ignore[arg-type]
            pipe.zrem(self._ids, *old)  # type: ignore[arg-type]
            pipe.execute()

    def save(self, job: Job) -> None:
        self._b.call("job", lambda: self._save(job), lambda: self._local.save(job), [job.model_dump_json()])

    def load(self, job_id: str) -> Job | None:
        def work() -> Job | None:
            raw = self._r.hget(self._jobs, job_id)
            return None if raw is None else Job.model_validate_json(raw)  # type: ignore[arg-type]

        return self._b.call("job_load", work, lambda: self._local.load(job_id))

    def recent(self) -> list[Job]:
        def work() -> list[Job]:
            ids = self._r.zrevrange(self._ids, 0, KEEP_JOBS - 1)
            if not ids:
                return []
            raw = self._r.hmget(self._jobs, ids)  # type: ignore[arg-type]
            return [Job.model_validate_json(r) for r in raw if r]  # type: ignore[union-attr]

        return self._b.call("jobs", work, self._local.recent)

    def _append(self, line: dict[str, Any]) -> None:
        self._r.rpush(self._audit, json.dumps(line, ensure_ascii=False))

    def audit(self, line: dict[str, Any]) -> None:
        self._b.call("audit", lambda: self._append(line), lambda: self._local.audit(line), [line])


def job_records(backend: SQLiteBackend | RedisBackend, admin: Path) -> JobRecords:
    """Where the operator's jobs and audit log go: Redis when the stores use it, else files under `admin`."""
    files = FileJobRecords(admin)
    return RedisJobRecords(backend, files) if isinstance(backend, RedisBackend) else files
