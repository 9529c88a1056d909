"""Dense and BM25 score arrays → one fused score per passage (-inf where filtered out)."""

from __future__ import annotations

import numpy as np

RRF_K = 60.0
DENSE_WEIGHT = 0.5


def _ranks(scores: np.ndarray) -> np.ndarray:
    order = np.argsort(-scores, kind="stable")
    ranks = np.empty(len(scores), dtype=np.float64)
    ranks[order] = np.arange(1, len(scores) + 1)
    return ranks


def fuse(dense: np.ndarray, lexical: np.ndarray, mask: np.ndarray | None = None,
         dense_weight: float = DENSE_WEIGHT) -> np.ndarray:  # fmt: skip
    """Weighted reciprocal-rank fusion: robust to the two scores' different scales."""
    fused = dense_weight / (RRF_K + _ranks(dense))
    has_lexical = lexical > 0
    fused = fused + np.where(has_lexical, (1 - dense_weight) / (RRF_K + _ranks(lexical)), 0.0)
    if mask is not None:
        fused = np.where(mask, fused, -np.inf)
    return fused


def top_rows(
    scores: np.ndarray, n: int, mask: np.ndarray | None = None, floor: float | None = None
) -> np.ndarray:
    """Row numbers of the `n` highest scores (unordered; O(len) with argpartition, not a full sort), among
    the rows `mask` allows and, with `floor`, whose score is above it."""
    keep = np.ones(len(scores), dtype=bool) if mask is None else mask.copy()
    if floor is not None:
        keep &= scores > floor
    rows = np.flatnonzero(keep)
    if len(rows) <= n:
        return rows
    part = np.argpartition(-scores[rows], n - 1)[:n]
    return rows[part]


def candidates(
    by_vector: np.ndarray, lexical: np.ndarray, wanted: int, mask: np.ndarray | None = None
) -> np.ndarray:
    """The rows worth fusing when the corpus is too large to rank whole: what the vector search found ∪
    BM25's top `wanted` among the rows `mask` allows (sorted, no repeats)."""
    return np.union1d(by_vector, top_rows(lexical, wanted, mask, floor=0.0))
