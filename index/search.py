"""A built index + a query → ranked passages: dense (FAISS) and BM25 scores fused, filtered, de-duplicated."""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, Field

from index.embedding import Embedder, load_embedder
from index.errors import BadQuery, IndexNotReady, NotFound
from index.fusion import candidates, fuse, top_rows
from index.language.references import normalize_ket_luan
from index.layout import (
    FAISS_READ_FLAGS,
    MAP_MIN_BYTES,
    Manifest,
    build_version,
    configure_search,
    current_build,
    load_documents,
    load_passages,
    mapped_bytes,
    read_manifest,
    staleness,
)
from index.lexical import query_tokens, restore_accents, with_question_words
from index.models import Document, Passage
from index.official import official_twins
from index.query_vectors import QueryVectors
from index.settings import IndexSettings
from index.tasks import TaskBook
from index.textnorm import fold, has_diacritics, normalize, words

MAX_QUERY_CHARS = 2000
CANDIDATES = 200  # per retriever, when only candidates are fused (approximate vector index)
EXACT_SUBSET_MAX = 5000  # a filter that leaves at most this many passages: exact vector scores (≈ 2 ms)
META_KINDS = ("metadata", "signature")
Focus = Literal["content", "document", "signer", "newest", "oldest"]


DUPLICATE_JACCARD = 0.8


class SearchFilters(BaseModel):
    """Restricts a search; every field is optional and they combine with AND."""

    ket_luan: list[str] | None = Field(
        default=None, description='Kết luận numbers, e.g. ["183-KL/TW", "221"]'
    )
    issued_from: dt.date | None = Field(default=None, description="issued on or after this day")
    issued_to: dt.date | None = Field(default=None, description="issued on or before this day")
    document_id: list[str] | None = None


@dataclass(frozen=True)
class SearchQuery:
    """A question as retrieval takes it, already read by the caller: no Vietnamese is parsed here.

    `focus` says which passages the question wants: its content (headers and signatures count half), the
    document itself (headers and preambles first), who signed it, or the newest / oldest Kết luận.
    """

    text: str
    filters: SearchFilters | None = None
    focus: Focus = "content"


@dataclass(frozen=True)
class Hit:
    """One ranked passage with the evidence behind its rank (for answer confidence)."""

    passage: Passage
    score: float
    dense: float  # cosine similarity of query and passage
    lexical: float  # BM25 score
    index: int


@dataclass(frozen=True)
class PreparedQuery:
    text: str  # what the embedder sees
    tokens: list[str]  # what BM25 sees


