"""An index build → a bundle published in a shared place (a directory or mounted volume, which any static web
server can also serve over HTTP(S)); a published bundle → this host's index dir, every file checked against
the manifest's size and sha256 before the build becomes `current`. A corrupt or partial bundle is refused
and the build being served stays.

Published layout: `<target>/builds/<build>/…` (the build's files and manifest.json, as `ketluan index` wrote
them) and `<target>/LATEST.json` = {"build": name, "version": manifest digest}, replaced in one rename.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import hashlib
import json
import logging
import os
import re
import shutil
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import httpx

from index.errors import IndexNotReady, UpstreamError
from index.layout import (
    BUILDS,
    CURRENT,
    MANIFEST,
    DamagedBuild,
    Manifest,
    build_version,
    current_build,
    point_current,
    prune,
    read_manifest,
    verify,
)

LATEST = "LATEST.json"
PULLED = "pulled.json"  # in the index dir: where the build `current` points at was pulled from
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,120}")
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Bundle:
    build: str
    version: str


def publish(index_dir: Path, target: Path) -> Bundle:
    """Copy the current build (checked against its manifest first) to `target` and make it the latest."""
    build = current_build(index_dir)
    manifest = read_manifest(build)
    verify(build, manifest, checksums=True)
    bundle = Bundle(build.name, build_version(build))
    dest = target / BUILDS / build.name
    if not (dest.is_dir() and build_version(dest) == bundle.version):
        work = target / BUILDS / f".{_stamp()}.{os.getpid()}.partial"
        work.parent.mkdir(parents=True, exist_ok=True)
        try:
            shutil.copytree(build, work)
            verify(work, manifest, checksums=True)
            if dest.exists():
                shutil.rmtree(dest)
            os.replace(work, dest)
        finally:
            shutil.rmtree(work, ignore_errors=True)
    _write_atomic(target / LATEST, json.dumps({"build": bundle.build, "version": bundle.version}).encode())
    return bundle


def pull(source: str, index_dir: Path, *, client: httpx.Client | None = None) -> Bundle | None:
    """Fetch the latest published bundle from `source` (a directory, or an http(s) URL of one) into
    `index_dir` and point `current` at it; None when it is already current. DamagedBuild when a file does
    not match the manifest or the manifest does not match the announced version (nothing is changed);
    UpstreamError when the source cannot be read."""
    reader = _Reader(source, client)
    try:
        latest = json.loads(reader.read(LATEST))
        bundle = Bundle(str(latest["build"]), str(latest["version"]))
    except (ValueError, KeyError, TypeError) as exc:
        raise DamagedBuild(f"{source}/{LATEST} is not a published bundle ({exc})") from None
    if not _NAME.fullmatch(bundle.build):
        raise DamagedBuild(f"{source}/{LATEST} names an invalid build {bundle.build!r}")
    builds = index_dir / BUILDS
    link = index_dir / CURRENT
    if link.exists() and build_version(link.resolve()) == bundle.version:
        return None
    builds.mkdir(parents=True, exist_ok=True)
    with (builds / ".pull.lock").open("w") as lock:
        fcntl.flock(
            lock, fcntl.LOCK_EX
        )  # the workers of one host pull one at a time; the later ones find it done
        return _install(reader, bundle, index_dir, source)


def _install(reader: _Reader, bundle: Bundle, index_dir: Path, source: str) -> Bundle | None:
    builds = index_dir / BUILDS
    link = index_dir / CURRENT
    if link.exists() and build_version(link.resolve()) == bundle.version:
        return None
    final = builds / bundle.build
    if not (final.is_dir() and build_version(final) == bundle.version and _whole(final)):
        work = builds / f".{_stamp()}.{os.getpid()}.partial"
        try:
            _fetch(reader, bundle, work)
            if final.exists():
                shutil.rmtree(final)
            os.replace(work, final)
        finally:
            shutil.rmtree(work, ignore_errors=True)
    _write_atomic(index_dir / PULLED, json.dumps({"source": source, "build": bundle.build,
                                                  "version": bundle.version}).encode())  # fmt: skip
    point_current(index_dir, final)
    prune(builds, final)
    log.info("index build %s (version %s) pulled from %s", bundle.build, bundle.version, source)
    return bundle


def pulled_source(index_dir: Path) -> str | None:
    """Where the build being served here was pulled from, or None when this host built it (a build made here
    after a pull has another version than the one the pull recorded)."""
    try:
        pulled = json.loads((index_dir / PULLED).read_text("utf-8"))
        version, source = str(pulled["version"]), str(pulled["source"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    link = index_dir / CURRENT
    return source if link.exists() and build_version(link.resolve()) == version else None


def _fetch(reader: _Reader, bundle: Bundle, work: Path) -> None:
    raw = reader.read(f"{BUILDS}/{bundle.build}/{MANIFEST}")
    if hashlib.sha256(raw).hexdigest()[:16] != bundle.version:
        raise DamagedBuild(
            f"index build {bundle.build}: its manifest does not match version {bundle.version}"
        )
    try:
        manifest = Manifest.model_validate_json(raw)
    except ValueError as exc:
        raise DamagedBuild(f"index build {bundle.build}: unreadable manifest ({exc})") from None
    if not manifest.files:
        raise DamagedBuild(f"index build {bundle.build}: its manifest lists no files")
    work.mkdir(parents=True)
    for name in manifest.files:
        relative = PurePosixPath(name)
        if relative.is_absolute() or ".." in relative.parts or not relative.parts:
            raise DamagedBuild(f"index build {bundle.build}: unsafe file name {name!r} in its manifest")
        path = work / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        reader.copy(f"{BUILDS}/{bundle.build}/{name}", path)
    verify(work, manifest, checksums=True)  # DamagedBuild names the first file that does not match
    (work / MANIFEST).write_bytes(raw)


def _whole(build: Path) -> bool:
    try:
        verify(build, read_manifest(build), checksums=True)
    except IndexNotReady:
        return False
    return True


class _Reader:
    """Files of a published tree, from a directory or over HTTP(S)."""

    def __init__(self, source: str, client: httpx.Client | None) -> None:
        self.source = source.rstrip("/")
        self.remote = source.startswith(("http://", "https://"))
        self.client = client

    def _url(self, name: str) -> str:
        return f"{self.source}/{name}"

    def read(self, name: str) -> bytes:
        if not self.remote:
            try:
                return (Path(self.source) / name).read_bytes()
            except OSError as exc:
                raise UpstreamError(f"cannot read {name} from {self.source}: {exc}") from None
        try:
            response = self._http().get(self._url(name))
            response.raise_for_status()
        except httpx.HTTPError as exc:
            raise UpstreamError(f"cannot fetch {self._url(name)}: {exc}") from None
        return response.content

    def copy(self, name: str, dest: Path) -> None:
        if not self.remote:
            try:
                shutil.copyfile(Path(self.source) / name, dest)
            except OSError as exc:
                raise DamagedBuild(f"published bundle is incomplete: {name} ({exc})") from None
            return
        try:
            with self._http().stream("GET", self._url(name)) as response:
                if response.status_code == 404:
                    raise DamagedBuild(f"published bundle is incomplete: {name} is missing")
                response.raise_for_status()
                with dest.open("wb") as fh:
                    for block in response.iter_bytes(1 << 20):
                        fh.write(block)
        except httpx.HTTPError as exc:
            raise UpstreamError(f"cannot fetch {self._url(name)}: {exc}") from None

    def _http(self) -> httpx.Client:
        if self.client is None:
            self.client = httpx.Client(timeout=httpx.Timeout(60.0, connect=5.0), follow_redirects=False)
        return self.client


class Puller:
    """Polls `source` every `interval` seconds in a daemon thread and pulls what is new; the holder that
    watches `current` then loads it. A failed pull is logged and retried at the next poll."""

    def __init__(self, source: str, index_dir: Path, interval: float,
                 on_error: Callable[[str], None] | None = None) -> None:  # fmt: skip
        self.source, self.index_dir, self.interval = source, index_dir, interval
        self.on_error = on_error
        self.last_error: str | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def poll(self) -> Bundle | None:
        try:
            bundle = pull(self.source, self.index_dir)
        except (IndexNotReady, UpstreamError) as exc:
            self.last_error = exc.message
            log.error(
                "index pull from %s failed, still serving the current build: %s", self.source, exc.message
            )
            if self.on_error is not None:
                self.on_error(exc.message)
            return None
        self.last_error = None
        return bundle

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="ketluan-index-pull", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            self.poll()
            self._stop.wait(self.interval)

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)


def _stamp() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S%f")


def _write_atomic(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)
