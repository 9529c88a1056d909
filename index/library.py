"""Operator changes to the corpus (add, replace, remove a document) → jobs that apply them to the data dir's
corpus folder and re-index incrementally, swapping the new build in while the old one keeps serving, then
publish it where the other hosts pull from (KETLUAN_PUBLISH_TO). A host that pulls its index refuses changes.

On disk, under the data dir: `originals/{sha256}{.pdf|.docx|.html|.txt}` (every upload as it came),
`corpus/` with its registry (index/layout.py REGISTRY) and `admin/.lock` (one change at a time, across
worker processes). Job records (state, progress, error) and the audit log (who, when, what: a key id, never
a key) go to index/jobs.py's records: `admin/` files, or the shared store the server hands in. The first
change copies the shipped corpus into the data dir when it has none."""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import hashlib
import logging
import os
import re
import secrets
import shutil
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from index.embedding import Embedder
from index.errors import BadDocument, DocumentTooLarge, KetLuanError, NotFound, PulledIndex, UpstreamError
from index.fetch import fetch
from index.ingest import SUFFIX, Kind, extract, sniff
from index.jobs import HOST, FileJobRecords, Job, JobRecords
from index.jobs import JobState as JobState  # the admin routes name a job's state through this module
from index.layout import RegistryEntry, current_build, load_documents, read_registry, write_registry
from index.models import Document
from index.publish import publish, pulled_source
from index.settings import IndexSettings
from index.structure import parse_document, slugify

log = logging.getLogger(__name__)


class Upload(BaseModel):
    """Bytes accepted for indexing: their type (by content), checksum and where they came from."""

    sha256: str
    kind: Kind
    name: str
    source_url: str | None = None
    size: int


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _checked(job: Job) -> Job:
    """A queued or running job of a process of this host that has ended reads as failed (another host's
    process cannot be looked at from here: its record stands as written)."""
    if job.state in ("queued", "running") and job.host in ("", HOST) and not _alive(job.pid):
        return job.model_copy(
            update={"state": "failed", "error": "interrupted: the process running it ended"}
        )
    return job


def _shown(source: str) -> str:
    """A source fit for a message: no user:password of an http(s) URL."""
    return re.sub(r"^(https?://)[^/@]*@", r"\1", source)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError):
        return True
    return True


