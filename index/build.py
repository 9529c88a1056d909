"""Corpus folders → a new index build (read → parse → extract → embed → write), then `current` points at it."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import os
import re
import shutil
import sys
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

import prompts
from index.embedding import BATCH, Embedder
from index.errors import BadCorpus, IndexNotReady
from index.extract import CACHE_FILE, Extraction, extract, load_cache
from index.layout import (
    BUILDS,
    HNSW_EF_SEARCH,
    MANIFEST,
    Manifest,
    RegistryEntry,
    current_build,
    file_entries,
    fingerprint,
    load_passages,
    point_current,
    prune,
    read_manifest,
    read_registry,
)
from index.lexical import accent_table, document_tokens
from index.loaders import corpus_files, read_text
from index.models import Passage
from index.structure import ParsedDocument, parse_document
from index.tasks import DIRECTIVES_FILE, REFERENCES_FILE
from index.textnorm import normalize

# A Kết luận item leans on its lead-in ("(i) Khẩn trương …" is Bộ Nội vụ's task), so the embedder reads it with
# its whole context. A law's clause is embedded alone and its vector is then pulled toward its article's
# heading ("Điều 4. Việc thực hiện quyền tự do cư trú"), embedded once per article. On ALQAC (10,915 passages,
# 2 quiet cores, passive OpenMP waiting) prefixing the context to every passage built in 746 s for MRR@10 0.935;
# this builds in 601 s for MRR@10 0.929; the clause alone, 521 s for 0.854. (`ketluan index` now spins its
# OpenMP waiters: 504 s for this one.)
HEAD_WORDS = 16
HEAD_WEIGHT = 1.0
_ARTICLE_HEAD = re.compile(r"Điều\s+\d+[a-z]?\..*$")


def lexical_text(passage: Passage) -> str:
    """What BM25 sees: the enclosing headings and lead-in, then the passage itself."""
    return normalize(f"{passage.context}\n{passage.text}" if passage.context else passage.text)


def embedding_text(passage: Passage) -> str:
    """What the embedder reads for the passage itself (with its context only for a Kết luận)."""
    if passage.ket_luan and passage.context:
        return lexical_text(passage)
    return normalize(passage.text)


def heading_text(passage: Passage) -> str:
    """The heading whose vector is added to the passage's (none for a Kết luận): its article, else its context."""
    if passage.ket_luan or not passage.context:
        return ""
    match = _ARTICLE_HEAD.search(passage.context)
    return normalize(" ".join((match.group(0) if match else passage.context).split()[:HEAD_WORDS]))


def embedding_key(text: str) -> str:
    return hashlib.sha1(text.encode("utf-8")).hexdigest()


def _add_headings(vectors: np.ndarray, heads: list[str], rows: list[int], embedder: Embedder,
                  progress: bool) -> None:  # fmt: skip
    """Pull each passage's vector toward its heading's, each distinct heading embedded once."""
    from tqdm import tqdm

    unique = sorted({h for h in heads if h})
    if not unique:
        return
    found: dict[str, np.ndarray] = {}
    for start in tqdm(range(0, len(unique), BATCH), desc="headings", unit="batch", disable=not progress):
        batch = unique[start : start + BATCH]
        found.update(zip(batch, embedder.embed_passages(batch), strict=True))
    for row, head in zip(rows, heads, strict=True):
        if head:
            combined = vectors[row] + HEAD_WEIGHT * found[head]
            vectors[row] = combined / max(float(np.linalg.norm(combined)), 1e-12)


def _reuse_vectors(index_dir: Path, embedder: Embedder, keys: list[str], out: np.ndarray) -> set[int]:
    """Copy into `out` the vectors the current build already has for identical texts with the same model,
    so a rebuild after a small corpus change embeds only what changed. Returns the rows filled."""
    try:
        build = current_build(index_dir)
        manifest = read_manifest(build)
    except IndexNotReady:
        return set()
    if manifest.model != embedder.name or manifest.dim != embedder.dim:
        return set()
    try:
        key_file = build / "embedding_keys.json"
        if key_file.exists():
            old_keys = json.loads(key_file.read_text("utf-8"))
        else:  # a build from before keys were stored: derive them from its passages
            old_keys = [
                embedding_key(embedding_text(p) + "\x00" + heading_text(p)) for p in load_passages(build)
            ]
        old = np.load(build / "embeddings.npy", mmap_mode="r")
        if len(old_keys) != old.shape[0]:
            return set()
        where = {k: i for i, k in enumerate(old_keys)}
        filled = {i for i, k in enumerate(keys) if k in where}
        for i in filled:
            out[i] = old[where[keys[i]]]
        return filled
    except (OSError, ValueError):
        return set()  # an unreadable previous build is simply not reused


