"""The on-disk layout of index builds: paths, manifest (with every file's size and checksum), the `current`
link, staleness, verification and loading of a build's files. The read path imports this, never the build."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import shutil
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

from index.errors import BadCorpus, IndexNotReady
from index.loaders import corpus_files
from index.models import Document, Passage

FORMAT = (
    8  # bump when passages, ids, extraction or the on-disk layout change: old indexes then count as stale
)
CURRENT = "current"
BUILDS = "builds"
MANIFEST = "manifest.json"
# Search-time parameter of an approximate index (see index/build.py for how it was chosen)
HNSW_EF_SEARCH = 128  # SearchIndex asks for 200 candidates, so in service the effective efSearch is >= 200
FAISS_READ_FLAGS = 0x200 | 0x2  # faiss.IO_FLAG_MMAP_IFC | IO_FLAG_READ_ONLY; faiss is imported lazily
# A build whose vectors and BM25 arrays are smaller than this is read into memory: a file truncated under a
# serving process cannot kill it then (reading a memory-mapped file past its new end is SIGBUS). Larger
# builds are memory-mapped so worker processes share the page cache (the server checks their sizes instead).
MAP_MIN_BYTES = 64 * 2**20
MAPPED = ("embeddings.npy", "vectors.faiss", "bm25/")

log = logging.getLogger(__name__)


class FileEntry(BaseModel):
    size: int
    sha256: str


class Manifest(BaseModel):
    format: int = FORMAT
    model: str
    dim: int
    fingerprint: str
    corpora: list[str]
    documents: int
    passages: int
    vector_index: str = Field(description='"flat" (exact) or "hnsw" (approximate)')
    built_at: str
    build_seconds: float = 0.0
    directives: int = 0
    references: int = 0
    extract_seconds: float = Field(default=0.0, description="time the extraction stage took")
    files: dict[str, FileEntry] = Field(
        default_factory=dict, description="every file of the build but the manifest: size and sha256"
    )


class DamagedBuild(IndexNotReady):
    """A build whose files do not match its manifest (truncated, missing or altered)."""


def fingerprint(corpora: Sequence[Path], model: str) -> str:
    """Changes when any corpus file, the parser format or the embedding model changes."""
    digest = hashlib.sha256(f"format={FORMAT};model={model}".encode())
    for folder in corpora:
        for path in corpus_files(folder):
            digest.update(str(path.relative_to(folder)).encode("utf-8"))
            digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def file_entries(build: Path) -> dict[str, FileEntry]:
    """Size and sha256 of every file under `build` but the manifest, by path relative to it."""
    out: dict[str, FileEntry] = {}
    for path in sorted(p for p in build.rglob("*") if p.is_file()):
        name = path.relative_to(build).as_posix()
        if name != MANIFEST:
            out[name] = FileEntry(size=path.stat().st_size, sha256=_sha256(path))
    return out


def verify(build: Path, manifest: Manifest, *, checksums: bool = False) -> None:
    """DamagedBuild unless every file the manifest lists is there with its size (and, with `checksums`, its
    sha256). Sizes cost one stat a file: cheap enough to check before anything is memory-mapped."""
    for name, entry in manifest.files.items():
        path = build / name
        try:
            size = path.stat().st_size
        except OSError:
            raise DamagedBuild(f"index build {build.name} is corrupt: {name} is missing") from None
        if size != entry.size:
            raise DamagedBuild(f"index build {build.name} is corrupt: {name} has {size} bytes, "
                               f"its manifest says {entry.size}")  # fmt: skip
        if checksums and _sha256(path) != entry.sha256:
            raise DamagedBuild(f"index build {build.name} is corrupt: {name} does not match its checksum")


def build_version(build: Path) -> str:
    """What identifies a build on every host: the digest of its manifest, which holds every file's checksum
    (a build copied elsewhere keeps it; a rebuild of changed files does not)."""
    try:
        return hashlib.sha256((build / MANIFEST).read_bytes()).hexdigest()[:16]
    except OSError:
        return build.name


def mapped_bytes(manifest: Manifest) -> int:
    """How much of the build a search reads from memory-mapped files when it is mapped."""
    return sum(e.size for name, e in manifest.files.items() if name.startswith(MAPPED))


def read_manifest(build: Path) -> Manifest:
    try:
        return Manifest.model_validate_json((build / MANIFEST).read_text("utf-8"))
    except FileNotFoundError as exc:
        raise IndexNotReady(
            f"index at {build} has no manifest.json: rebuild it with `ketluan index`"
        ) from exc
    except ValueError as exc:
        raise IndexNotReady(f"index manifest at {build} is corrupt ({exc.__class__.__name__}): "
                            "rebuild it with `ketluan index`") from exc  # fmt: skip


def _good(build: Path) -> bool:
    try:
        verify(build, read_manifest(build))
    except IndexNotReady:
        return False
    return True


def current_build(index_dir: Path) -> Path:
    """The build `current` points at, verified against its manifest's sizes; when it is damaged (files that no
    longer match the manifest, or no readable manifest), the newest earlier build that is whole (logged);
    IndexNotReady when there is none."""
    link = index_dir / CURRENT
    if not link.exists():
        raise IndexNotReady(f"no index in {index_dir}: run `ketluan index` to build it")
    build = link.resolve()
    try:
        verify(build, read_manifest(build))
        return build
    except IndexNotReady as exc:  # damaged files or an unreadable manifest
        damage = exc
    builds = index_dir / BUILDS
    earlier = sorted((p for p in builds.iterdir() if p.is_dir() and not p.name.startswith(".") and p != build),
                     reverse=True) if builds.is_dir() else []  # fmt: skip
    for candidate in earlier:
        if _good(candidate):
            log.error("%s; serving the previous build %s instead (rebuild with `ketluan index`)", damage,
                      candidate.name)  # fmt: skip
            return candidate
    log.error("%s; no earlier whole build to fall back on", damage)
    raise damage


def point_current(index_dir: Path, build: Path) -> None:
    """Swap the `current` link in one rename, so a reader sees the old build or the new one, never half."""
    link = index_dir / CURRENT
    tmp = index_dir / f".{CURRENT}.{os.getpid()}"
    if tmp.is_symlink() or tmp.exists():
        tmp.unlink()
    tmp.symlink_to(build.relative_to(index_dir))
    os.replace(tmp, link)


def prune(builds: Path, keep: Path, spare: int = 1) -> None:
    """Keep the new build and the one before it (a serving process may still be reading it); remove what
    builds killed half-way left behind."""
    old = sorted((p for p in builds.iterdir() if p.is_dir() and p != keep and not p.name.startswith(".")),
                 reverse=True)  # fmt: skip
    for path in old[spare:]:
        shutil.rmtree(path, ignore_errors=True)
    for path in builds.iterdir():
        if path.is_dir() and abandoned(path):
            shutil.rmtree(path, ignore_errors=True)


_PARTIAL = re.compile(r"\.\d{8}T\d+\.(?:(\d+)\.)?partial")


def abandoned(path: Path) -> bool:
    """A build folder whose builder is gone: its process has exited (or, named before builders recorded
    their process, it is over a day old)."""
    match = _PARTIAL.fullmatch(path.name)
    if not match:
        return False
    if match.group(1) is None:
        return time.time() - path.stat().st_mtime > 86_400
    try:
        os.kill(int(match.group(1)), 0)
    except ProcessLookupError:
        return True
    except (PermissionError, OverflowError):
        return False
    return False


def staleness(manifest: Manifest, model: str) -> str | None:
    """Why a built index no longer matches the corpus or the configured model, or None when it does."""
    if manifest.format != FORMAT:
        return f"index format {manifest.format} is older than this version's {FORMAT}"
    if manifest.model != model:
        return f"index was built with embedding model {manifest.model!r}, settings now ask for {model!r}"
    try:
        now = fingerprint([Path(c) for c in manifest.corpora], model)
    except BadCorpus as exc:
        return f"corpus changed: {exc}"
    if now != manifest.fingerprint:
        return "corpus files changed since the index was built"
    return None


def configure_search(index: Any) -> Any:
    """Search-time parameters of a loaded FAISS index (efSearch is not always kept in the file)."""
    hnsw = getattr(index, "hnsw", None)
    if hnsw is not None:
        hnsw.efSearch = max(int(hnsw.efSearch), HNSW_EF_SEARCH)
    return index


def load_documents(build: Path) -> list[Document]:
    return [Document.model_validate(d) for d in json.loads((build / "documents.json").read_text("utf-8"))]


def load_passages(build: Path) -> list[Passage]:
    with (build / "passages.jsonl").open(encoding="utf-8") as fh:
        return [Passage.model_validate_json(line) for line in fh if line.strip()]
