"""ALQAC-style benchmark + a built index of its laws → article-level R@1 / R@10 / MRR@10 of each retrieval
variant, honestly: constants chosen on k-1 folds and scored on the held-out fold, with the in-sample figure
beside it.

    PYTHONPATH=$PWD python benchmarks/alqac_cv.py --data-dir /work/alqac-data \
        --benchmark ../shared/benchmarks/alqac2023 --folds 5 --seed 0

The query signals (one dense + BM25 ranking per distinct query text) are cached in the data dir, so a rerun
with other grids costs seconds.
"""

from __future__ import annotations

import argparse
import json
import pickle
import sys
from dataclasses import asdict
from pathlib import Path

from index.alqac import (
    CrossValidation,
    Scores,
    Signals,
    Weights,
    article_key,
    cross_validate,
    grid,
    load_exam,
    query_signals,
    rank_articles,
    rank_of,
)
from index.embedding import prefer_throughput
from index.search import SearchIndex, open_index
from index.settings import IndexSettings

DENSE = (0.3, 0.4, 0.5, 0.6, 0.7)
SHARE = (0.0, 0.1, 0.25, 0.5)
CHOICES = (0.0, 0.25, 0.5, 1.0)


def _signals(index: SearchIndex, texts: list[str], cache: Path) -> dict[str, Signals]:
    key = str(index.build)
    known: dict[str, Signals] = {}
    if cache.is_file():
        stored = pickle.loads(cache.read_bytes())
        known = stored["signals"] if stored.get("build") == key else {}
    todo = [t for t in dict.fromkeys(texts) if t not in known]
    for n, text in enumerate(todo, 1):
        known[text] = query_signals(index, text)
        if n % 25 == 0:
            print(f"  embedded {n}/{len(todo)} queries", file=sys.stderr)
    if todo:
        cache.write_bytes(pickle.dumps({"build": key, "signals": known}))
    return known


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data-dir", required=True, help="the data dir the benchmark's laws were indexed into")
    p.add_argument("--benchmark", required=True, help="folder with questions.jsonl (and corpus/)")
    p.add_argument("--folds", type=int, default=5)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", help="also write the results here")
    p.add_argument(
        "--lexical-only",
        action="store_true",
        help="BM25 alone (an index built with a hashing embedder: its dense scores mean nothing)",
    )
    args = p.parse_args(argv)
    prefer_throughput()
    index = open_index(IndexSettings(data_dir=Path(args.data_dir)), check_stale=False)  # type: ignore[call-arg]
    dense = (0.0,) if args.lexical_only else DENSE
    plain = Weights(dense=0.0) if args.lexical_only else Weights()
    items = load_exam(Path(args.benchmark))
    raw = [
        json.loads(x)["question"]
        for x in (Path(args.benchmark) / "questions.jsonl").read_text("utf-8").splitlines()
        if x.strip()
    ]
    keys = [article_key(p) for p in index.passages]
    choice_texts = [[f"{it.query.stem} {c}" for c in it.query.choices] for it in items]
    signals = _signals(index, raw + [it.query.stem for it in items] + [t for ts in choice_texts for t in ts],
                       Path(args.data_dir) / "alqac-signals.pkl")  # fmt: skip
    gold = [it.gold for it in items]
    results: dict[str, dict[str, object]] = {}

    # before: the service's passage ranking of the question as typed (what `ketluan eval --benchmark` scored)
    passage_ranks = [
        rank_of([article_key(h) for h in index.search(q, 10)], g) for q, g in zip(raw, gold, strict=True)
    ]
    fixed = Scores.of(passage_ranks)
    results["passages, question as typed (before)"] = {
        "held_out": fixed.as_dict(),
        "in_sample": fixed.as_dict(),
    }

    def run(name: str, candidates: list[Weights], stem_of: list[str], use_choices: bool) -> CrossValidation:
        def rank(i: int, w: Weights) -> list[str]:
            chosen = [signals[t] for t in choice_texts[i]] if use_choices else []
            return rank_articles(keys, signals[stem_of[i]], chosen, w)

        cv = cross_validate(rank, gold, candidates, args.folds, args.seed)
        results[name] = cv.as_dict()
        return cv

    stems = [it.query.stem for it in items]
    run("articles (best clause), question as typed", [plain], raw, False)
    run("articles (best clause), task wording stripped", [plain], stems, False)
    run("+ dense weight fitted", grid(dense=dense), stems, False)
    run("+ pooling share fitted", grid(dense=dense, share=SHARE), stems, False)
    run("+ choices (fixed 0.5, no fit)", [Weights(dense=plain.dense, choices=0.5)], stems, True)
    run("+ choices, all fitted", grid(dense=dense, share=SHARE, choices=CHOICES), stems, True)

    print(f"ALQAC article retrieval, {len(items)} questions, {args.folds}-fold CV (seed {args.seed})")
    print(
        f"  {'variant':48}{'held-out MRR@10':>16}{'R@1':>7}{'R@10':>7}{'in-sample MRR@10':>18}{'R@1':>7}{'R@10':>7}"
    )
    for name, r in results.items():
        h, s = r["held_out"], r["in_sample"]
        assert isinstance(h, dict) and isinstance(s, dict)
        print(
            f"  {name:48}{h['MRR@10']:>16}{h['R@1']:>7}{h['R@10']:>7}{s['MRR@10']:>18}{s['R@1']:>7}{s['R@10']:>7}"
        )
    default = asdict(Weights())
    for name, r in results.items():
        if "fold_weights" in r:
            chosen = [{k: v for k, v in w.items() if v != default[k]} for w in r["fold_weights"]]  # type: ignore[attr-defined]
            print(f"  {name}: chosen per fold {chosen}")
    if args.json:
        Path(args.json).write_text(json.dumps(results, ensure_ascii=False, indent=1), "utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
