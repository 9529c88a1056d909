"""Question sets with gold passages → retrieval quality: hit@k and MRR per category, and ALQAC article recall."""

from __future__ import annotations

import datetime as dt
import json
import re
import statistics
import time
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from index.language.dates import DateMention, find_dates
from index.models import Passage
from index.search import SearchFilters, SearchIndex, SearchQuery
from index.textnorm import fold, normalize, words

_ARTICLE_LINE = re.compile(r"^Điều\s+(\d+[a-z]?)\.", re.MULTILINE)


class EvalQuestion(BaseModel):
    """One question of data/eval/*.jsonl: the old set (`category`) and the dev/test splits (`group`,
    `intent`, `style`, `as_of`) both read into this."""

    model_config = ConfigDict(extra="ignore")

    id: str
    category: str = Field(default="", description="old sets; the new splits' `intent` stands in")
    group: str = Field(default="", description="questions asking the same fact in other words")
    intent: str = ""
    style: str = Field(default="", description="formal, spoken, keywords, no diacritics …")
    question: str
    gold: list[str] = Field(default_factory=list, description="passage ids; any of them is a hit")
    answerable: bool = True
    expect: list[str | list[str]] = Field(
        default_factory=list, description="facts the answer must contain; a list is alternatives"
    )
    history: list[str] = Field(default_factory=list, description="earlier questions of the same conversation")
    as_of: dt.date | None = Field(default=None, description="the day the question is asked on")
    twin: str | None = Field(default=None, description="id of the accented twin of a no-diacritic question")

    @field_validator("history", mode="before")
    @classmethod
    def _history_questions(cls, value: object) -> object:
        """History turns may be written as {"question": …, "answer": …}; only the questions are asked."""
        if isinstance(value, list):
            return [v.get("question", v.get("text", "")) if isinstance(v, dict) else v for v in value]
        return value

    @model_validator(mode="after")
    def _category_and_intent(self) -> EvalQuestion:
        self.category = self.category or self.intent or "other"
        self.intent = self.intent or self.category
        self.style = self.style or "unspecified"
        return self


EVAL_DIR = Path(__file__).resolve().parent.parent / "data" / "eval"
# the question sets `ketluan eval --split` reads: tuned on dev, reported on test; "old" is the first set
# (dev2/test2 … dev6/test6: further independently written sets, split the same way)
SPLITS = {
    "dev": "questions.dev.jsonl",
    "dev2": "questions.dev2.jsonl",
    "dev3": "questions.dev3.jsonl",
    "dev4": "questions.dev4.jsonl",
    "dev5": "questions.dev5.jsonl",
    "dev6": "questions.dev6.jsonl",
    "test": "questions.test.jsonl",
    "test2": "questions.test2.jsonl",
    "test3": "questions.test3.jsonl",
    "test4": "questions.test4.jsonl",
    "test5": "questions.test5.jsonl",
    "test6": "questions.test6.jsonl",
    "old": "questions.jsonl",
}


def split_files(split: str, folder: Path = EVAL_DIR) -> dict[str, Path]:
    """`dev` (dev … dev6), `test` (test … test6) or `all` (both and the old set) → name → file, for the files
    that exist."""
    names = {
        "dev": ["dev", "dev2", "dev3", "dev4", "dev5", "dev6"],
        "test": ["test", "test2", "test3", "test4", "test5", "test6"],
        "all": [
            "dev",
            "dev2",
            "dev3",
            "dev4",
            "dev5",
            "dev6",
            "test",
            "test2",
            "test3",
            "test4",
            "test5",
            "test6",
            "old",
        ],
    }.get(split)
    if names is None:
        raise ValueError(f"unknown split {split!r}: dev, test or all")
    return {name: folder / SPLITS[name] for name in names if (folder / SPLITS[name]).is_file()}


_ISO_DAY = re.compile(r"(\d{4})-(\d{1,2})-(\d{1,2})")