def _read_corpora(corpora: Sequence[Path]) -> tuple[list[ParsedDocument], dict[str, str]]:
    parsed: list[ParsedDocument] = []
    texts: dict[str, str] = {}
    for folder in corpora:
        added = read_registry(folder)
        for path in corpus_files(folder):
            name = str(path.relative_to(folder))
            if name in texts:
                raise BadCorpus(f"two corpus folders both hold a file named {name!r}; rename one")
            text = read_text(path)
            texts[name] = text
            entry = added.get(name)
            doc = parse_document(
                name, text, corpus=folder.name, document_id=entry.document_id if entry else None
            )
            if not doc.passages:
                continue
            parsed.append(_with_origin(doc, entry) if entry else doc)
    ids = [d.document.document_id for d in parsed]
    if len(ids) != len(set(ids)):
        dupes = sorted({i for i in ids if ids.count(i) > 1})
        raise BadCorpus(f"several files map to the same document id {dupes}; rename one of them")
    return _reconcile(parsed), texts


def _with_origin(doc: ParsedDocument, entry: RegistryEntry) -> ParsedDocument:
    """A document the operator added: where it came from, and labels that say when its text was recognised
    from a scan (a reader then knows a quoted word may be misread)."""
    document = doc.document.model_copy(
        update={"source_url": entry.source_url, "sha256": entry.sha256, "scanned": entry.scanned}
    )
    passages = doc.passages
    if entry.scanned:
        mark = prompts.load("scanned_label")
        passages = [p.model_copy(update={"label": f"{p.label} {mark}"}) for p in passages]
    return ParsedDocument(document, passages)


def _reconcile(parsed: list[ParsedDocument]) -> list[ParsedDocument]:
    """Reports of the same Kết luận share what one of them knows (date, signer, report number), and their
    labels say which report a passage comes from, so two reports never cite alike."""
    by_number: dict[str, list[ParsedDocument]] = defaultdict(list)
    for doc in parsed:
        if doc.document.ket_luan:
            by_number[doc.document.ket_luan].append(doc)
    out: list[ParsedDocument] = []
    for doc in parsed:
        siblings = by_number.get(doc.document.ket_luan or "", [doc])
        updates: dict[str, Any] = {}
        for field in ("issued", "signer", "report"):
            if getattr(doc.document, field) is None:
                known = [getattr(s.document, field) for s in siblings if getattr(s.document, field)]
                if known:
                    updates[field] = known[0]
        passages = doc.passages
        if len(siblings) > 1 and not doc.document.official:
            order = sorted(siblings, key=lambda s: s.document.source_file).index(doc) + 1
            old = f"Kết luận {doc.document.ket_luan}"
            new = f"{old} (bản tin {order}/{len(siblings)})"
            passages = [p.model_copy(update={"label": p.label.replace(old, new, 1)}) for p in passages]
        if "issued" in updates:
            passages = [p.model_copy(update={"issued": updates["issued"]}) for p in passages]
        out.append(ParsedDocument(doc.document.model_copy(update=updates), passages))
    return out


def _extract_stage(index_dir: Path, passages: list[Passage], texts: dict[str, str], work: Path,
                   log: Callable[[str], None]) -> tuple[Extraction, float]:  # fmt: skip
    """Tasks and references of the Kết luận into `work`; passages the current build already read are reused."""
    started = time.perf_counter()
    try:
        previous: Path | None = current_build(index_dir)
    except IndexNotReady:
        previous = None
    extraction = extract(passages, texts, load_cache(previous))
    with (work / DIRECTIVES_FILE).open("w", encoding="utf-8") as fh:
        for d in extraction.directives:
            fh.write(d.model_dump_json() + "\n")
    with (work / REFERENCES_FILE).open("w", encoding="utf-8") as fh:
        for r in extraction.references:
            fh.write(r.model_dump_json() + "\n")
    with (work / CACHE_FILE).open("w", encoding="utf-8") as fh:
        for row in extraction.cache_rows:
            fh.write(json.dumps(row, ensure_ascii=False) + "\n")
    seconds = time.perf_counter() - started
    log(f"extracted {len(extraction.directives)} tasks and {len(extraction.references)} references in "
        f"{seconds:.2f} s ({extraction.reused} passages reused)")  # fmt: skip
    return extraction, seconds


# Approximate-index parameters, chosen by the scale curve (`make bench`, docs/benchmarks.md): at 1M synthetic
# 384-d passages they keep recall@10 >= 0.95 against exact search with query p95 well under 20 ms on 2 cores.
HNSW_M = 32
HNSW_EF_CONSTRUCTION = 40


def _vector_index(vectors: np.ndarray, exact_max: int) -> tuple[Any, str]:
    import faiss

    dim = vectors.shape[1]
    if len(vectors) <= exact_max:
        flat = faiss.IndexFlatIP(dim)
        flat.add(vectors)
        return flat, "flat"
    hnsw = faiss.IndexHNSWFlat(dim, HNSW_M, faiss.METRIC_INNER_PRODUCT)
    hnsw.hnsw.efConstruction = HNSW_EF_CONSTRUCTION
    hnsw.hnsw.efSearch = HNSW_EF_SEARCH
    hnsw.add(vectors)
    return hnsw, "hnsw"