class Library:
    """The operator's view of the corpus. `submit_*` record a job and return it at once; `run(job_id)` does
    the work (the HTTP app runs it on its one job thread, the CLI in the foreground)."""

    def __init__(
        self,
        settings: IndexSettings,
        embedder: Callable[[], Embedder],
        *,
        fetcher: Callable[..., Any] = fetch,
        on_built: Callable[[], None] | None = None,
        records: JobRecords | None = None,
    ) -> None:
        self.settings = settings
        self._embedder = embedder
        self._fetch = fetcher
        self._on_built = on_built  # the server loads the new build at once (other workers within a second)
        self.originals = settings.data_dir / "originals"
        self.admin = settings.data_dir / "admin"
        self.records = records or FileJobRecords(self.admin)
        self._executor: ThreadPoolExecutor | None = None

    # --- input --------------------------------------------------------------------------------------
    def accept(self, data: bytes, name: str, source_url: str | None = None) -> Upload:
        """Check size and type (by content) and keep the original; DocumentTooLarge / UnsupportedMedia."""
        self.check_writable()
        if len(data) > self.settings.max_document_bytes:
            raise DocumentTooLarge(
                f"{name} is {len(data)} bytes, more than {self.settings.max_document_bytes}"
            )
        if not data.strip():
            raise BadDocument(f"{name} is empty")
        kind = sniff(data)
        upload = Upload(sha256=_sha256(data), kind=kind, name=name, source_url=source_url, size=len(data))
        self.originals.mkdir(parents=True, exist_ok=True)
        target = self.originals / f"{upload.sha256}{SUFFIX[kind]}"
        if not target.exists():
            tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
            tmp.write_bytes(data)
            os.replace(tmp, target)
        return upload

    def accept_url(self, url: str) -> Upload:
        """Fetch a document's URL (http(s) to public addresses only, redirects re-checked) and accept it."""
        self.check_writable()
        fetched = self._fetch(url, max_bytes=self.settings.max_document_bytes, timeout=self.settings.fetch_timeout,
                              allow=self.settings.fetch_allowed())  # fmt: skip
        return self.accept(fetched.data, url, source_url=fetched.url)

    def check_writable(self) -> None:
        """PulledIndex when this host serves an index pulled from a published bundle (KETLUAN_INDEX_SOURCE,
        or `ketluan pull` made its current build): a change made here would be undone by the next pull and
        would never reach the other hosts."""
        configured = self.settings.index_source
        source = configured or pulled_source(self.settings.index_dir)
        if not source:
            return
        why = (
            f"KETLUAN_INDEX_SOURCE={_shown(source)}"
            if configured
            else f"its build was pulled from {_shown(source)}"
        )
        raise PulledIndex(
            f"this host serves a published index that it pulls ({why}): a document added, replaced or removed "
            "here would be overwritten by its next pull and never reach the other hosts. Make the change on "
            "the build host (the one with KETLUAN_PUBLISH_TO set), whose publish reaches every host"
        )

    # --- jobs ---------------------------------------------------------------------------------------
    def submit_add(self, upload: Upload, actor: str, *, replace: str | None = None) -> Job:
        """A job that adds (or, with `replace`, replaces) the document. The same bytes as a document already
        indexed give a job that is done at once, for that document."""
        self.check_writable()
        if replace is not None:
            self._known_id(replace)
            document_id = replace
        else:
            existing = self._indexed_with(upload.sha256)
            if existing is not None:
                job = self._new_job("add", existing, upload, actor)
                job = job.model_copy(update={"state": "done", "progress": 1.0, "finished_at": _now()})
                self._save(job)
                self.audit(
                    actor, "add", existing, job.job_id, sha256=upload.sha256, outcome="already indexed"
                )
                return job
            document_id = self._new_id(upload)
        job = self._new_job("replace" if replace else "add", document_id, upload, actor)
        self._save(job)
        self.audit(actor, job.action, document_id, job.job_id, sha256=upload.sha256, source_url=upload.source_url,
                   name=upload.name)  # fmt: skip
        return job

    def submit_remove(self, document_id: str, actor: str) -> Job:
        self.check_writable()
        self._known_id(document_id)
        job = Job(job_id=self._job_id(), action="remove", document_id=document_id, actor=actor,
                  created_at=_now(), pid=os.getpid(), host=HOST)  # fmt: skip
        self._save(job)
        self.audit(actor, "remove", document_id, job.job_id)
        return job

    def start(self, job: Job) -> Future[Job]:
        """Run the job on this process's one job thread (jobs of other processes wait on the lock)."""
        if self._executor is None:
            self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ketluan-job")
        return self._executor.submit(self.run, job.job_id)

    def close(self) -> None:
        if self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)

    def job(self, job_id: str) -> Job:
        job = self.records.load(job_id) if job_id.replace("-", "").replace("_", "").isalnum() else None
        if job is None:
            raise NotFound(f"no job {job_id!r}")
        return _checked(job)

    def jobs(self) -> list[Job]:
        """Every kept job, newest first."""
        return [_checked(job) for job in self.records.recent()]

    def run(self, job_id: str) -> Job:
        """Do the job: read the original, apply the change to the corpus, re-index. On any failure the
        corpus is put back as it was and the served build stays; the job records the reason."""
        job = self.job(job_id)
        if job.state != "queued":
            return job
        try:
            with self._lock():
                job = self._update(job, state="running", progress=0.05)
                if job.action == "remove":
                    change = self._plan_remove(job)
                else:
                    change = self._plan_add(job)
                    job = self._update(job, progress=0.3)
                self._apply_and_build(job, change)
        except KetLuanError as exc:
            log.warning("job %s failed: %s", job.job_id, exc.message)
            outcome: dict[str, Any] = {"state": "failed", "error": exc.message}
        except Exception as exc:
            log.exception("job %s crashed", job.job_id)
            outcome = {"state": "failed", "error": f"{exc.__class__.__name__}: {exc}"}
        else:
            outcome = {"state": "done", "progress": 1.0}
        # the record as the build and the publish left it (progress, step), then the outcome
        latest = self.records.load(job.job_id) or job
        job = self._update(latest, finished_at=_now(), **outcome)
        self.audit(job.actor, f"{job.action}.{job.state}", job.document_id, job.job_id, error=job.error)
        return job

    # --- the document list --------------------------------------------------------------------------
    def documents(self, indexed: dict[str, Document]) -> list[dict[str, Any]]:
        """The indexed documents with their status, checksum and source, then those a job is adding. `origin`
        is where the text came from: "shipped" (the corpus folder as installed), "upload" or "url"."""
        corpus = self.settings.default_corpus
        latest: dict[str, Job] = {}
        for job in self.jobs():
            latest.setdefault(job.document_id, job)
        out: list[dict[str, Any]] = []
        for doc in indexed.values():
            pending = latest.get(doc.document_id)
            status = "indexed"
            if pending is not None and pending.state in ("queued", "running"):
                status = "removing" if pending.action == "remove" else "updating"
            sha = doc.sha256
            if sha is None and (corpus / doc.source_file).is_file():
                sha = _sha256((corpus / doc.source_file).read_bytes())
            origin = "url" if doc.source_url else "upload" if doc.sha256 is not None else "shipped"
            out.append({**doc.model_dump(mode="json"), "status": status, "sha256": sha,
                        "source_url": doc.source_url, "origin": origin, "error": None})  # fmt: skip
        for document_id, job in latest.items():
            if document_id in indexed or job.action == "remove" or job.state == "done":
                continue
            out.append({"document_id": document_id, "title": job.name, "ket_luan": None, "issued": None,
                        "signer": None, "source_file": "", "passage_count": 0,
                        "status": job.state if job.state != "running" else "indexing",
                        "sha256": job.sha256, "source_url": job.source_url,
                        "origin": "url" if job.source_url else "upload", "error": job.error})  # fmt: skip
        return out

    # --- audit --------------------------------------------------------------------------------------
    def audit(self, actor: str, action: str, document_id: str, job_id: str, **details: Any) -> None:
        line = {"at": _now(), "actor": actor, "action": action, "document_id": document_id, "job_id": job_id}
        line.update({k: v for k, v in details.items() if v is not None})
        self.records.audit(line)

    # --- internals ----------------------------------------------------------------------------------
    def _job_id(self) -> str:
        return dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S") + "-" + secrets.token_hex(4)

    def _new_job(self, action: str, document_id: str, upload: Upload, actor: str) -> Job:
        return Job(job_id=self._job_id(), action=action, document_id=document_id, name=upload.name,  # type: ignore[arg-type]
                   sha256=upload.sha256, kind=upload.kind, source_url=upload.source_url, actor=actor,
                   created_at=_now(), pid=os.getpid(), host=HOST)  # fmt: skip

    def _save(self, job: Job) -> None:
        self.records.save(job)

    def _update(self, job: Job, **changes: Any) -> Job:
        job = job.model_copy(update=changes)
        self._save(job)
        return job

    @contextlib.contextmanager
    def _lock(self) -> Iterator[None]:
        self.admin.mkdir(parents=True, exist_ok=True)
        with (self.admin / ".lock").open("a") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)

    def _indexed(self) -> dict[str, Document]:
        try:
            return {d.document_id: d for d in load_documents(current_build(self.settings.index_dir))}
        except KetLuanError:
            return {}

    def _known_id(self, document_id: str) -> None:
        corpus = self.settings.default_corpus
        if document_id in self._indexed():
            return
        if corpus.is_dir() and any(e.document_id == document_id for e in read_registry(corpus).values()):
            return
        raise NotFound(f"no document {document_id!r}")

    def _indexed_with(self, sha256: str) -> str | None:
        """The id of an indexed document whose original (or corpus file) has these bytes."""
        corpus = self.settings.default_corpus
        for doc in self._indexed().values():
            if doc.sha256 == sha256:
                return doc.document_id
            path = corpus / doc.source_file
            if doc.sha256 is None and path.is_file() and _sha256(path.read_bytes()) == sha256:
                return doc.document_id
        return None

    def _new_id(self, upload: Upload) -> str:
        """`kl{number}-{sha6}` when a quick read (no OCR) finds a Kết luận number, else from the name."""
        data = (self.originals / f"{upload.sha256}{SUFFIX[upload.kind]}").read_bytes()
        ket_luan = None
        with contextlib.suppress(KetLuanError):
            text = extract(data, upload.kind, ocr=False).text
            if text:
                ket_luan = parse_document("upload.txt", text).document.ket_luan
        if ket_luan:
            candidate = f"kl{ket_luan.split('-')[0]}-{upload.sha256[:6]}"
        else:
            stem = upload.name.rstrip("/").rsplit("/", 1)[-1].rsplit(".", 1)[0]
            candidate = f"{slugify(stem)[:40]}-{upload.sha256[:6]}"
        return candidate

    def _corpus(self) -> Path:
        """The data dir's corpus folder, made from the shipped corpus the first time."""
        corpus = self.settings.corpus_dir
        if not corpus.is_dir():
            source = self.settings.default_corpus
            tmp = corpus.with_name(f".{corpus.name}.{os.getpid()}.tmp")
            shutil.rmtree(tmp, ignore_errors=True)
            shutil.copytree(source, tmp)
            os.replace(tmp, corpus)
        return corpus

    def _plan_add(self, job: Job) -> _Change:
        assert job.sha256 is not None and job.kind is not None
        kind: Kind = job.kind  # type: ignore[assignment]
        data = (self.originals / f"{job.sha256}{SUFFIX[kind]}").read_bytes()
        extracted = extract(data, kind, ocr=True, language=self.settings.ocr_language)
        name = f"{job.document_id}.txt"
        parsed = parse_document(name, extracted.text, document_id=job.document_id)
        if not parsed.passages:
            raise BadDocument("the document has no paragraphs to index (is it empty?)")
        corpus = self._corpus()
        registry = read_registry(corpus)
        drop = [n for n, e in registry.items() if e.document_id == job.document_id and n != name]
        if job.action == "replace":
            drop += [d.source_file for d in self._indexed().values()
                     if d.document_id == job.document_id and d.source_file not in registry and d.source_file != name]  # fmt: skip
        entry = RegistryEntry(document_id=job.document_id, sha256=job.sha256,
                              original=f"{job.sha256}{SUFFIX[kind]}", source_url=job.source_url,
                              scanned=extracted.ocr_pages > 0, added_at=_now(), job_id=job.job_id)  # fmt: skip
        return _Change(corpus, write={name: extracted.text}, drop=drop, entries={name: entry})

    def _plan_remove(self, job: Job) -> _Change:
        corpus = self._corpus()
        registry = read_registry(corpus)
        files = [n for n, e in registry.items() if e.document_id == job.document_id]
        files += [d.source_file for d in self._indexed().values()
                  if d.document_id == job.document_id and d.source_file not in files]  # fmt: skip
        files = [n for n in files if (corpus / n).is_file()]
        if not files:
            raise NotFound(f"no file of document {job.document_id!r} in {corpus.name}/")
        return _Change(corpus, write={}, drop=files, entries={})

    def _apply_and_build(self, job: Job, change: _Change) -> None:
        from index.build import build_index

        backup = change.apply()
        steps = {"read ": 0.45, "extracted ": 0.6, "reusing ": 0.7}

        def progress(message: str) -> None:
            for start, value in steps.items():
                if message.startswith(start):
                    self._update(self.job(job.job_id), progress=value)

        try:
            build_index([change.corpus], self.settings.index_dir, self._embedder(),
                        exact_search_max=self.settings.exact_search_max, progress=False, log=progress)  # fmt: skip
        except BaseException:
            backup.restore()
            raise
        if self._on_built is not None:
            try:
                self._on_built()
            except KetLuanError as exc:  # the build is in place; serving processes keep retrying it
                log.error("new build not loaded yet: %s", exc.message)
        if self.settings.publish_to is not None:
            self._publish(job, self.settings.publish_to)

    def _publish(self, job: Job, target: Path) -> None:
        """Publish the new build where the replicas pull from. A failure fails the job with its reason; the
        corpus change and the build stay (this host serves them), and the other hosts keep the build before."""
        self._update(self.job(job.job_id), progress=0.9, step="publishing")
        try:
            bundle = publish(self.settings.index_dir, target)
        except (KetLuanError, OSError) as exc:
            reason = exc.message if isinstance(exc, KetLuanError) else f"{exc.__class__.__name__}: {exc}"
            raise UpstreamError(
                f"the new build serves on this host but was not published to {target} (KETLUAN_PUBLISH_TO): "
                f"{reason}. The other hosts keep the build before it; once the shared location is writable, "
                "run `ketluan publish` on this host"
            ) from None
        self._update(self.job(job.job_id), step="published")
        log.info(
            "job %s: build %s (version %s) published to %s", job.job_id, bundle.build, bundle.version, target
        )