def _written_date(text: str) -> DateMention | None:
    """`text` as one date if it is nothing but a date with its year ("2025-12-31", "31/12/2025", "tháng
    11-2025"), else None."""
    text = text.strip()
    if iso := _ISO_DAY.fullmatch(text):
        try:
            return DateMention(0, len(text), text, dt.date(int(iso[1]), int(iso[2]), int(iso[3])), "day")
        except ValueError:
            return None
    found = find_dates(text, None)
    if len(found) == 1 and found[0].start == 0 and found[0].end == len(text) and found[0].date is not None:
        return found[0]
    return None


def same_date(expected: DateMention, written: DateMention) -> bool:
    """`written` names the same day (or month, or year) as `expected`, at the same precision."""
    return expected.date is not None and (expected.date, expected.precision) == (
        written.date,
        written.precision,
    )


def _tokens(text: str) -> list[str]:
    return words(fold(normalize(text)))


def fact_present(answer: str, fact: str | list[str]) -> bool:
    """The answer states the fact (or one of a list of alternatives): a date as a date in any written form,
    anything else as whole tokens in order, accents and case ignored ("25" is not in "2025")."""
    options = fact if isinstance(fact, list) else [fact]
    tokens = _tokens(answer)
    for option in options:
        if (date := _written_date(option)) is not None:
            if any(same_date(date, d) for d in find_dates(answer, None)):
                return True
            continue
        want = _tokens(option)
        if want and any(tokens[i : i + len(want)] == want for i in range(len(tokens) - len(want) + 1)):
            return True
    return False


def latency_ms(samples: list[float]) -> dict[str, float | None]:
    """p50 and p95 of latencies in milliseconds (None for no samples)."""
    lat = sorted(samples)
    if not lat:
        return {"p50": None, "p95": None}
    return {"p50": round(statistics.median(lat), 2), "p95": round(lat[int(0.95 * (len(lat) - 1))], 2)}


def load_questions(path: Path) -> list[EvalQuestion]:
    lines = path.read_text("utf-8").splitlines()
    return [EvalQuestion.model_validate_json(line) for line in lines if line.strip()]


@dataclass
class Scores:
    n: int = 0
    hit1: float = 0.0
    hit5: float = 0.0
    mrr10: float = 0.0

    def as_dict(self) -> dict[str, float]:
        return {
            "n": self.n,
            "hit@1": round(self.hit1, 4),
            "hit@5": round(self.hit5, 4),
            "mrr@10": round(self.mrr10, 4),
        }


def _rank(result_ids: list[str], gold: set[str]) -> int | None:
    return next((i + 1 for i, pid in enumerate(result_ids) if pid in gold), None)


def _aggregate(ranks: Iterable[int | None]) -> Scores:
    values = list(ranks)
    if not values:
        return Scores()
    return Scores(
        n=len(values),
        hit1=sum(1 for r in values if r == 1) / len(values),
        hit5=sum(1 for r in values if r is not None and r <= 5) / len(values),
        mrr10=sum(1 / r for r in values if r is not None and r <= 10) / len(values),
    )


Rewrite = Callable[[EvalQuestion], tuple[str | SearchQuery, SearchFilters | None]]


@dataclass
class RetrievalReport:
    overall: Scores
    by_category: dict[str, Scores]
    ranks: dict[str, int | None]
    latencies_ms: list[float] = field(default_factory=list)
    twin_gap: dict[str, float] = field(default_factory=dict)

    def as_dict(self) -> dict[str, object]:
        return {
            "overall": self.overall.as_dict(),
            "by_category": {k: v.as_dict() for k, v in sorted(self.by_category.items())},
            "no_diacritic_gap": self.twin_gap,
            "latency_ms": latency_ms(self.latencies_ms),
            "misses": sorted(qid for qid, r in self.ranks.items() if r != 1),
        }


