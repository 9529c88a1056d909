"""Corpus statistics + a size → synthetic Vietnamese-like passages and embedding-like vectors, and the
measurements of the scale curve: build time, peak memory, query latency and recall@10 of exact vs approximate.

Embedding a million texts with the real model would take hours on two cores, so the vectors are synthetic: a
Gaussian mixture whose mean and covariance spectrum are fitted to real passage embeddings (clusters of about
`CLUSTER` passages around topic centres, like paragraphs of the same document), L2-normalised. The texts
draw syllables from the real corpus's own (Zipf-shaped) frequencies, with its paragraph length distribution.
"""

from __future__ import annotations

import itertools
import math
import resource
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from index.loaders import corpus_files, read_text
from index.textnorm import fold, words

CLUSTER = 100  # synthetic passages per topic centre
WITHIN = 0.35  # share of the real covariance left inside a topic (the rest separates topics)
K = 10


@dataclass(frozen=True)
class SyllableModel:
    """Syllable frequencies and paragraph lengths (log-normal) of a real corpus."""

    syllables: list[str]
    probabilities: np.ndarray
    log_len_mean: float
    log_len_sd: float

    @property
    def zipf_exponent(self) -> float:
        """Slope of log frequency against log rank over the ranks 10..1000: about 1 for natural text."""
        p = np.sort(self.probabilities)[::-1]
        ranks = np.arange(1, len(p) + 1)
        lo, hi = 10, min(1000, len(p))
        slope = np.polyfit(np.log(ranks[lo:hi]), np.log(p[lo:hi]), 1)[0]
        return float(-slope)


def syllable_model(corpora: Sequence[Path]) -> SyllableModel:
    """Syllable counts and passage lengths of what the index really embeds (headings + paragraph)."""
    from index.build import embedding_text
    from index.structure import parse_document

    counts: Counter[str] = Counter()
    lengths: list[int] = []
    for folder in corpora:
        for path in corpus_files(folder):
            for passage in parse_document(path.name, read_text(path), corpus=folder.name).passages:
                syllables = [w.lower() for w in words(embedding_text(passage)) if not w.isdigit()]
                if syllables:
                    lengths.append(len(syllables))
                    counts.update(syllables)
    if not counts:
        raise ValueError("no passages in the corpus folders to take syllable statistics from")
    ranked = counts.most_common()
    freq = np.asarray([c for _, c in ranked], dtype=np.float64)
    logs = np.log(np.asarray(lengths, dtype=np.float64))
    return SyllableModel([s for s, _ in ranked], freq / freq.sum(),
                         float(logs.mean()), float(logs.std()))  # fmt: skip


def synthetic_corpus(model: SyllableModel, n: int, seed: int = 0) -> tuple[list[str], list[list[str]]]:
    """`n` paragraphs of syllables drawn from the corpus's frequencies (with sentences and commas), and their
    BM25 tokens: folded syllables and syllable bigrams, as `document_tokens` makes them minus pyvi's compounds
    (segmentation is timed separately: it is the slow part of tokenising)."""
    rng = np.random.default_rng(seed)
    lengths = np.clip(np.round(rng.lognormal(model.log_len_mean, model.log_len_sd, n)), 3, 1000).astype(int)
    picks = rng.choice(len(model.syllables), size=int(lengths.sum()), p=model.probabilities)
    vocab = model.syllables
    folded = [fold(s) for s in vocab]
    texts: list[str] = []
    tokens: list[list[str]] = []
    at = 0
    for length in lengths:
        ids = picks[at : at + length].tolist()
        at += length
        sylls = [vocab[i] for i in ids]
        sylls[0] = sylls[0].capitalize()
        for i in range(7, length - 1, 9):
            sylls[i] += ","
        texts.append(" ".join(sylls) + ".")
        toks = [folded[i] for i in ids]
        tokens.append(toks + [f"{a}+{b}" for a, b in itertools.pairwise(toks)])
    return texts, tokens


@dataclass(frozen=True)
class VectorModel:
    """Mean and principal axes of real embeddings; variance per axis."""

    mean: np.ndarray
    axes: np.ndarray  # (dim, dim), rows are principal directions
    variances: np.ndarray
    source: str

    @property
    def dim(self) -> int:
        return int(self.mean.shape[0])


def vector_model(real: np.ndarray, source: str) -> VectorModel:
    real = np.asarray(real, dtype=np.float64)
    mean = real.mean(axis=0)
    _, s, vt = np.linalg.svd(real - mean, full_matrices=False)
    variances = (s**2) / max(len(real) - 1, 1)
    dim = real.shape[1]
    if len(variances) < dim:  # fewer real vectors than dimensions: fill the missing axes with the smallest
        extra = np.linalg.qr(np.random.default_rng(1).standard_normal((dim, dim)))[0][
            :, : dim - len(variances)
        ]
        vt = np.vstack([vt, extra.T])
        variances = np.concatenate([variances, np.full(dim - len(variances), variances[-1])])
    return VectorModel(mean.astype(np.float32), vt.astype(np.float32), variances.astype(np.float32), source)