def build_index(
    corpora: Sequence[Path],
    index_dir: Path,
    embedder: Embedder,
    *,
    exact_search_max: int = 20_000,
    progress: bool = True,
    log: Callable[[str], None] = lambda message: print(message, file=sys.stderr),
) -> Manifest:
    """Read, parse, embed and index `corpora` into a new build under `index_dir`, then point `current` at it."""
    import bm25s
    import faiss
    from tqdm import tqdm

    started = time.perf_counter()
    corpora = [Path(c).resolve() for c in corpora]
    print_fp = fingerprint(corpora, embedder.name)
    parsed, texts = _read_corpora(corpora)
    passages = [p for doc in parsed for p in doc.passages]
    if not passages:
        raise BadCorpus("the corpus folders hold no passages to index")
    log(f"read {len(parsed)} documents, {len(passages)} passages from {', '.join(str(c) for c in corpora)}")

    index_dir.mkdir(parents=True, exist_ok=True)
    builds = index_dir / BUILDS
    builds.mkdir(exist_ok=True)
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S%f")
    work = builds / f".{stamp}.{os.getpid()}.partial"
    work.mkdir()
    try:
        extraction, extract_seconds = _extract_stage(index_dir, passages, texts, work, log)
        inputs = [embedding_text(p) for p in passages]
        tokens: list[list[str]] = []
        accented: list[str] = []
        for text in tqdm(
            [lexical_text(p) for p in passages], desc="segmenting", unit="passage", disable=not progress
        ):
            toks, words = document_tokens(text)
            tokens.append(toks)
            accented.extend(words)
        table = accent_table(accented)
        heads = [heading_text(p) for p in passages]
        vectors = np.zeros((len(inputs), embedder.dim), dtype=np.float32)
        keys = [embedding_key(t + "\x00" + h) for t, h in zip(inputs, heads, strict=True)]
        reused = _reuse_vectors(index_dir, embedder, keys, vectors)
        todo = [i for i in range(len(inputs)) if i not in reused]
        if reused:
            log(f"reusing {len(reused)} embeddings of the previous build; embedding {len(todo)} passages")
        with tqdm(total=len(todo), desc="embedding", unit="passage", disable=not progress) as bar:
            for start in range(0, len(todo), BATCH):
                rows = todo[start : start + BATCH]
                vectors[rows] = embedder.embed_passages([inputs[i] for i in rows])
                bar.update(len(rows))
        _add_headings(vectors, [heads[i] for i in todo], todo, embedder, progress)
        np.save(work / "embeddings.npy", vectors)
        (work / "embedding_keys.json").write_text(json.dumps(keys), "utf-8")
        vindex, kind = _vector_index(vectors, exact_search_max)
        faiss.write_index(vindex, str(work / "vectors.faiss"))
        logging.getLogger("bm25s").setLevel(logging.WARNING)  # it sets DEBUG on itself and talks on stdout
        retriever = bm25s.BM25()
        retriever.index(tokens, show_progress=False)
        retriever.save(str(work / "bm25"), show_progress=False)
        (work / "lexicon.json").write_text(json.dumps(table, ensure_ascii=False), "utf-8")
        with (work / "passages.jsonl").open("w", encoding="utf-8") as fh:
            for p in passages:
                fh.write(p.model_dump_json() + "\n")
        documents = [doc.document.model_copy(update={"passage_count": len(doc.passages)}) for doc in parsed]
        (work / "documents.json").write_text(
            json.dumps([d.model_dump(mode="json") for d in documents], ensure_ascii=False, indent=1), "utf-8"
        )
        sources = work / "sources"
        for name, text in texts.items():
            target = sources / name
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text, "utf-8")
        manifest = Manifest(
            model=embedder.name, dim=embedder.dim, fingerprint=print_fp, corpora=[str(c) for c in corpora],
            documents=len(documents), passages=len(passages), vector_index=kind,
            built_at=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            build_seconds=round(time.perf_counter() - started, 2), files=file_entries(work),
            directives=len(extraction.directives), references=len(extraction.references),
            extract_seconds=round(extract_seconds, 2),
        )  # fmt: skip
        (work / MANIFEST).write_text(manifest.model_dump_json(indent=1), "utf-8")
        final = builds / stamp
        work.rename(final)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    point_current(index_dir, final)
    prune(builds, keep=final)
    log(f"index built in {manifest.build_seconds:.1f} s (extraction {manifest.extract_seconds:.2f} s): "
        f"{manifest.passages} passages, {manifest.directives} tasks, {manifest.references} references, "
        f"{kind} vectors, model {manifest.model}")  # fmt: skip
    return manifest
