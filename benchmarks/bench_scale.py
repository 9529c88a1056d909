"""Sizes → the scale curve: per size, in a fresh process, build time, peak memory, query latency and recall@10
of the shipped approximate index against exact search, plus BM25 over synthetic Vietnamese-like texts."""

from __future__ import annotations

import json
import multiprocessing as mp
import os
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks import scale

QUERIES = 500
EXACT_QUERIES = 200
CANDIDATES = 200  # what SearchIndex asks FAISS for at k ≤ 10


def _vector_model(real_embeddings: Path | None) -> scale.VectorModel:
    if real_embeddings and real_embeddings.is_file():
        return scale.vector_model(np.load(real_embeddings), f"fitted to {real_embeddings}")
    return scale.isotropic_model()


def measure_size(
    n: int, corpora: list[Path], real_embeddings: Path | None, texts: bool = True
) -> dict[str, Any]:
    """Everything for one size; meant to run in its own process so peak RSS is this size's alone."""
    import faiss

    from index.build import _vector_index
    from index.layout import FAISS_READ_FLAGS, configure_search

    faiss.omp_set_num_threads(2)
    out: dict[str, Any] = {"passages": n, "dim": 0}
    model = _vector_model(real_embeddings)
    t = time.perf_counter()
    vectors, queries = scale.synthetic_vectors(model, n, QUERIES, seed=n)
    out |= {"dim": model.dim, "vector_source": model.source, "generate_s": round(time.perf_counter() - t, 2)}
    out["rss_after_vectors_mb"] = round(scale.rss_mb())

    t = time.perf_counter()
    truth = scale.exact_neighbours(vectors, queries)
    out["exact"] = {
        "ground_truth_s": round(time.perf_counter() - t, 2),
        "vectors_mb": round(vectors.nbytes / 2**20),
    }
    out["exact"]["latency"] = scale.exact_matvec_latency(vectors, queries[:EXACT_QUERIES]).summary()

    rss0 = scale.rss_mb()
    t = time.perf_counter()
    index, kind = _vector_index(vectors, exact_max=0)
    build_s = time.perf_counter() - t
    approx: dict[str, Any] = {"kind": kind, "description": faiss_description(index), "build_s": round(build_s, 2),
                              "build_vectors_per_s": round(n / build_s), "build_rss_growth_mb": round(
                                  scale.rss_mb() - rss0), "peak_rss_mb": round(scale.peak_rss_mb())}  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "vectors.faiss"
        faiss.write_index(index, str(path))
        approx["file_mb"] = round(path.stat().st_size / 2**20)
        del index
        loaded = faiss.read_index(str(path), FAISS_READ_FLAGS)
        configure_search(loaded)
        approx["params"] = search_params(loaded)
        faiss.omp_set_num_threads(1)  # one request, one core: the service searches per request
        lat10, ids10 = scale.time_queries(loaded.search, queries, scale.K)
        lat200, ids200 = scale.time_queries(loaded.search, queries, CANDIDATES)
        approx["latency_k10"] = lat10.summary()
        approx["recall_at_10_k10"] = round(scale.recall_at_k(ids10, truth), 4)
        approx["latency_service_k200"] = lat200.summary()
        approx["recall_at_10_service_k200"] = round(scale.recall_at_k(ids200, truth), 4)
        out["approx"] = approx
        if texts:
            out["bm25"] = _bm25(n, corpora, loaded, vectors, queries)
    out["peak_rss_mb"] = round(scale.peak_rss_mb())
    return out


def faiss_description(index: Any) -> str:
    import faiss

    hnsw = getattr(index, "hnsw", None)
    if hnsw is not None:
        return f"{type(index).__name__}(M={hnsw.nb_neighbors(1)}, efConstruction={hnsw.efConstruction})"
    return type(faiss.downcast_index(index)).__name__


def search_params(index: Any) -> dict[str, int]:
    hnsw = getattr(index, "hnsw", None)
    return {"efSearch": int(hnsw.efSearch)} if hnsw is not None else {}


def _bm25(n: int, corpora: list[Path], ann: Any, vectors: np.ndarray, queries: np.ndarray) -> dict[str, Any]:
    """BM25 over synthetic texts and the service's per-query hybrid path with an approximate index (as in
    `SearchIndex._scores`): ANN top 200, BM25 over every passage, candidate union, exact dense scores of the
    candidates, fusion and ranking of the candidates only."""
    import bm25s

    from index.fusion import candidates, fuse

    syllables = scale.syllable_model(corpora)
    t = time.perf_counter()
    texts, tokens = scale.synthetic_corpus(syllables, n, seed=n)
    generate_s = time.perf_counter() - t
    count = sum(len(x) for x in tokens)
    chars = sum(len(x) for x in texts)
    del texts
    t = time.perf_counter()
    retriever = bm25s.BM25()
    retriever.index(tokens, show_progress=False)
    index_s = time.perf_counter() - t
    vocab = retriever.vocab_dict
    rng = np.random.default_rng(7)
    questions = [[w for w in tokens[int(i)][:: max(1, len(tokens[int(i)]) // 10)] if w in vocab][:10]
                 for i in rng.integers(0, n, 100)]  # fmt: skip
    del tokens
    bm25 = scale.Timings()
    hybrid = scale.Timings()
    for qv, qt in zip(queries, questions, strict=False):
        with hybrid:
            with bm25:
                lexical = np.asarray(retriever.get_scores(qt), dtype=np.float32)
            _, ids = ann.search(qv.reshape(1, -1), CANDIDATES)
            rows = candidates(ids[0][ids[0] >= 0], lexical, CANDIDATES)
            fused = fuse(np.asarray(vectors[rows] @ qv, dtype=np.float32), lexical[rows])
            rows[np.argsort(-fused, kind="stable")[:10]]
    return {"tokens": count, "tokens_per_passage": round(count / n, 1), "chars_per_passage": round(chars / n),
            "zipf_exponent": round(syllables.zipf_exponent, 2), "generate_s": round(generate_s, 2),
            "index_s": round(index_s, 2), "index_tokens_per_s": round(count / index_s),
            "query_latency": bm25.summary(), "hybrid_query_latency": hybrid.summary()}  # fmt: skip


def _child(conn: Any, n: int, corpora: list[Path], real: Path | None, texts: bool) -> None:
    try:
        conn.send(measure_size(n, corpora, real, texts))
    except BaseException as exc:  # report, don't hang the parent
        conn.send({"passages": n, "error": f"{exc.__class__.__name__}: {exc}"})
    conn.close()


def run(sizes: list[int], corpora: list[Path], real_embeddings: Path | None, *, text_max: int = 100_000,
        log: Any = print) -> list[dict[str, Any]]:  # fmt: skip
    """Every size in its own process. BM25 over synthetic texts only up to `text_max` passages: at 1M its
    token lists alone take several GiB and the build a quarter of an hour, so it is extrapolated instead."""
    ctx = mp.get_context("spawn")
    # single-threaded BLAS in the children: one query per core, as concurrent requests run, and CPU time
    # measured per thread then covers the whole matrix-vector product
    os.environ["OPENBLAS_NUM_THREADS"] = "1"
    results = []
    for n in sizes:
        log(f"scale: {scale.log_spaced(n)} passages …")
        parent, child = ctx.Pipe(duplex=False)
        proc = ctx.Process(target=_child, args=(child, n, corpora, real_embeddings, n <= text_max))
        proc.start()
        child.close()
        result = parent.recv()
        proc.join()
        log("  " + json.dumps(result, ensure_ascii=False))
        results.append(result)
    return results
