"""The names index/store.py used to hold, for code written before the build and the layout were split: the build
pipeline is index/build.py, the on-disk layout index/layout.py. New code imports those."""

from __future__ import annotations

from index.build import _vector_index, build_index, embedding_key, embedding_text, heading_text, lexical_text
from index.layout import (
    CURRENT,
    FAISS_READ_FLAGS,
    FORMAT,
    HNSW_EF_SEARCH,
    Manifest,
    configure_search,
    current_build,
    fingerprint,
    load_documents,
    load_passages,
    read_manifest,
    staleness,
)

__all__ = [
    "CURRENT", "FAISS_READ_FLAGS", "FORMAT", "HNSW_EF_SEARCH", "Manifest", "_vector_index", "build_index",
    "configure_search", "current_build", "embedding_key", "embedding_text", "fingerprint", "heading_text",
    "lexical_text", "load_documents", "load_passages", "read_manifest", "staleness",
]  # fmt: skip