class _Change:
    """Files to write and drop in a corpus folder, and registry entries to set (dropped files lose theirs)."""

    def __init__(self, corpus: Path, *, write: dict[str, str], drop: list[str],
                 entries: dict[str, RegistryEntry]) -> None:  # fmt: skip
        self.corpus, self.write, self.drop, self.entries = corpus, write, drop, entries

    def apply(self) -> _Backup:
        registry = read_registry(self.corpus)
        backup = _Backup(self.corpus, dict(registry))
        for name in [*self.write, *self.drop]:
            path = self.corpus / name
            backup.files[name] = path.read_bytes() if path.is_file() else None
        for name, text in self.write.items():
            (self.corpus / name).write_text(text, "utf-8")
        for name in self.drop:
            (self.corpus / name).unlink(missing_ok=True)
            registry.pop(name, None)
        registry.update(self.entries)
        write_registry(self.corpus, registry)
        return backup


class _Backup:
    def __init__(self, corpus: Path, registry: dict[str, RegistryEntry]) -> None:
        self.corpus, self.registry = corpus, registry
        self.files: dict[str, bytes | None] = {}

    def restore(self) -> None:
        for name, data in self.files.items():
            path = self.corpus / name
            if data is None:
                path.unlink(missing_ok=True)
            else:
                path.write_bytes(data)
        write_registry(self.corpus, self.registry)
