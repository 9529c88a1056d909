"""Corpus → clean text → structured passages → embeddings → FAISS + BM25 → ranked passages."""
