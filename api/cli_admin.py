"""`ketluan add FILE|URL` and `ketluan remove DOCUMENT_ID`: the same jobs as /v1/admin/*, run in the
foreground; a running server picks the new build up by itself, and with KETLUAN_PUBLISH_TO every host that
pulls from there. A data dir that serves a pulled index refuses them (the change belongs on the build host)."""

from __future__ import annotations

import argparse
import getpass
import sys
from pathlib import Path

from api.cli import index_settings
from index.errors import BadDocument
from index.library import Job, Library


def register(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser(
        "add", parents=[common], help="add a document (a file, or an http(s) URL) and re-index"
    )
    p.add_argument("source", help="a PDF, DOCX, HTML or text file, or an http(s) URL")
    p.add_argument("--replace", metavar="DOCUMENT_ID", help="replace this document (it keeps its id)")
    p.set_defaults(func=_cmd_add)
    p = sub.add_parser("remove", parents=[common], help="remove a document and re-index")
    p.add_argument("document_id", help="the document's id (see `GET /v1/documents`)")
    p.set_defaults(func=_cmd_remove)


def _library(args: argparse.Namespace) -> Library:
    """With KETLUAN_REDIS_URL the job and its audit lines go to Redis, where the servers look for them."""
    from bot.settings import BotSettings
    from bot.stores import redis_stores
    from bot.stores.jobs import job_records
    from index.embedding import load_embedder

    settings = index_settings(args)
    redis_url = BotSettings().redis_url
    records = None
    if redis_url:
        backend = redis_stores(
            redis_url, journal_path=settings.data_dir / "state" / "redis-journal.sqlite3"
        ).backend
        records = job_records(backend, settings.data_dir / "admin")
    return Library(settings, lambda: load_embedder(settings.embedding_model), records=records)


def _actor() -> str:
    return "cli:" + getpass.getuser()


def _run(library: Library, job: Job) -> int:
    done = library.run(job.job_id) if job.state == "queued" else job
    if done.state != "done":
        print(f"ketluan: job {done.job_id} failed: {done.error}", file=sys.stderr)
        return 1
    print(f"{done.document_id}\t{done.action}\tjob {done.job_id} done")
    return 0


def _cmd_add(args: argparse.Namespace) -> int:
    library = _library(args)
    library.check_writable()
    source: str = args.source
    if source.lower().startswith(("http://", "https://")):
        upload = library.accept_url(source)
    else:
        path = Path(source)
        if not path.is_file():
            raise BadDocument(f"file not found: {path}")
        upload = library.accept(path.read_bytes(), path.name)
    return _run(library, library.submit_add(upload, _actor(), replace=args.replace))


def _cmd_remove(args: argparse.Namespace) -> int:
    library = _library(args)
    return _run(library, library.submit_remove(args.document_id, _actor()))
