"""index/evaluation.py: question sets (old and dev/test), fact matching as tokens and dates, retrieval ranks,
the ALQAC article check — over made-up questions and a fake index."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest

from index.evaluation import (
    SPLITS,
    BenchmarkReport,
    EvalQuestion,
    alqac_report,
    article_spans,
    fact_present,
    latency_ms,
    load_questions,
    retrieval_report,
    same_date,
    split_files,
)
from index.language.dates import DateMention
from index.search import SearchFilters
from tests.handmade import passage

# --- facts ------------------------------------------------------------------------------------------
FACTS = [
    # whole tokens, accents and case ignored
    ("Bộ Tài chính chủ trì.", "bộ tài chính", True),
    ("Bộ Tài chính chủ trì.", "Bo Tai Chinh", True),
    ("Bộ Tài chính chủ trì.", "Tài chính chủ", True),
    ("Bộ Tài chính chủ trì.", "chính Tài", False),  # in order
    ("Bộ Tài chính chủ trì.", "Tài chín", False),  # not inside a word
    ("120 đơn vị", "12", False),
    ("120 đơn vị", "120", True),
    ("trước ngày 20 hằng tháng", "20", True),
    ("trước ngày 31/12/2025", "25", False),  # not inside 2025
    ("theo 428-BC/BTCTW", "428-BC/BTCTW", True),
    ("theo 428-BC/BTCTW", "428-BC", True),
    ("theo 428-BC/BTCTW", "429-BC/BTCTW", False),
    ("họp 1 tháng/lần", "1 tháng/lần", True),
    ("Trả lời.", "", False),
    ("Trả lời.", "  ", False),
    # dates as dates, in any written form
    ("hạn 31/12/2025", "2025-12-31", True),
    ("hạn 31-12-2025", "31/12/2025", True),
    ("hạn 31.12.2025", "31/12/2025", True),
    ("hạn ngày 31 tháng 12 năm 2025", "31/12/2025", True),
    ("hạn 31/12/2025", "31/12", True),  # a day without its year: its tokens
    ("hạn 31/12/2025", "31-12", True),
    ("hạn 1/12/2025", "31-12", False),
    ("hạn 30/12/2025", "31/12/2025", False),
    ("hạn 31/12/2024", "31/12/2025", False),
    ("hạn 31/11/2025", "31/12/2025", False),
    ("hạn 12/31/2025", "2025-12-31", False),
    ("báo cáo tháng 11/2025", "tháng 11-2025", True),
    ("báo cáo tháng 11/2025", "tháng 10-2025", False),
    ("báo cáo 1/11/2025", "tháng 11-2025", False),  # a month is not a day in it
    ("hạn 31/12/2025", "2025-02-30", False),  # no such day: read as tokens, which are not there
    ("mã 2025-02-30", "2025-02-30", True),
    ("năm 2026", "năm 2026", True),
    ("ngày 5/3/2026", "năm 2026", False),
    # alternatives
    ("hạn 1/8/2025", ["01/08/2025", "2025-08-01"], True),
    ("hạn 1/8/2025", ["2/8/2025", "Bộ"], False),
    ("Bộ Nội vụ, hạn 1/8/2025", ["2/8/2025", "Bộ Nội vụ"], True),
    ("Bộ Nội vụ", ["Bộ Tư pháp", "Bộ Nội vụ"], True),
]


@pytest.mark.parametrize(("answer", "fact", "present"), FACTS)
def test_facts_are_whole_tokens_and_dates_are_dates(
    answer: str, fact: str | list[str], present: bool
) -> None:
    assert fact_present(answer, fact) is present


@pytest.mark.parametrize(
    ("expected", "written", "same"),
    [
        ((dt.date(2025, 12, 31), "day"), (dt.date(2025, 12, 31), "day"), True),
        ((dt.date(2025, 12, 31), "day"), (dt.date(2025, 12, 31), "month"), False),
        ((dt.date(2025, 12, 31), "day"), (dt.date(2024, 12, 31), "day"), False),
        ((dt.date(2025, 11, 30), "month"), (dt.date(2025, 11, 30), "month"), True),
        ((None, "day"), (None, "day"), False),
    ],
)
def test_same_date(
    expected: tuple[dt.date | None, str], written: tuple[dt.date | None, str], same: bool
) -> None:
    def mention(d: tuple[dt.date | None, str]) -> DateMention:
        return DateMention(0, 0, "", d[0], d[1])  # type: ignore[arg-type]

    assert same_date(mention(expected), mention(written)) is same


# --- question sets ----------------------------------------------------------------------------------
def test_old_and_new_question_lines_read_alike(tmp_path: Path) -> None:
    old = {
        "id": "o1",
        "category": "deadline",
        "question": "Quỹ đất công?",
        "gold": ["p1"],
        "expect": [["a", "b"]],
    }
    new = {"id": "n1", "group": "g1", "intent": "tasks", "style": "spoken", "question": "Bộ mô làm chi?",
           "history": [{"question": "Trước đó?", "answer": "…"}, "Rồi sao?"], "as_of": "2026-04-01",
           "answerable": False, "gold": [], "expect": [], "unknown_field": 1}  # fmt: skip
    bare = {"id": "b1", "question": "Gì?"}
    path = tmp_path / "q.jsonl"
    path.write_text("\n".join(json.dumps(x, ensure_ascii=False) for x in (old, new, bare)) + "\n\n", "utf-8")
    o, n, b = load_questions(path)
    assert (o.category, o.intent, o.style, o.expect, o.answerable) == (
        "deadline",
        "deadline",
        "unspecified",
        [["a", "b"]],
        True,
    )
    assert (n.category, n.intent, n.style, n.group) == ("tasks", "tasks", "spoken", "g1")
    assert n.history == ["Trước đó?", "Rồi sao?"] and n.as_of == dt.date(2026, 4, 1) and not n.answerable
    assert (b.category, b.intent) == ("other", "other")


def test_history_of_another_type_is_refused() -> None:
    with pytest.raises(ValueError):
        EvalQuestion.model_validate({"id": "x", "question": "q", "history": 3})


def test_split_files(tmp_path: Path) -> None:
    for name in ("dev", "dev2", "dev3", "test3", "old"):
        (tmp_path / SPLITS[name]).write_text("", "utf-8")
    assert split_files("dev", tmp_path) == {
        "dev": tmp_path / "questions.dev.jsonl",
        "dev2": tmp_path / "questions.dev2.jsonl",
        "dev3": tmp_path / "questions.dev3.jsonl",
    }
    assert split_files("test", tmp_path) == {"test3": tmp_path / "questions.test3.jsonl"}
    assert split_files("all", tmp_path) == {
        "dev": tmp_path / "questions.dev.jsonl",
        "dev2": tmp_path / "questions.dev2.jsonl",
        "dev3": tmp_path / "questions.dev3.jsonl",
        "test3": tmp_path / "questions.test3.jsonl",
        "old": tmp_path / "questions.jsonl",
    }
    # every set, each file named for its set, dev and test apart
    devs = ["dev", "dev2", "dev3", "dev4", "dev5", "dev6"]
    tests = ["test", "test2", "test3", "test4", "test5", "test6"]
    for name in [*devs, *tests]:
        (tmp_path / f"questions.{name}.jsonl").write_text("", "utf-8")
    assert split_files("dev", tmp_path) == {n: tmp_path / f"questions.{n}.jsonl" for n in devs}
    assert split_files("test", tmp_path) == {n: tmp_path / f"questions.{n}.jsonl" for n in tests}
    assert list(split_files("all", tmp_path)) == [*devs, *tests, "old"]
    with pytest.raises(ValueError, match="unknown split 'train'"):
        split_files("train", tmp_path)
    assert set(split_files("all")) >= {"old"}  # the shipped sets


# --- retrieval --------------------------------------------------------------------------------------
class FakeIndex:
    """Answers each query with the passage ids it was told, in order."""

    def __init__(self, results: dict[str, list[str]], sources: dict[str, str] | None = None) -> None:
        self.results = results
        self.sources = sources or {}
        self.calls: list[tuple[str, int, SearchFilters | None]] = []

    def search(self, query: str, k: int, filters: SearchFilters | None = None) -> list[Any]:
        self.calls.append((query, k, filters))
        return [passage(1).model_copy(update={"passage_id": pid}) for pid in self.results.get(query, [])][:k]

    def source_text(self, file: str) -> str:
        return self.sources[file]


def _q(qid: str, question: str, gold: list[str], category: str = "a", **kw: Any) -> EvalQuestion:
    return EvalQuestion(id=qid, category=category, question=question, gold=gold, **kw)


def test_retrieval_ranks_hits_and_mrr() -> None:
    index = FakeIndex({
        "q1": ["g1", "x"], "q2": ["x", "x2", "g2"], "q3": ["x"] * 10 + ["g3"], "q4": ["y"] * 4 + ["g4"],
        "q5": ["y"] * 5 + ["g5"],
    })  # fmt: skip
    questions = [_q("1", "q1", ["g1"]), _q("2", "q2", ["zz", "g2"]), _q("3", "q3", ["g3"], "b"),
                 _q("4", "q4", ["g4"], "b"), _q("5", "q5", ["g5"], "b"),
                 _q("6", "q6", [], answerable=False)]  # fmt: skip
    report = retrieval_report(index, questions)  # type: ignore[arg-type]
    assert report.ranks == {"1": 1, "2": 3, "3": None, "4": 5, "5": 6}
    assert [c[1] for c in index.calls] == [10] * 5 and "q6" not in [c[0] for c in index.calls]
    d = report.as_dict()
    assert d["overall"] == {
        "n": 5,
        "hit@1": 0.2,
        "hit@5": 0.6,
        "mrr@10": round((1 + 1 / 3 + 1 / 5 + 1 / 6) / 5, 4),
    }
    assert d["by_category"] == {
        "a": {"n": 2, "hit@1": 0.5, "hit@5": 1.0, "mrr@10": round((1 + 1 / 3) / 2, 4)},
        "b": {"n": 3, "hit@1": 0.0, "hit@5": round(1 / 3, 4), "mrr@10": round((1 / 5 + 1 / 6) / 3, 4)},
    }
    assert d["misses"] == ["2", "3", "4", "5"]
    assert d["no_diacritic_gap"] == {}
    assert set(d["latency_ms"]) == {"p50", "p95"}


def test_aggregate_counts_ranks_up_to_ten() -> None:
    from index.evaluation import _aggregate

    scores = _aggregate([1, 10, 11, None, 5, 6])
    assert (scores.n, scores.hit1, scores.hit5) == (6, 1 / 6, 2 / 6)
    assert scores.mrr10 == (1 + 1 / 10 + 1 / 5 + 1 / 6) / 6
    assert scores.as_dict() == {"n": 6, "hit@1": 0.1667, "hit@5": 0.3333, "mrr@10": round(scores.mrr10, 4)}


def test_retrieval_latency_is_measured_around_each_search(monkeypatch: pytest.MonkeyPatch) -> None:
    import itertools

    from index import evaluation

    clock = itertools.count(start=1.0, step=0.25)
    monkeypatch.setattr(evaluation.time, "perf_counter", lambda: next(clock))
    report = retrieval_report(FakeIndex({}), [_q("1", "a", ["g"]), _q("2", "b", ["g"])])  # type: ignore[arg-type]
    assert report.latencies_ms == [250.0, 250.0]


def test_retrieval_with_nothing_answerable() -> None:
    report = retrieval_report(FakeIndex({}), [_q("6", "q6", [], answerable=False)])  # type: ignore[arg-type]
    assert report.as_dict()["overall"] == {"n": 0, "hit@1": 0.0, "hit@5": 0.0, "mrr@10": 0.0}
    assert report.ranks == {} and report.by_category == {}


def test_retrieval_searches_what_the_rewrite_gives() -> None:
    index = FakeIndex({"reasked": ["g1"]})
    filters = SearchFilters(ket_luan=["901"])
    questions = [_q("0", "skipped", [], answerable=False), _q("1", "asked", ["g1"])]
    report = retrieval_report(index, questions, lambda q: (f"re{q.question}", filters))  # type: ignore[arg-type]
    assert report.ranks == {"1": 1} and index.calls == [("reasked", 10, filters)]


def test_retrieval_no_diacritic_twins() -> None:
    index = FakeIndex({"có dấu": ["g"], "co dau": ["x", "g"], "khác": ["g"], "khac": ["x"] * 6 + ["g"],
                       "ba": ["x"] * 7 + ["g"], "bà": ["x"] * 7 + ["g"]})  # fmt: skip
    questions = [_q("a1", "có dấu", ["g"]), _q("p1", "co dau", ["g"], twin="a1"),
                 _q("a2", "khác", ["g"]), _q("p2", "khac", ["g"], twin="a2"),
                 _q("a3", "bà", ["g"]), _q("p3", "ba", ["g"], twin="a3"),
                 _q("p4", "mồ côi", ["g"], twin="missing")]  # fmt: skip
    gap = retrieval_report(index, questions).twin_gap  # type: ignore[arg-type]
    assert gap == {"pairs": 3, "hit@1_accented": 0.6667, "hit@1_plain": 0.0, "hit@5_accented": 0.6667,
                   "hit@5_plain": 0.3333}  # fmt: skip
    # each side measured on its own ranks: give the plain side the better ones
    index.results.update({"co dau": ["g"], "khac": ["g"], "có dấu": ["x", "g"], "khác": ["x"] * 6})
    gap = retrieval_report(index, questions).twin_gap  # type: ignore[arg-type]
    assert gap == {"pairs": 3, "hit@1_accented": 0.0, "hit@1_plain": 0.6667, "hit@5_accented": 0.3333,
                   "hit@5_plain": 0.6667}  # fmt: skip


def test_latency_percentiles() -> None:
    assert latency_ms([]) == {"p50": None, "p95": None}
    assert latency_ms([3.0, 1.0, 2.0]) == {"p50": 2.0, "p95": 2.0}
    assert latency_ms([float(i) for i in range(1, 101)]) == {"p50": 50.5, "p95": 95.0}
    assert latency_ms([1.234567]) == {"p50": 1.23, "p95": 1.23}


# --- ALQAC --------------------------------------------------------------------------------------------
LAW = "Luật A\nĐiều 1. Một\nnội dung một\nĐiều 2a. Hai\nnội dung hai\nĐiều 3. Ba\nĐiều 1. lặp lại\n"


def test_article_spans() -> None:
    spans = article_spans(LAW)
    assert list(spans) == ["1", "2a", "3"]
    assert LAW[slice(*spans["1"])] == "Điều 1. Một\nnội dung một\n"
    assert LAW[slice(*spans["2a"])] == "Điều 2a. Hai\nnội dung hai\n"
    assert LAW[slice(*spans["3"])] == "Điều 3. Ba\n"
    assert article_spans("Không có điều.\n điều 4. x") == {}


def test_alqac_report_counts_a_passage_inside_a_gold_article(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import itertools

    from index import evaluation

    clock = itertools.count(start=1.0, step=0.5)
    monkeypatch.setattr(evaluation.time, "perf_counter", lambda: next(clock))
    (tmp_path / "corpus").mkdir()
    (tmp_path / "corpus" / "law.txt").write_text(LAW, "utf-8")
    (tmp_path / "corpus" / "notes.md").write_text("ignored", "utf-8")
    spans = article_spans(LAW)
    lines = [
        {"question": "q1", "gold": [{"file": "law.txt", "article": "2a"}]},  # the first passage: rank 1
        {"question": "q2", "gold": [{"file": "law.txt", "article": "2a"}]},  # rank 2
        # article "2" is not "2a"; a file the benchmark does not have
        {"question": "q3", "gold": [{"file": "law.txt", "article": 2}, {"file": "other.txt", "article": 1}]},
    ]
    (tmp_path / "questions.jsonl").write_text("\n\n".join(json.dumps(x) for x in lines) + "\n\n", "utf-8")

    class Index(FakeIndex):
        def search(self, query: str, k: int, filters: SearchFilters | None = None) -> list[Any]:
            self.calls.append((query, k, filters))
            start, end = spans["2a"]
            inside = passage(1).model_copy(update={"source": passage(1).source.model_copy(
                update={"file": "law.txt", "start": start, "end": end})})  # fmt: skip
            outside = inside.model_copy(update={"source": inside.source.model_copy(update={"end": end + 1})})
            before = inside.model_copy(
                update={"source": inside.source.model_copy(update={"start": start - 1})}
            )
            other = inside.model_copy(update={"source": inside.source.model_copy(update={"file": "x.txt"})})
            return {"q1": [inside], "q2": [outside, inside], "q3": [before, other, inside]}[query]

    index = Index({}, {"law.txt": LAW})
    report = alqac_report(index, tmp_path)  # type: ignore[arg-type]
    assert [(q, k) for q, k, _ in index.calls] == [("q1", 10), ("q2", 10), ("q3", 10)]
    assert (report.n, report.recall1, report.recall10, report.mrr10) == (3, 1 / 3, 2 / 3, 1.5 / 3)
    assert report.latencies_ms == [500.0, 500.0, 500.0]
    assert report.as_dict() == {"questions": 3, "R@1": 0.3333, "R@10": 0.6667, "MRR@10": 0.5,
                                "latency_ms_p50": 500.0}  # fmt: skip
    empty = tmp_path / "empty"
    (empty / "corpus").mkdir(parents=True)
    (empty / "questions.jsonl").write_text("", "utf-8")
    assert alqac_report(Index({}, {}), empty).as_dict() == {  # type: ignore[arg-type]
        "questions": 0, "R@1": 0.0, "R@10": 0.0, "MRR@10": 0.0, "latency_ms_p50": None,
    }  # fmt: skip


def test_alqac_report_ranks_with_the_given_search(tmp_path: Path) -> None:
    (tmp_path / "corpus").mkdir()
    (tmp_path / "corpus" / "law.txt").write_text(LAW, "utf-8")
    line = {
        "question": "q",
        "type": "Trắc nghiệm",
        "choices": {"A": "x"},
        "gold": [{"file": "law.txt", "article": 3}],
    }
    (tmp_path / "questions.jsonl").write_text(json.dumps(line) + "\n", "utf-8")
    start, end = article_spans(LAW)["3"]
    inside = passage(1).model_copy(update={"source": passage(1).source.model_copy(
        update={"file": "law.txt", "start": start, "end": end})})  # fmt: skip
    seen: list[dict[str, Any]] = []

    def search(item: dict[str, Any]) -> list[Any]:
        seen.append(item)
        return [inside]

    report = alqac_report(FakeIndex({}, {"law.txt": LAW}), tmp_path, search=search)  # type: ignore[arg-type]
    assert report.recall1 == 1.0 and seen[0]["choices"] == {"A": "x"}
    assert alqac_report(FakeIndex({}, {"law.txt": LAW}), tmp_path).recall10 == 0.0  # type: ignore[arg-type]


def test_benchmark_report_rounds_to_four_places() -> None:
    report = BenchmarkReport(7, 1 / 7, 2 / 7, 3 / 7, [1.0, 3.0])
    assert report.as_dict() == {"questions": 7, "R@1": 0.1429, "R@10": 0.2857, "MRR@10": 0.4286,
                                "latency_ms_p50": 2.0}  # fmt: skip