class SearchIndex:
    """A loaded, read-only index build. Thread-safe for searching."""

    def __init__(
        self, build: Path, embedder: Embedder, manifest: Manifest, queries: QueryVectors | None = None
    ) -> None:
        import bm25s
        import faiss

        self.build = build
        self.embedder = embedder
        self.manifest = manifest
        self.version = build_version(build)
        self.queries = queries or QueryVectors(embedder, size=0, batching=False)
        # an old manifest lists no files: map, as before
        self.mapped = mapped = not manifest.files or mapped_bytes(manifest) >= MAP_MIN_BYTES
        try:
            self.passages = load_passages(build)
            self.documents = {d.document_id: d for d in load_documents(build)}
            self.vectors = np.load(build / "embeddings.npy", mmap_mode="r" if mapped else None)
            # IO_FLAG_MMAP_IFC maps the HNSW graph and vectors from the file: worker processes share the
            # page cache instead of each holding a copy (IO_FLAG_MMAP only maps IVF lists).
            self.faiss = (
                configure_search(
                    faiss.read_index(str(build / "vectors.faiss"), FAISS_READ_FLAGS if mapped else 0)
                )
                if manifest.vector_index != "flat"
                else None
            )
            self.bm25 = bm25s.BM25.load(str(build / "bm25"), mmap=mapped, show_progress=False)
            self.tasks = TaskBook.load(build)
            self.accents: dict[str, tuple[str, int]] = {
                k: (v[0], int(v[1]))
                for k, v in json.loads((build / "lexicon.json").read_text("utf-8")).items()
            }
        except (OSError, ValueError, RuntimeError, KeyError) as exc:
            raise IndexNotReady(f"index at {build} is corrupt ({exc.__class__.__name__}: {exc}); "
                                "rebuild it with `ketluan index`") from exc  # fmt: skip
        if len(self.passages) != self.vectors.shape[0] or self.vectors.shape[1] != embedder.dim:
            raise IndexNotReady(f"index at {build} is inconsistent ({len(self.passages)} passages, vectors "
                                f"{self.vectors.shape}); rebuild it with `ketluan index`")  # fmt: skip
        # compounds the corpus itself uses (BM25 tokens, answer terms); question words only help restore accents
        self.compounds = {k: count for k, (_, count) in self.accents.items() if "_" in k}
        self._restore_table = with_question_words(self.accents)
        self._vocab = set(self.bm25.vocab_dict)
        self._by_id = {p.passage_id: i for i, p in enumerate(self.passages)}
        self._doc_passages: dict[str, list[int]] = {}
        for i, p in enumerate(self.passages):
            self._doc_passages.setdefault(p.document_id, []).append(i)
        self._issued = np.array([(p.issued.toordinal() if p.issued else -1) for p in self.passages])
        self._ket_luan = np.array([p.ket_luan or "" for p in self.passages])
        self._doc_ids = np.array([p.document_id for p in self.passages])
        self._kinds = np.array([p.kind for p in self.passages])
        self._folded_words = [frozenset(words(fold(p.text))) for p in self.passages]
        # a press report's passage that the official text says too is cited from the official text
        self._official_twin = official_twins(self.passages, self.documents)

    # --- lookups ---------------------------------------------------------------------------------
    def document(self, document_id: str) -> Document:
        try:
            return self.documents[document_id]
        except KeyError:
            raise NotFound(f"no document with id {document_id!r}") from None

    def passages_of(self, document_id: str) -> list[Passage]:
        self.document(document_id)
        return [self.passages[i] for i in self._doc_passages.get(document_id, [])]

    def passage(self, passage_id: str) -> Passage:
        try:
            return self.passages[self._by_id[passage_id]]
        except KeyError:
            raise NotFound(f"no passage with id {passage_id!r}") from None

    def source_text(self, file: str) -> str:
        path = (self.build / "sources" / file).resolve()
        if not path.is_relative_to((self.build / "sources").resolve()) or not path.is_file():
            raise NotFound(f"no source file {file!r}")
        return path.read_text("utf-8")

    # --- searching -------------------------------------------------------------------------------
    def prepare(self, query: str) -> PreparedQuery:
        text = normalize(query)
        if not text or not any(ch.isalnum() for ch in text):
            raise BadQuery("query is empty")
        if len(text) > MAX_QUERY_CHARS:
            raise BadQuery(f"query is longer than {MAX_QUERY_CHARS} characters")
        if text.isupper():
            text = text.lower()
        if not has_diacritics(text):
            text = restore_accents(text, self._restore_table) + ("?" if text.endswith("?") else "")
        tokens = [t for t in query_tokens(query, self.compounds) if t in self._vocab]
        return PreparedQuery(text=text, tokens=tokens)

    def _mask(self, filters: SearchFilters | None) -> np.ndarray | None:
        if filters is None:
            return None
        mask = np.ones(len(self.passages), dtype=bool)
        if filters.ket_luan:
            wanted = set()
            for raw in filters.ket_luan:
                number = normalize_ket_luan(raw)
                if not number:
                    raise BadQuery(f"not a Kết luận number: {raw!r} (expected e.g. 183-KL/TW or 183)")
                wanted.add(number)
            mask &= np.isin(self._ket_luan, list(wanted))
        if filters.issued_from:
            mask &= self._issued >= filters.issued_from.toordinal()
        if filters.issued_to:
            mask &= (self._issued >= 0) & (self._issued <= filters.issued_to.toordinal())
        if filters.document_id:
            mask &= np.isin(self._doc_ids, filters.document_id)
        return mask

    def _scores(
        self, prepared: PreparedQuery, mask: np.ndarray | None, k: int
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray | None]:
        """(rows, dense, lexical, mask): the passages to rank, their two scores, and which of them the
        filters allow (None: all).

        Exact vector search (small corpora): every passage, ranked among all of them (ranking among the
        filtered ones only cost a hit@1 on the own set). With the approximate index (above
        `exact_search_max` passages) ranking every passage would cost O(N log N) per query, so only
        candidates are fused: the ANN's top ∪ BM25's top, both within the filters, each scored exactly.
        """
        query = self.queries.vector(prepared.text)
        n = len(self.passages)
        lexical = (
            np.asarray(self.bm25.get_scores(prepared.tokens), dtype=np.float32)
            if prepared.tokens
            else np.zeros(n, dtype=np.float32)
        )
        if self.faiss is None:
            return np.arange(n), np.asarray(self.vectors @ query, dtype=np.float32), lexical, mask
        wanted = max(CANDIDATES, 20 * k)
        allowed = n if mask is None else int(mask.sum())
        if mask is not None and allowed <= EXACT_SUBSET_MAX:
            # a filter (a Kết luận named, a date range) leaves few enough passages to score them all
            subset = np.flatnonzero(mask)
            by_vector = subset[top_rows(np.asarray(self.vectors[subset] @ query), wanted)]
        else:
            by_vector = self._ann(query, wanted, mask)
        rows = candidates(by_vector, lexical, wanted, mask)
        return rows, np.asarray(self.vectors[rows] @ query, dtype=np.float32), lexical[rows], None

    def _ann(self, query: np.ndarray, wanted: int, mask: np.ndarray | None) -> np.ndarray:
        """The approximate index's nearest rows, only among those `mask` allows (a FAISS ID selector, so
        the graph walk returns `wanted` allowed rows rather than `wanted` rows the filter then thins)."""
        import faiss

        lib: Any = faiss  # the SWIG wrappers take numpy arrays that the type stubs do not know about
        index: Any = self.faiss
        params = None
        if mask is not None:
            # the selector keeps a reference to its bitmap; `params` keeps the selector until the search ends
            selector = lib.IDSelectorBitmap(np.packbits(mask, bitorder="little"))
            params = lib.SearchParametersHNSW(sel=selector, efSearch=max(wanted, index.hnsw.efSearch))
        _, ids = index.search(query.reshape(1, -1).astype(np.float32), wanted, params=params)
        return np.asarray(ids[0][ids[0] >= 0])

    def search_hits(
        self, query: str | SearchQuery, k: int = 5, filters: SearchFilters | None = None
    ) -> list[Hit]:
        """Ranked passages for `query`: plain text is searched as it is; a SearchQuery brings its filters
        (a `filters` argument wins) and its focus."""
        if k < 1 or k > 100:
            raise BadQuery("k must be between 1 and 100")
        if isinstance(query, str):
            query = SearchQuery(text=query)
        filters = filters or query.filters
        prepared = self.prepare(query.text)
        allowed = self._mask(filters)
        rows, dense, lexical, mask = self._scores(prepared, allowed, k)
        fused = self._focus(fuse(dense, lexical, mask), rows, query.focus)
        hits: list[Hit] = []
        for j in np.argsort(-fused, kind="stable"):
            if not np.isfinite(fused[j]):
                break
            i = self._preferred(int(rows[j]), allowed)
            if any(h.index == i or self._near_duplicate(i, h.index) for h in hits):
                continue
            hits.append(Hit(self.passages[i].with_score(round(float(fused[j]), 6)), float(fused[j]),
                            float(dense[j]), float(lexical[j]), i))  # fmt: skip
            if len(hits) == k:
                break
        return hits

    def search(
        self, query: str | SearchQuery, k: int = 5, filters: SearchFilters | None = None
    ) -> list[Passage]:
        return [h.passage for h in self.search_hits(query, k, filters)]

    def restore(self, text: str) -> str:
        """`text` typed without diacritics, spelled as the corpus spells its words."""
        return restore_accents(text, self._restore_table)

    def _focus(self, fused: np.ndarray, rows: np.ndarray, focus: Focus) -> np.ndarray:
        """Headers and signatures answer questions about a document, not about its content."""
        kinds = self._kinds[rows]
        if focus == "content":
            return np.where(np.isin(kinds, META_KINDS), fused * 0.5, fused)
        if focus in ("newest", "oldest") and (self._issued >= 0).any():
            dated = self._issued[self._issued >= 0]
            target = dated.max() if focus == "newest" else dated.min()
            return np.where(self._issued[rows] == target, fused * 1.5, fused)
        boost = {"metadata": 1.2, "preamble": 1.2, "signature": 1.5 if focus == "signer" else 0.7}
        factor = np.array([boost.get(k, 1.0) for k in kinds])
        return fused * factor

    def _preferred(self, row: int, mask: np.ndarray | None) -> int:
        """The row to cite for `row`: its official twin when it has one the filters allow."""
        twin = self._official_twin.get(row)
        if twin is None or (mask is not None and not mask[twin]):
            return row
        return twin

    def _near_duplicate(self, a: int, b: int) -> bool:
        wa, wb = self._folded_words[a], self._folded_words[b]
        if not wa or not wb:
            return False
        return len(wa & wb) / len(wa | wb) >= DUPLICATE_JACCARD