def isotropic_model(dim: int = 384) -> VectorModel:
    """A fallback when no real embeddings are at hand: e5-like mean offset and a power-law spectrum."""
    rng = np.random.default_rng(2)
    mean = rng.standard_normal(dim).astype(np.float32)
    mean *= 0.8 / np.linalg.norm(mean)
    variances = (0.36 / dim) * (np.arange(1, dim + 1) ** -0.8)
    variances *= 0.36 / variances.sum()
    axes = np.linalg.qr(rng.standard_normal((dim, dim)))[0].T
    return VectorModel(mean, axes.astype(np.float32), variances.astype(np.float32), "isotropic power-law")


def _draw(
    model: VectorModel, centres: np.ndarray, assign: np.ndarray, rng: np.random.Generator
) -> np.ndarray:
    scale = np.sqrt(WITHIN * model.variances)
    noise = rng.standard_normal((len(assign), model.dim), dtype=np.float32) * scale
    out = centres[assign] + noise @ model.axes
    out /= np.linalg.norm(out, axis=1, keepdims=True)
    return out.astype(np.float32)


def synthetic_vectors(
    model: VectorModel, n: int, queries: int, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """(`n` passage vectors, `queries` query vectors), drawn from the same topic mixture."""
    rng = np.random.default_rng(seed)
    topics = max(1, n // CLUSTER)
    scale = np.sqrt((1 - WITHIN) * model.variances)
    centres = model.mean + (rng.standard_normal((topics, model.dim), dtype=np.float32) * scale) @ model.axes
    vectors = np.empty((n, model.dim), dtype=np.float32)
    step = 50_000
    for start in range(0, n, step):
        stop = min(n, start + step)
        vectors[start:stop] = _draw(model, centres, rng.integers(0, topics, stop - start), rng)
    return vectors, _draw(model, centres, rng.integers(0, topics, queries), rng)


# --- measuring ----------------------------------------------------------------------------------------


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def rss_mb() -> float:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def percentiles(samples_ms: Sequence[float]) -> dict[str, float]:
    a = np.asarray(samples_ms, dtype=np.float64)
    return {f"p{q}": round(float(np.percentile(a, q)), 3) for q in (50, 95, 99)} | {
        "mean": round(float(a.mean()), 3)
    }


class Timings:
    """Wall-clock and this thread's CPU time per call. On a shared machine the wall clock includes waiting
    for a core; the CPU time is what the call costs on an idle one (single-threaded calls only)."""

    def __init__(self) -> None:
        self.wall: list[float] = []
        self.cpu: list[float] = []

    def __enter__(self) -> Timings:
        self._w, self._c = time.perf_counter(), time.thread_time()
        return self

    def __exit__(self, *_: object) -> None:
        self.wall.append((time.perf_counter() - self._w) * 1000)
        self.cpu.append((time.thread_time() - self._c) * 1000)

    def summary(self) -> dict[str, dict[str, float]]:
        return {"wall_ms": percentiles(self.wall), "cpu_ms": percentiles(self.cpu)}


def exact_neighbours(vectors: np.ndarray, queries: np.ndarray, k: int = K) -> np.ndarray:
    import faiss

    flat = faiss.IndexFlatIP(vectors.shape[1])
    flat.add(vectors)
    return np.asarray(flat.search(queries, k)[1])


def recall_at_k(found: np.ndarray, truth: np.ndarray, k: int = K) -> float:
    hits = sum(len(set(f[:k].tolist()) & set(t[:k].tolist())) for f, t in zip(found, truth, strict=True))
    return hits / (k * len(truth))


def time_queries(search: Any, queries: np.ndarray, k: int) -> tuple[Timings, np.ndarray]:
    """One query at a time, as the service asks them: timings and the ids found."""
    timings = Timings()
    ids = np.empty((len(queries), k), dtype=np.int64)
    search(queries[:1], k)  # warm caches and pages
    for i in range(len(queries)):
        with timings:
            _, found = search(queries[i : i + 1], k)
        ids[i] = found[0]
    return timings, ids


def exact_matvec_latency(vectors: np.ndarray, queries: np.ndarray) -> Timings:
    """The service's exact path: one matrix-vector product over all passage vectors per query, top k."""
    timings = Timings()
    for q in queries:
        with timings:
            scores = vectors @ q
            np.argpartition(-scores, K)[:K]
    return timings


def index_bytes(index: Any) -> int:
    import faiss

    return int(faiss.serialize_index(index).nbytes)


def log_spaced(n: int) -> str:
    return f"{n // 1_000_000}M" if n >= 1_000_000 and n % 1_000_000 == 0 else f"{n // 1000}k"


def extrapolate(points: dict[int, float], target: int) -> float:
    """Power-law fit through measured (size, seconds) points, for sizes too slow to measure here."""
    sizes = sorted(points)
    if len(sizes) == 1:
        return points[sizes[0]] * target / sizes[0]
    slope, intercept = np.polyfit(np.log(sizes), np.log([points[s] for s in sizes]), 1)
    return float(math.exp(intercept) * target**slope)
