"""`ketluan eval`: the project's quality report (retrieval hit@k / MRR, answer checks, ALQAC benchmark)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from index.settings import PROJECT_ROOT, IndexSettings

DEFAULT_QUESTIONS = PROJECT_ROOT / "data" / "eval" / "questions.jsonl"
DEFAULT_DIRECTIVES = PROJECT_ROOT / "data" / "eval" / "directives.jsonl"


def _settings(args: argparse.Namespace) -> IndexSettings:
    return IndexSettings(**({"data_dir": Path(args.data_dir)} if args.data_dir else {}))  # type: ignore[arg-type]


def _benchmark_index(settings: IndexSettings, benchmark: Path) -> Any:
    """The benchmark corpus gets its own index under the data dir, built by the same code when missing."""
    from index.search import ensure_index

    corpus = benchmark / "corpus"
    if not corpus.is_dir():
        from index.errors import BadCorpus

        raise BadCorpus(f"{benchmark} has no corpus/ folder")
    bench = IndexSettings(
        data_dir=settings.data_dir / "benchmarks" / benchmark.name,
        embedding_model=settings.embedding_model,
        exact_search_max=settings.exact_search_max,
    )
    (bench.data_dir / "corpus").parent.mkdir(parents=True, exist_ok=True)
    link = bench.data_dir / "corpus"
    if not link.exists():
        link.symlink_to(corpus.resolve(), target_is_directory=True)
    return ensure_index(bench, progress=True)


def _table(title: str, rows: dict[str, dict[str, Any]], columns: list[str]) -> str:
    out = [title, "  " + f"{'':16}" + "".join(f"{c:>10}" for c in columns)]
    for name, row in rows.items():
        out.append("  " + f"{name:16}" + "".join(f"{row.get(c, ''):>10}" for c in columns))
    return "\n".join(out)


def _print_set(name: str, one: dict[str, Any]) -> None:
    r = one["retrieval"]
    rows = {**r["by_category"], "ALL": r["overall"]}
    print(_table(f"Retrieval ({name}: {one['file']})", rows, ["n", "hit@1", "hit@5", "mrr@10"]))
    print(f"  no-diacritic twins: {r['no_diacritic_gap']}")
    print(f"  search latency: {r['latency_ms']}   misses at rank 1: {', '.join(r['misses']) or 'none'}")
    if "answers" not in one:
        return
    a = dict(one["answers"])
    failures, by_intent, by_style = a.pop("failures"), a.pop("by_intent"), a.pop("by_style")
    print(f"Answers ({name}, extractive)")
    for key, value in a.items():
        print(f"  {key:26} {value}")
    columns = ["in_corpus_questions", "fact_in_answer", "wrong_answers", "in_corpus_refused", "gold_cited",
               "out_of_corpus_refused"]  # fmt: skip
    for title, groups in (("per intent", by_intent), ("per style", by_style)):
        print(
            f"  {title}: " + ", ".join(c.replace("_questions", "").replace("in_corpus_", "") for c in columns)
        )
        for group, row in groups.items():
            print(f"    {group:22}" + "".join(f"{row.get(c)!s:>9}" for c in columns))
    for qid, why in failures.items():
        print(f"  ✗ {qid}: {why}")


def _cmd_eval(args: argparse.Namespace) -> int:
    from bot.evaluation import answer_report, conversation_rewrite
    from bot.service import ChatService
    from bot.settings import BotSettings
    from bot.stores import open_stores
    from index.embedding import prefer_throughput
    from index.evaluation import alqac_report, load_questions, retrieval_report, split_files
    from index.search import open_index

    prefer_throughput()  # a benchmark corpus may need building; the questions are asked one at a time
    settings = _settings(args)
    result: dict[str, Any] = {}
    if not args.benchmark_only:
        index = open_index(settings)
        files = (
            {Path(args.questions).stem: Path(args.questions)} if args.questions else split_files(args.split)
        )
        if not files:
            from index.errors import BadQuery

            raise BadQuery(f"no question set for --split {args.split} in {DEFAULT_QUESTIONS.parent}")
        bot_settings = BotSettings(llm_base_url=None, redis_url=None)
        stores = open_stores(bot_settings, settings.data_dir / "state" / "eval")
        reader = ChatService(index, stores, bot_settings)  # questions are read as the chat reads them
        service = reader if not args.no_answers else None
        rewrite = conversation_rewrite(reader)
        sets: dict[str, dict[str, Any]] = {}
        for name, path in files.items():
            questions = load_questions(path)
            sets[name] = {
                "file": str(path),
                "retrieval": retrieval_report(index, questions, rewrite).as_dict(),
            }
            if service is not None:
                sets[name]["answers"] = answer_report(service, questions).as_dict()
        stores.close()
        result["sets"] = sets
        # the keys of the single-set report: the old set when it is read, else the first one
        main = sets.get("old", next(iter(sets.values())))
        result.update({k: v for k, v in main.items() if k in ("retrieval", "answers")})
        if Path(args.directives).exists():
            from index.directive_eval import build_report

            result["directives"] = build_report(index.build, Path(args.directives)).as_dict()
    if args.benchmark:
        from index.alqac import search_exam

        bench_index = _benchmark_index(settings, Path(args.benchmark))
        by_article = alqac_report(
            bench_index, Path(args.benchmark),
            search=lambda item: search_exam(bench_index, item["question"], item.get("choices")),
        )  # fmt: skip
        result["benchmark"] = {Path(args.benchmark).name: by_article.as_dict()}
    if args.json:
        print(json.dumps(result, ensure_ascii=False, indent=1))
        return 0
    for name, one in result.get("sets", {}).items():
        _print_set(name, one)
    if "directives" in result:
        d = result["directives"]
        print("Tasks (extracted vs hand-annotated gold)")
        for key in ("gold_tasks", "extracted", "triple_precision", "triple_recall", "task_recall",
                    "task_precision", "span_recall", "span_precision", "verbatim"):  # fmt: skip
            print(f"  {key:26} {d[key]}")
        for key in ("missed_triples", "extra_triples", "missed_tasks"):
            for item in d[key]:
                print(f"  ✗ {key.replace('_', ' ')}: {item}")
    for name, b in result.get("benchmark", {}).items():
        print(f"Benchmark {name}: " + ", ".join(f"{k} {v}" for k, v in b.items()))
    sys.stdout.flush()
    return 0


def register(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser("eval", parents=[common], help="quality report: hit@k, MRR, answer checks, benchmark")
    p.add_argument("--questions", help="one question set (JSONL) instead of --split")
    p.add_argument("--split", choices=["dev", "test", "all"], default="all",
                   help="dev, test, or all: dev and test reported apart, plus the first set (default)")  # fmt: skip
    p.add_argument("--benchmark", help="an external benchmark folder, e.g. ../shared/benchmarks/alqac2023")
    p.add_argument("--benchmark-only", action="store_true", help="skip the own question set")
    p.add_argument("--no-answers", action="store_true", help="retrieval metrics only")
    p.add_argument(
        "--directives", default=str(DEFAULT_DIRECTIVES), help="gold tasks (JSONL) for the task report"
    )
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.set_defaults(func=_cmd_eval)
