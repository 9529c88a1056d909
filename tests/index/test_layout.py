"""A build's files are checked against its manifest before anything is mapped; a damaged build is refused and
the previous whole build is served."""

from __future__ import annotations

import logging
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from index.build import build_index
from index.embedding import HashingEmbedder
from index.errors import IndexNotReady
from index.layout import DamagedBuild, current_build, read_manifest, verify
from index.search import open_index
from index.settings import IndexSettings

ROOT = Path(__file__).resolve().parents[2]


def _build(settings: IndexSettings) -> Path:
    build_index([settings.data_dir / "corpus"], settings.index_dir, HashingEmbedder(64), progress=False,
                log=lambda _: None)  # fmt: skip
    return current_build(settings.index_dir)


@pytest.fixture()
def two_builds(tiny_settings: IndexSettings) -> tuple[IndexSettings, Path, Path]:
    shutil.copy(ROOT / "data" / "corpus" / "003_a134ef8411e6adba.txt", tiny_settings.data_dir / "corpus")
    first = _build(tiny_settings)
    second = _build(tiny_settings)
    assert first != second
    return tiny_settings, first, second


def test_manifest_lists_every_file_with_size_and_checksum(
    two_builds: tuple[IndexSettings, Path, Path],
) -> None:
    _, _, build = two_builds
    manifest = read_manifest(build)
    on_disk = {p.relative_to(build).as_posix() for p in build.rglob("*") if p.is_file()} - {"manifest.json"}
    assert set(manifest.files) == on_disk
    assert {
        "embeddings.npy",
        "passages.jsonl",
        "vectors.faiss",
        "directives.jsonl",
        "references.jsonl",
    } <= on_disk
    assert all(manifest.files[n].size == (build / n).stat().st_size for n in on_disk)
    verify(build, manifest, checksums=True)


@pytest.mark.parametrize("damage", ["truncate", "cut", "remove"])
def test_a_damaged_current_build_falls_back_to_the_previous_one(
    two_builds: tuple[IndexSettings, Path, Path], damage: str, caplog: pytest.LogCaptureFixture
) -> None:
    settings, first, second = two_builds
    target = second / "embeddings.npy"
    if damage == "truncate":  # `truncate -s 0 embeddings.npy`
        target.write_bytes(b"")
    elif damage == "cut":  # the header survives, the vectors do not
        target.write_bytes(target.read_bytes()[:200])
    else:
        target.unlink()
    with caplog.at_level(logging.ERROR, logger="index.layout"):
        index = open_index(settings)
    assert index.build == first
    assert index.search("Ban Tổ chức Trung ương theo dõi, hướng dẫn", 3)
    assert any("embeddings.npy" in r.getMessage() and second.name in r.getMessage() for r in caplog.records)


def test_no_whole_build_left_is_a_clear_refusal(two_builds: tuple[IndexSettings, Path, Path]) -> None:
    settings, first, second = two_builds
    shutil.rmtree(first)
    (second / "passages.jsonl").write_text("", "utf-8")
    with pytest.raises(IndexNotReady, match=r"corrupt: passages.jsonl has 0 bytes"):
        open_index(settings)


def test_checksums_catch_a_change_that_keeps_the_size(two_builds: tuple[IndexSettings, Path, Path]) -> None:
    _, _, build = two_builds
    path = build / "lexicon.json"
    data = bytearray(path.read_bytes())
    data[-2] = ord(" ") if data[-2] != ord(" ") else ord("\n")
    path.write_bytes(bytes(data))
    manifest = read_manifest(build)
    verify(build, manifest)  # sizes agree
    with pytest.raises(DamagedBuild, match="checksum"):
        verify(build, manifest, checksums=True)


SEARCH_AFTER_TRUNCATION = """
import sys
from pathlib import Path
from index.embedding import HashingEmbedder
from index.search import open_index
from index.settings import IndexSettings

index = open_index(IndexSettings(data_dir=Path(sys.argv[1]), embedding_model="hashing-64"), HashingEmbedder(64))
for name in sys.argv[2:]:
    (index.build / name).open("r+b").truncate(0)  # `truncate -s 0` on the loaded build's files
print(len(index.search("Ban Tổ chức Trung ương theo dõi, hướng dẫn", 3)))
"""


def test_a_small_build_loaded_in_memory_survives_its_files_truncated(
    two_builds: tuple[IndexSettings, Path, Path],
) -> None:
    """In a child process: a memory-mapped file read past its new end kills the process with SIGBUS."""
    settings, _, build = two_builds
    mapped = ["embeddings.npy", *(p.relative_to(build).as_posix() for p in (build / "bm25").glob("*.npy"))]
    done = subprocess.run([sys.executable, "-c", SEARCH_AFTER_TRUNCATION, str(settings.data_dir), *mapped],
                          capture_output=True, text=True, timeout=120, cwd=ROOT)  # fmt: skip
    assert done.returncode == 0, (done.returncode, done.stderr[-2000:])
    assert done.stdout.strip() == "3"
