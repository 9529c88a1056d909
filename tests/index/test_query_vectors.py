"""Query vectors: repeated queries reuse their vector, concurrent ones share one model call, errors reach
every caller, and the vectors are the model's own."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from index.embedding import HashingEmbedder
from index.query_vectors import MAX_BATCH, QueryVectors


class GatedEmbedder(HashingEmbedder):
    """Records every call; the first call waits at a gate until the test opens it."""

    def __init__(self) -> None:
        super().__init__(64)
        self.calls: list[list[str]] = []
        self.entered = threading.Event()
        self.gate = threading.Event()
        self.fail = False

    def embed_queries(self, texts: Sequence[str]) -> np.ndarray:
        self.calls.append(list(texts))
        self.entered.set()
        self.gate.wait(10)
        if self.fail:
            raise RuntimeError("model crashed")
        return super().embed_queries(texts)


@pytest.mark.parametrize(("size", "calls"), [(0, 3), (10, 2)])
def test_repeated_queries_reuse_their_vector(size: int, calls: int) -> None:
    model = GatedEmbedder()
    model.gate.set()
    vectors = QueryVectors(model, size=size)
    first = vectors.vector("kết luận 183")
    again = vectors.vector("kết luận 183")
    vectors.vector("chuyển đổi số")
    assert len(model.calls) == calls
    assert np.array_equal(first, again)
    assert np.allclose(first, HashingEmbedder(64).embed_queries(["kết luận 183"])[0])


def test_cache_is_bounded_least_recently_used_first() -> None:
    model = GatedEmbedder()
    model.gate.set()
    vectors = QueryVectors(model, size=2)
    for text in ("a1", "b2", "a1", "c3", "a1", "b2"):
        vectors.vector(text)
    # b2 was the least recently used when c3 came: asked again, it is embedded again
    assert [c for call in model.calls for c in call] == ["a1", "b2", "c3", "b2"]


@pytest.mark.parametrize("waiting", [3, MAX_BATCH + 5])
def test_queries_that_wait_for_the_model_share_the_next_call(waiting: int) -> None:
    model = GatedEmbedder()
    vectors = QueryVectors(model, size=0, batching=True)
    texts = [f"câu hỏi số {i}" for i in range(waiting)]
    with ThreadPoolExecutor(waiting + 1) as pool:
        first = pool.submit(vectors.vector, "câu đầu")
        assert model.entered.wait(10)
        rest = [pool.submit(vectors.vector, t) for t in texts]
        while len(vectors._queue) < waiting:  # every later caller is queued behind the busy model
            threading.Event().wait(0.005)
        model.gate.set()
        results = [f.result(10) for f in rest]
        first.result(10)
    expected = HashingEmbedder(64).embed_queries(texts)
    assert all(np.allclose(r, e) for r, e in zip(results, expected, strict=True))
    assert model.calls[0] == ["câu đầu"]
    assert [len(c) for c in model.calls[1:]] == [min(waiting, MAX_BATCH)] + (
        [waiting - MAX_BATCH] if waiting > MAX_BATCH else []
    )
    assert not vectors._busy


def test_without_batching_every_query_is_its_own_call() -> None:
    model = GatedEmbedder()
    model.gate.set()
    vectors = QueryVectors(model, size=0, batching=False)
    with ThreadPoolExecutor(4) as pool:
        list(pool.map(vectors.vector, ["a", "b", "c", "d"]))
    assert sorted(len(c) for c in model.calls) == [1, 1, 1, 1]


def test_a_model_error_reaches_every_caller_of_the_batch_and_the_model_is_free_again() -> None:
    model = GatedEmbedder()
    model.fail = True
    vectors = QueryVectors(model, size=10)
    with ThreadPoolExecutor(3) as pool:
        first = pool.submit(vectors.vector, "một")
        assert model.entered.wait(10)
        second = pool.submit(vectors.vector, "hai")
        while not vectors._queue:
            threading.Event().wait(0.005)
        model.gate.set()
        for future in (first, second):
            with pytest.raises(RuntimeError, match="model crashed"):
                future.result(10)
    model.fail = False
    assert np.allclose(vectors.vector("hai"), HashingEmbedder(64).embed_queries(["hai"])[0])