def retrieval_report(
    index: SearchIndex, questions: list[EvalQuestion], rewrite: Rewrite | None = None
) -> RetrievalReport:
    """hit@1, hit@5, MRR@10 over answerable questions, overall and per category.

    Follow-up questions need their conversation: `rewrite` turns a question (with its history) into the
    query and filters the service would search with; without it the bare question is searched.
    """
    ranks: dict[str, int | None] = {}
    latencies: list[float] = []
    by_cat: dict[str, list[int | None]] = defaultdict(list)
    for q in questions:
        if not q.answerable:
            continue
        query, filters = rewrite(q) if rewrite else (q.question, None)
        started = time.perf_counter()
        results = index.search(query, 10, filters)
        latencies.append((time.perf_counter() - started) * 1000)
        rank = _rank([p.passage_id for p in results], set(q.gold))
        ranks[q.id] = rank
        by_cat[q.category].append(rank)
    overall = _aggregate(ranks.values())
    by_category = {cat: _aggregate(rs) for cat, rs in by_cat.items()}
    twins = [q for q in questions if q.twin and q.id in ranks and q.twin in ranks]
    gap: dict[str, float] = {}
    if twins:
        plain = _aggregate(ranks[q.id] for q in twins)
        accented = _aggregate(ranks[q.twin] for q in twins if q.twin)
        gap = {"pairs": len(twins), "hit@1_accented": round(accented.hit1, 4), "hit@1_plain": round(plain.hit1, 4),
               "hit@5_accented": round(accented.hit5, 4), "hit@5_plain": round(plain.hit5, 4)}  # fmt: skip
    return RetrievalReport(overall, by_category, ranks, latencies, gap)


# --- ALQAC 2023 (external benchmark) ------------------------------------------------------------


def article_spans(text: str) -> dict[str, tuple[int, int]]:
    """Article number → (start, end) character span of that article in a law's text."""
    marks = list(_ARTICLE_LINE.finditer(text))
    spans: dict[str, tuple[int, int]] = {}
    for i, m in enumerate(marks):
        end = marks[i + 1].start() if i + 1 < len(marks) else len(text)
        spans.setdefault(m.group(1), (m.start(), end))
    return spans


@dataclass
class BenchmarkReport:
    n: int
    recall1: float
    recall10: float
    mrr10: float
    latencies_ms: list[float]

    def as_dict(self) -> dict[str, object]:
        return {
            "questions": self.n,
            "R@1": round(self.recall1, 4),
            "R@10": round(self.recall10, 4),
            "MRR@10": round(self.mrr10, 4),
            "latency_ms_p50": latency_ms(self.latencies_ms)["p50"],
        }


def alqac_report(
    index: SearchIndex, benchmark: Path, search: Callable[[dict[str, Any]], list[Passage]] | None = None
) -> BenchmarkReport:
    """Article-level retrieval: a passage hits when its source offsets lie inside a gold article. `search`
    ranks one question line (question, type, choices); by default the question is searched as typed."""
    spans: dict[str, dict[str, tuple[int, int]]] = {}
    for path in sorted((benchmark / "corpus").glob("*.txt")):
        spans[path.name] = article_spans(index.source_text(path.name))
    ranks: list[int | None] = []
    latencies: list[float] = []
    for line in (benchmark / "questions.jsonl").read_text("utf-8").splitlines():
        if not line.strip():
            continue
        item = json.loads(line)
        gold = [(g["file"], spans.get(g["file"], {}).get(str(g["article"]))) for g in item["gold"]]
        started = time.perf_counter()
        results = search(item) if search else index.search(item["question"], 10)
        latencies.append((time.perf_counter() - started) * 1000)
        rank = None
        for i, p in enumerate(results, 1):
            if any(span and p.source.file == file and span[0] <= p.source.start and p.source.end <= span[1]
                   for file, span in gold):  # fmt: skip
                rank = i
                break
        ranks.append(rank)
    n = len(ranks)
    return BenchmarkReport(
        n=n,
        recall1=sum(1 for r in ranks if r == 1) / n if n else 0.0,
        recall10=sum(1 for r in ranks if r is not None) / n if n else 0.0,
        mrr10=sum(1 / r for r in ranks if r) / n if n else 0.0,
        latencies_ms=latencies,
    )
