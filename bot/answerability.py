"""The evidence behind a retrieved answer → the probability that answering is right: a logistic model whose
coefficients are fitted on the development questions only (benchmarks/fit_answerability.py writes
bot/answerability.json; its report gives the trade-off of wrong answers against false refusals)."""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path

MODEL_FILE = Path(__file__).with_name("answerability.json")


@dataclass(frozen=True)
class Evidence:
    dense: float = 0.0  # cosine of the question and the best passage
    dense_gap: float = 0.0  # how far the best passage stands above the third
    coverage: float = 0.0  # IDF-weighted share of the question's content words in the best of the top 3
    coverage_top: float = 0.0  # the same for the first passage
    terms: float = 0.0  # how many content words the question has
    matched_compound: float = 0.0  # 1 when a compound or two words of the question are found
    agency: float = 0.0  # 1 the agency asked about is in the passage, -1 it is not, 0 none asked
    ket_luan: float = 0.0  # 1 when the question names a Kết luận of the corpus
    answer_type: float = 0.0  # 1 the kind of fact asked (a deadline) is in the passages, -1 it is not
    lexical: float = 0.0  # BM25 of the best passage, squashed to 0..1
    lexical_gap: float = 0.0  # how far the best BM25 score stands above the second, as a share of it (0..1)

    def as_dict(self) -> dict[str, float]:
        return asdict(self)


FEATURES = tuple(Evidence.__dataclass_fields__)


@dataclass(frozen=True)
class Answerability:
    weights: dict[str, float]
    bias: float
    threshold: float

    @classmethod
    def load(cls, path: Path = MODEL_FILE) -> Answerability:
        data = json.loads(path.read_text("utf-8"))
        return cls({k: float(v) for k, v in data["weights"].items()}, float(data["bias"]),
                   float(data["threshold"]))  # fmt: skip

    def probability(self, evidence: Evidence) -> float:
        values = evidence.as_dict()
        z = self.bias + sum(w * values.get(name, 0.0) for name, w in self.weights.items())
        return 1.0 / (1.0 + math.exp(-max(min(z, 50.0), -50.0)))

    def accepts(self, evidence: Evidence) -> bool:
        return self.probability(evidence) >= self.threshold
