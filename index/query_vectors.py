"""Query texts → their vectors: a bounded cache of recent queries, and the misses of concurrent callers
embedded together in one model call (one caller at a time calls the model; whoever waits meanwhile goes in
the next call, so a lone query never waits for company)."""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass, field

import numpy as np

from index.embedding import Embedder

MAX_BATCH = 32


@dataclass(eq=False)
class _Slot:
    text: str
    ready: threading.Event = field(default_factory=threading.Event)
    vector: np.ndarray | None = None
    error: BaseException | None = None

    @property
    def done(self) -> bool:
        return self.vector is not None or self.error is not None


class QueryVectors:
    """`vector(text)` for the search path. `size` recent queries are kept (0: none); with `batching`, a
    caller that finds the model busy queues its text and the next model call embeds every queued text."""

    def __init__(self, embedder: Embedder, *, size: int = 4096, batching: bool = True) -> None:
        self.embedder = embedder
        self.size = size
        self.batching = batching
        self.calls = 0  # model calls made, for tests and metrics
        self._cache: OrderedDict[str, np.ndarray] = OrderedDict()
        self._lock = threading.Lock()
        self._queue: list[_Slot] = []
        self._busy = False

    def vector(self, text: str) -> np.ndarray:
        found = self._get(text)
        if found is not None:
            return found
        if not self.batching:
            self.calls += 1
            vector = self.embedder.embed_queries([text])[0]
            self._put(text, vector)
            return vector
        slot = _Slot(text)
        with self._lock:
            self._queue.append(slot)
            lead = not self._busy
            self._busy = True
        if not lead:
            slot.ready.wait()  # woken with the vector, or to make the next call itself
        if not slot.done:
            self._embed_next()
        if slot.error is not None:
            raise slot.error
        assert slot.vector is not None
        return slot.vector

    def _embed_next(self) -> None:
        """One model call for the first queued texts (the caller's own is the first); then the next waiting
        caller is woken to make the following call, or the model is free again."""
        with self._lock:
            batch, self._queue = self._queue[:MAX_BATCH], self._queue[MAX_BATCH:]
        texts = list(dict.fromkeys(s.text for s in batch))
        try:
            self.calls += 1
            vectors = self.embedder.embed_queries(texts)
            by_text = {t: vectors[i] for i, t in enumerate(texts)}
            for text, vector in by_text.items():
                self._put(text, vector)
            for s in batch:
                s.vector = by_text[s.text]
        except BaseException as exc:  # every caller of this batch gets the model's error
            for s in batch:
                s.error = exc
        with self._lock:
            if self._queue:
                self._queue[0].ready.set()  # it leads the next call
            else:
                self._busy = False
        for s in batch:
            s.ready.set()

    def _get(self, text: str) -> np.ndarray | None:
        if self.size <= 0:
            return None
        with self._lock:
            vector = self._cache.get(text)
            if vector is not None:
                self._cache.move_to_end(text)
            return vector

    def _put(self, text: str, vector: np.ndarray) -> None:
        if self.size <= 0:
            return
        vector.setflags(write=False)  # shared by every caller of the same text
        with self._lock:
            self._cache[text] = vector
            self._cache.move_to_end(text)
            while len(self._cache) > self.size:
                self._cache.popitem(last=False)
