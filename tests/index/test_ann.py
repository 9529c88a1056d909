"""The approximate vector index: recall against exact search, memory-mapped loading, the exact/approx switch."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from index import scale
from index.search import open_index
from index.settings import IndexSettings
from index.store import FAISS_READ_FLAGS, HNSW_EF_SEARCH, _vector_index, build_index, configure_search


@pytest.fixture(scope="module")
def synthetic() -> tuple[np.ndarray, np.ndarray]:
    return scale.synthetic_vectors(scale.isotropic_model(384), 10_000, 200, seed=3)


def test_hnsw_recall_at_10_against_exact(synthetic: tuple[np.ndarray, np.ndarray], tmp_path: Path) -> None:
    import faiss

    vectors, queries = synthetic
    index, kind = _vector_index(vectors, exact_max=0)
    assert kind == "hnsw"
    faiss.write_index(index, str(tmp_path / "vectors.faiss"))
    loaded = configure_search(faiss.read_index(str(tmp_path / "vectors.faiss"), FAISS_READ_FLAGS))
    assert loaded.hnsw.efSearch >= HNSW_EF_SEARCH
    _, found = loaded.search(queries, scale.K)
    assert scale.recall_at_k(found, scale.exact_neighbours(vectors, queries)) >= 0.95


def test_small_collections_are_searched_exactly(synthetic: tuple[np.ndarray, np.ndarray]) -> None:
    vectors, _ = synthetic
    assert _vector_index(vectors[:1000], exact_max=1000)[1] == "flat"
    assert IndexSettings().exact_search_max >= 10_000


def test_search_index_loads_a_memory_mapped_hnsw_build(tiny_settings: IndexSettings) -> None:
    from index.embedding import HashingEmbedder

    text = "KẾT LUẬN\ncủa Bộ Chính trị\n\n" + "\n\n".join(
        f"{i}. Đoạn thứ {i} bàn về chuyển đổi số, cải cách hành chính và công tác cán bộ số {i}."
        for i in range(1, 40)
    )
    (tiny_settings.data_dir / "corpus" / "kl.txt").write_text(text, "utf-8")
    embedder = HashingEmbedder(64)
    manifest = build_index([tiny_settings.default_corpus], tiny_settings.index_dir, embedder, exact_search_max=0,
                           progress=False, log=lambda _: None)  # fmt: skip
    assert manifest.vector_index == "hnsw"
    index = open_index(tiny_settings, embedder)
    assert index.faiss is not None and index.faiss.hnsw.efSearch >= HNSW_EF_SEARCH
    assert index.search("chuyển đổi số", k=3)


def test_synthetic_texts_look_like_the_corpus() -> None:
    from tests.conftest import CORPUS

    model = scale.syllable_model([CORPUS])
    texts, tokens = scale.synthetic_corpus(model, 50, seed=1)
    assert len(texts) == len(tokens) == 50 and all(t.endswith(".") for t in texts)
    assert 0.6 < model.zipf_exponent < 2.0  # natural-language word frequencies are Zipf-shaped
