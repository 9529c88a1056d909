"""Operator jobs and audit lines → kept where every host that serves the admin routes finds them: files
under the data dir's `admin/` folder (`jobs/{job_id}.json`, `audit.jsonl`) by default, or a shared store
behind the `JobRecords` seam (bot/stores/jobs.py keeps them in Redis when the service uses Redis)."""

from __future__ import annotations

import contextlib
import json
import os
import socket
from pathlib import Path
from typing import Any, Literal, Protocol

from pydantic import BaseModel

JobState = Literal["queued", "running", "done", "failed"]
KEEP_JOBS = 500
HOST = socket.gethostname()  # with `pid`, which process runs a job: only its own host can tell if it died


class Job(BaseModel):
    job_id: str
    state: JobState = "queued"
    progress: float = 0.0
    # "publishing" to KETLUAN_PUBLISH_TO, then "published"; "" when there is nowhere to publish
    step: str = ""
    error: str | None = None
    action: Literal["add", "replace", "remove"]
    document_id: str
    name: str = ""  # the uploaded file's name or the URL, for the document list while it is pending
    sha256: str | None = None
    kind: str | None = None
    source_url: str | None = None
    actor: str = ""
    created_at: str = ""
    finished_at: str | None = None
    pid: int = 0
    host: str = ""  # "" in records made before hosts were named: this host


class JobRecords(Protocol):
    def save(self, job: Job) -> None:
        """Write the job's record (keeping the newest KEEP_JOBS)."""
        ...

    def load(self, job_id: str) -> Job | None: ...

    def recent(self) -> list[Job]:
        """Every kept job, newest first (job ids begin with their UTC time)."""
        ...

    def audit(self, line: dict[str, Any]) -> None:
        """Append one line to the audit log."""
        ...


class FileJobRecords:
    """One JSON file per job (replaced in one rename) and an append-only audit.jsonl, under `admin`."""

    def __init__(self, admin: Path) -> None:
        self.admin = admin
        self.jobs_dir = admin / "jobs"

    def save(self, job: Job) -> None:
        self.jobs_dir.mkdir(parents=True, exist_ok=True)
        path = self.jobs_dir / f"{job.job_id}.json"
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        tmp.write_text(job.model_dump_json(), "utf-8")
        os.replace(tmp, path)
        for old in sorted(self.jobs_dir.glob("*.json"), reverse=True)[KEEP_JOBS:]:
            old.unlink(missing_ok=True)

    def load(self, job_id: str) -> Job | None:
        path = self.jobs_dir / f"{job_id}.json"
        if not job_id.replace("-", "").replace("_", "").isalnum() or not path.is_file():  # no "../"
            return None
        return Job.model_validate_json(path.read_text("utf-8"))

    def recent(self) -> list[Job]:
        if not self.jobs_dir.is_dir():
            return []
        found = []
        for path in sorted(self.jobs_dir.glob("*.json"), reverse=True):
            with contextlib.suppress(ValueError, OSError):
                found.append(Job.model_validate_json(path.read_text("utf-8")))
        return found

    def audit(self, line: dict[str, Any]) -> None:
        self.admin.mkdir(parents=True, exist_ok=True)
        with (self.admin / "audit.jsonl").open("a", encoding="utf-8") as fh:  # one short append: atomic
            fh.write(json.dumps(line, ensure_ascii=False) + "\n")
