"""The approximate vector index: recall against exact search, memory-mapped loading, the exact/approx switch."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from benchmarks import scale
from index.build import _vector_index, build_index
from index.layout import FAISS_READ_FLAGS, HNSW_EF_SEARCH, configure_search
from index.search import open_index
from index.settings import IndexSettings


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


def _queries(index: object) -> list[str]:
    """Queries cut from the corpus itself (six words of every passage), never from data/eval."""
    from index.search import SearchIndex

    assert isinstance(index, SearchIndex)
    out: list[str] = []
    for p in index.passages:
        words = p.text.split()
        if len(words) >= 12:
            out.append(" ".join(words[4:10]))
    return out


@pytest.fixture(scope="module")
def exact_and_approx(tmp_path_factory: pytest.TempPathFactory) -> tuple[object, object]:
    """The shipped corpus indexed twice with the same embedder: exact vector search, and HNSW (whose
    searches fuse only candidates)."""
    import shutil

    from index.embedding import HashingEmbedder
    from tests.conftest import CORPUS

    embedder = HashingEmbedder(64)
    found = []
    for exact_max in (20_000, 0):
        data = tmp_path_factory.mktemp(f"ann-{exact_max}")
        shutil.copytree(CORPUS, data / "corpus")
        settings = IndexSettings(data_dir=data, embedding_model="hashing-64")
        build_index([data / "corpus"], settings.index_dir, embedder, exact_search_max=exact_max,
                    progress=False, log=lambda _: None)  # fmt: skip
        found.append(open_index(settings, embedder))
    return found[0], found[1]


def test_candidate_fusion_ranks_like_full_fusion_when_candidates_cover_the_corpus(
    exact_and_approx: tuple[object, object],
) -> None:
    from index.search import SearchIndex

    exact, approx = exact_and_approx
    assert isinstance(exact, SearchIndex) and isinstance(approx, SearchIndex)
    assert exact.faiss is None and approx.faiss is not None
    questions = _queries(exact)  # plain text: the index parses no Kết luận mention out of it
    assert len(questions) > 40
    for question in questions:
        want = [(p.passage_id, p.score) for p in exact.search(question, k=5)]
        assert [(p.passage_id, p.score) for p in approx.search(question, k=5)] == want, question


def test_filters_hold_on_the_approximate_path(
    exact_and_approx: tuple[object, object], monkeypatch: pytest.MonkeyPatch
) -> None:
    import datetime as dt

    from index import search
    from index.search import SearchFilters, SearchIndex

    exact, approx = exact_and_approx
    assert isinstance(exact, SearchIndex) and isinstance(approx, SearchIndex)
    cases = [SearchFilters(ket_luan=["183"]), SearchFilters(issued_from=dt.date(2025, 9, 1)),
             SearchFilters(ket_luan=["179-KL/TW", "221"])]  # fmt: skip
    for filters in cases:
        for question in ("trạm y tế cấp xã", "nhiệm vụ của Bộ Tư pháp", "thời hạn hoàn thành"):
            monkeypatch.setattr(search, "EXACT_SUBSET_MAX", 5000)  # the filtered passages scored exactly
            got = approx.search(question, k=5, filters=filters)
            monkeypatch.setattr(search, "EXACT_SUBSET_MAX", 0)  # the graph walked with an ID selector
            walked = approx.search(question, k=5, filters=filters)
            assert [(p.passage_id, p.score) for p in walked] == [(p.passage_id, p.score) for p in got]
            assert len(got) == 5
            if filters.ket_luan:
                allowed = {re.sub(r"\D.*", "", k) + "-KL/TW" for k in filters.ket_luan}
                assert {p.ket_luan for p in got} <= allowed, (filters, [p.ket_luan for p in got])
            if filters.issued_from:
                assert all(p.issued and p.issued >= filters.issued_from for p in got)
            # exact search ranks the filtered passages among all passages, candidates among themselves:
            # the two rankings differ a little, not wholly
            want = {p.passage_id for p in exact.search(question, 5, filters)}
            assert len(want & {p.passage_id for p in got}) >= 3


def test_candidates_are_the_top_of_each_retriever() -> None:
    from index.fusion import top_rows

    scores = np.array([0.1, 0.9, 0.0, 0.5, 0.7, -1.0])
    assert set(top_rows(scores, 2)) == {1, 4}
    assert set(top_rows(scores, 10, floor=0.0)) == {0, 1, 3, 4}
    assert set(top_rows(scores, 2, mask=np.array([1, 0, 1, 1, 0, 1], dtype=bool))) == {3, 0}
