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
