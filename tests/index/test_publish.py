"""One build, every host: `publish` copies the current build to a shared place, `pull` fetches it (from a
directory or over HTTP), checks every file against the manifest and swaps `current` in one rename; a corrupt
or partial bundle is refused and the build being served stays."""

from __future__ import annotations

import functools
import http.server
import json
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from index.build import build_index
from index.embedding import HashingEmbedder
from index.errors import UpstreamError
from index.layout import BUILDS, CURRENT, DamagedBuild, build_version, current_build
from index.publish import LATEST, Puller, publish, pull, pulled_source
from index.search import open_index
from index.settings import IndexSettings

ROOT = Path(__file__).resolve().parents[2]
CORPUS = sorted((ROOT / "data" / "corpus").glob("*.txt"))


def _build(settings: IndexSettings, *files: Path) -> Path:
    for f in files:
        shutil.copy(f, settings.data_dir / "corpus")
    build_index([settings.data_dir / "corpus"], settings.index_dir, HashingEmbedder(64), progress=False,
                log=lambda _: None)  # fmt: skip
    return current_build(settings.index_dir)


@pytest.fixture()
def published(tiny_settings: IndexSettings, tmp_path: Path) -> tuple[IndexSettings, Path, Path]:
    """(builder settings, the shared directory, a replica's index dir) with one build published."""
    _build(tiny_settings, CORPUS[2])
    shared = tmp_path / "shared"
    publish(tiny_settings.index_dir, shared)
    return tiny_settings, shared, tmp_path / "replica" / "index"


@pytest.fixture()
def http_source(published: tuple[IndexSettings, Path, Path]) -> Iterator[str]:
    _, shared, _ = published
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(shared))
    handler.log_message = lambda *a, **k: None  # type: ignore[attr-defined]
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()
    server.server_close()


def _served(index_dir: Path) -> str:
    return build_version((index_dir / CURRENT).resolve())


def _no_partials(index_dir: Path) -> bool:
    return not [p for p in (index_dir / BUILDS).iterdir() if p.name.endswith(".partial")]


@pytest.mark.parametrize("over_http", [False, True])
def test_a_published_build_is_pulled_verified_and_served(
    published: tuple[IndexSettings, Path, Path], over_http: bool, request: pytest.FixtureRequest
) -> None:
    builder, shared, replica = published
    source = request.getfixturevalue("http_source") if over_http else str(shared)
    bundle = pull(source, replica)
    assert bundle is not None and bundle.version == _served(builder.index_dir) == _served(replica)
    assert json.loads((shared / LATEST).read_text()) == {"build": bundle.build, "version": bundle.version}
    here = open_index(IndexSettings(data_dir=replica.parent, embedding_model="hashing-64"), check_stale=False)
    there = open_index(builder)
    assert [p.passage_id for p in here.passages] == [p.passage_id for p in there.passages]
    assert pull(source, replica) is None  # nothing new


def test_a_new_build_replaces_the_served_one(published: tuple[IndexSettings, Path, Path]) -> None:
    builder, shared, replica = published
    first = pull(str(shared), replica)
    _build(builder, CORPUS[3])
    second = publish(builder.index_dir, shared)
    assert first is not None and second.version != first.version
    assert pull(str(shared), replica) == second
    assert _served(replica) == second.version and _no_partials(replica)


def test_a_pulled_build_remembers_its_source_until_a_build_is_made_here(
    published: tuple[IndexSettings, Path, Path],
) -> None:
    _, shared, replica = published
    assert pulled_source(replica) is None  # nothing pulled yet
    pull(str(shared), replica)
    assert pulled_source(replica) == str(shared)
    here = IndexSettings(data_dir=replica.parent, embedding_model="hashing-64")
    (here.data_dir / "corpus").mkdir()
    _build(here, CORPUS[3])  # the host turned into a build host: its own build is its own
    assert pulled_source(replica) is None


def _damage(shared: Path, name: str, how: str) -> None:
    latest = json.loads((shared / LATEST).read_text())
    path = shared / BUILDS / latest["build"] / name
    if how == "missing":
        path.unlink()
    else:  # same size, other bytes: only the checksum tells
        data = bytearray(path.read_bytes())
        data[len(data) // 2] ^= 0xFF
        path.write_bytes(bytes(data))


@pytest.mark.parametrize("over_http", [False, True])
@pytest.mark.parametrize(("name", "how"), [("embeddings.npy", "flipped"), ("passages.jsonl", "missing"),
                                           ("bm25/params.index.json", "flipped")])  # fmt: skip
def test_a_corrupt_or_partial_bundle_is_refused_and_the_served_build_stays(
    published: tuple[IndexSettings, Path, Path], name: str, how: str, over_http: bool,
    request: pytest.FixtureRequest,
) -> None:  # fmt: skip
    builder, shared, replica = published
    source = request.getfixturevalue("http_source") if over_http else str(shared)
    served = pull(source, replica)
    assert served is not None
    _build(builder, CORPUS[3])
    publish(builder.index_dir, shared)
    if not (shared / BUILDS / json.loads((shared / LATEST).read_text())["build"] / name).exists():
        pytest.skip(f"{name} is not part of a build")
    _damage(shared, name, how)
    with pytest.raises(DamagedBuild, match=name.split("/")[0]):
        pull(source, replica)
    assert _served(replica) == served.version and _no_partials(replica)


def test_a_manifest_that_is_not_the_announced_version_is_refused(
    published: tuple[IndexSettings, Path, Path],
) -> None:
    _, shared, replica = published
    latest = json.loads((shared / LATEST).read_text())
    (shared / LATEST).write_text(json.dumps(latest | {"version": "0" * 16}))
    with pytest.raises(DamagedBuild, match="does not match version"):
        pull(str(shared), replica)
    assert not (replica / CURRENT).exists()


def test_a_manifest_naming_files_outside_the_build_is_refused(
    published: tuple[IndexSettings, Path, Path],
) -> None:
    import hashlib

    _, shared, replica = published
    latest = json.loads((shared / LATEST).read_text())
    path = shared / BUILDS / latest["build"] / "manifest.json"
    manifest = json.loads(path.read_text())
    manifest["files"]["../../escaped"] = {"size": 1, "sha256": "0" * 64}
    path.write_text(json.dumps(manifest))
    version = hashlib.sha256(path.read_bytes()).hexdigest()[:16]
    (shared / LATEST).write_text(json.dumps({"build": latest["build"], "version": version}))
    with pytest.raises(DamagedBuild, match="unsafe file name"):
        pull(str(shared), replica)
    assert not (replica.parent / "escaped").exists()


def test_the_poller_reports_an_unreachable_source_and_keeps_serving(
    published: tuple[IndexSettings, Path, Path], tmp_path: Path
) -> None:
    _, shared, replica = published
    pull(str(shared), replica)
    served = _served(replica)
    errors: list[str] = []
    puller = Puller(str(tmp_path / "nowhere"), replica, 60, on_error=errors.append)
    assert puller.poll() is None
    assert errors and puller.last_error == errors[0] and _served(replica) == served
    with pytest.raises(UpstreamError):
        pull("http://127.0.0.1:9/", replica)