def open_index(
    settings: IndexSettings, embedder: Embedder | None = None, *, check_stale: bool = True
) -> SearchIndex:
    """Load the current build under the data dir; one-line IndexNotReady when missing, stale or corrupt."""
    build = current_build(settings.index_dir)
    manifest = read_manifest(build)
    if check_stale and (reason := staleness(manifest, settings.embedding_model)):
        raise IndexNotReady(f"index is stale: {reason}; run `ketluan index` to rebuild it")
    embedder = embedder or load_embedder(manifest.model)
    queries = QueryVectors(embedder, size=settings.query_cache_size, batching=settings.query_batching)
    return SearchIndex(build, embedder, manifest, queries)


def ensure_index(
    settings: IndexSettings, embedder: Embedder | None = None, *, progress: bool = False
) -> SearchIndex:
    """Open the index, building it first from the shipped corpus when it is missing or stale."""
    from index.build import build_index

    try:
        return open_index(settings, embedder)
    except IndexNotReady:
        pass
    corpora = [settings.default_corpus]
    try:
        manifest = read_manifest(current_build(settings.index_dir))
        corpora = [Path(c) for c in manifest.corpora if Path(c).is_dir()] or corpora
    except IndexNotReady:
        pass
    embedder = embedder or load_embedder(settings.embedding_model)
    build_index(corpora, settings.index_dir, embedder, exact_search_max=settings.exact_search_max,
                progress=progress)  # fmt: skip
    return open_index(settings, embedder)
