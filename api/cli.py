"""The `ketluan` command line (API.md): argument parsing and printing only; work happens in index/ and bot/."""

from __future__ import annotations

import argparse
import importlib
import json
import logging
import sys
from collections.abc import Callable
from pathlib import Path

from api import cli_tasks
from index.errors import KetLuanError
from index.settings import IndexSettings

# Subcommands that live beside their own layer's adapters: each module has `register(subparsers, common)`.
_EXTRA_COMMANDS = ("api.cli_chat", "api.cli_bots", "api.cli_eval", "api.cli_admin")


def index_settings(args: argparse.Namespace) -> IndexSettings:
    overrides = {"data_dir": Path(args.data_dir)} if getattr(args, "data_dir", None) else {}
    return IndexSettings(**overrides)  # type: ignore[arg-type]


def _cmd_index(args: argparse.Namespace) -> int:
    from index.build import build_index
    from index.embedding import load_embedder, prefer_throughput

    prefer_throughput()
    settings = index_settings(args)
    corpora = [Path(c) for c in args.corpus] if args.corpus else [settings.default_corpus]
    embedder = load_embedder(settings.embedding_model)
    build_index(corpora, settings.index_dir, embedder, exact_search_max=settings.exact_search_max,
                progress=not args.quiet, log=lambda m: print(m, file=sys.stderr))  # fmt: skip
    return 0


def _cmd_publish(args: argparse.Namespace) -> int:
    from index.publish import publish

    settings = index_settings(args)
    target = Path(args.to) if args.to else settings.publish_to
    if target is None:
        print("ketluan publish: no target: pass --to or set KETLUAN_PUBLISH_TO", file=sys.stderr)
        return 2
    bundle = publish(settings.index_dir, target)
    print(json.dumps({"published": bundle.build, "version": bundle.version, "to": str(target)}))
    return 0


def _cmd_pull(args: argparse.Namespace) -> int:
    from index.publish import pull

    settings = index_settings(args)
    source = args.source or settings.index_source
    if not source:
        print("ketluan pull: no source: pass --from or set KETLUAN_INDEX_SOURCE", file=sys.stderr)
        return 2
    bundle = pull(source, settings.index_dir)
    print(
        json.dumps(
            {"pulled": bundle.build if bundle else None, "version": bundle.version if bundle else None}
        )
    )
    return 0


def _print_passages(query: str, results: list, as_json: bool) -> None:
    if as_json:
        print(json.dumps({"query": query, "results": [p.model_dump(mode="json") for p in results]},
                         ensure_ascii=False))  # fmt: skip
        return
    for rank, p in enumerate(results, 1):
        print(f"{rank}. [{p.score:.4f}] {p.label}  ({p.passage_id})")
        print(f"   {p.text}\n")


def _cmd_search(args: argparse.Namespace) -> int:
    from index.search import SearchFilters, open_index

    if not args.query and not args.batch:
        raise SystemExit("ketluan search: give a QUERY or --batch FILE")
    from bot.extractive import ExtractiveAnswerer

    index = open_index(index_settings(args))
    reader = ExtractiveAnswerer(index).reader  # queries are read as the chat reads questions
    filters = SearchFilters(ket_luan=args.ket_luan) if args.ket_luan else None
    if args.batch:
        path = Path(args.batch)
        if not path.is_file():
            raise SystemExit(f"ketluan search: batch file not found: {path}")
        for line in path.read_text("utf-8").splitlines():
            if not line.strip():
                continue
            try:
                results = index.search(reader.search_query(line, filters), args.k)
                print(json.dumps({"query": line, "results": [p.model_dump(mode="json") for p in results]},
                                 ensure_ascii=False), flush=True)  # fmt: skip
            except KetLuanError as exc:
                print(json.dumps({"query": line, "results": [], "error": {"code": exc.code, "message": exc.message}},
                                 ensure_ascii=False), flush=True)  # fmt: skip
        return 0
    results = index.search(reader.search_query(args.query, filters), args.k)
    if args.json:
        print(json.dumps({"results": [p.model_dump(mode="json") for p in results]}, ensure_ascii=False))
    else:
        _print_passages(args.query, results, False)
    return 0


def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--data-dir", help="corpus, index and local state (default KETLUAN_DATA_DIR, else data/)"
    )
    parser = argparse.ArgumentParser(
        prog="ketluan", description="Hỏi đáp Kết luận: cited answers from the Kết luận"
    )
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("index", parents=[common], help="(re)build the search index from corpus folders")
    p.add_argument(
        "--corpus", action="append", help="a corpus folder (repeatable; default: the shipped corpus)"
    )
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(func=_cmd_index)

    p = sub.add_parser("publish", parents=[common], help="copy the current index build to a shared place")
    p.add_argument(
        "--to",
        help="a shared directory or mounted volume (serve it for http pulls; default KETLUAN_PUBLISH_TO)",
    )
    p.set_defaults(func=_cmd_publish)

    p = sub.add_parser("pull", parents=[common], help="fetch and verify the latest published index build")
    p.add_argument(
        "--from", dest="source", help="a published directory or http(s) URL (default KETLUAN_INDEX_SOURCE)"
    )
    p.set_defaults(func=_cmd_pull)

    p = sub.add_parser("search", parents=[common], help="ranked passages for a query")
    p.add_argument("query", nargs="?", help="the query")
    p.add_argument("-k", type=int, default=5, help="number of passages (1..100)")
    p.add_argument("--json", action="store_true", help='print {"results": [Passage…]}')
    p.add_argument("--batch", help="a file with one query a line; prints one JSON object a line")
    p.add_argument("--ket-luan", action="append", help="only this Kết luận (repeatable), e.g. 183-KL/TW")
    p.set_defaults(func=_cmd_search)

    cli_tasks.register(sub, common)
    for module_name in _EXTRA_COMMANDS:
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name != module_name:
                raise
            continue
        register: Callable[[argparse._SubParsersAction, argparse.ArgumentParser], None] = module.register
        register(sub, common)
    return parser


def main(argv: list[str] | None = None) -> None:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    args = build_parser().parse_args(argv)
    try:
        code = args.func(args)
    except KetLuanError as exc:
        print(f"ketluan {args.command}: {exc.message}", file=sys.stderr)
        raise SystemExit(2) from None
    except KeyboardInterrupt:
        raise SystemExit(130) from None
    raise SystemExit(code or 0)


if __name__ == "__main__":
    main()
